#include <iostream>

#include "cli.h"

int main(int argc, char** argv) {
    pwsync::harden_process();
    return pwsync::cli::run(argc, argv, std::cin, std::cout, std::cerr);
}
