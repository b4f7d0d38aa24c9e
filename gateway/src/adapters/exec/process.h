// Runs a program with a secret on stdin, bounded in time, without a shell.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "pwsync/util.h"

namespace pwsync::gateway {

struct ProcessResult {
    int exit_code = -1;      // -1: killed by a signal or by the timeout
    bool timed_out = false;
    std::string output;      // stdout and stderr, first 4 KiB
};

// argv[0] must be an absolute path. The child gets a fixed, secret-free
// environment and its own process group (killed whole on timeout).
Result<ProcessResult> run_process(const std::vector<std::string>& argv, const Secret& input,
                                  std::chrono::milliseconds timeout);

}  // namespace pwsync::gateway
