// Runs a libFuzzer target without libFuzzer (any compiler, the CI's ASan
// build): every file named (or in a folder named) on the command line, then
// for --mutate SECONDS random mutations of those inputs (byte flips,
// truncations, insertions, splices). A crash or sanitizer report fails.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

void run(const std::string& input) {
    // An exact-size heap copy, so ASan catches reads past the end.
    std::vector<std::uint8_t> copy(input.begin(), input.end());
    LLVMFuzzerTestOneInput(copy.data(), copy.size());
}

std::string mutate(std::string s, const std::vector<std::string>& corpus, std::mt19937_64& rng) {
    const auto pick = [&](std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng() % n); };
    const int rounds = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < rounds; ++i) {
        switch (rng() % 6) {
            case 0: if (!s.empty()) s[pick(s.size())] ^= static_cast<char>(1U << (rng() % 8)); break;
            case 1: if (!s.empty()) s[pick(s.size())] = static_cast<char>(rng()); break;
            case 2: s.resize(pick(s.size() + 1)); break;
            case 3: s.insert(pick(s.size() + 1), 1, static_cast<char>(rng())); break;
            case 4: if (!s.empty()) s.erase(pick(s.size()), 1 + pick(4)); break;
            default: {
                const std::string& other = corpus[pick(corpus.size())];
                const std::size_t at = pick(s.size() + 1), from = pick(other.size() + 1);
                s = s.substr(0, at) + other.substr(from);
            }
        }
    }
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> corpus;
    double seconds = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--mutate" && i + 1 < argc) {
            seconds = std::atof(argv[++i]);
            continue;
        }
        std::vector<std::filesystem::path> files;
        if (std::filesystem::is_directory(arg)) {
            for (const auto& e : std::filesystem::directory_iterator(arg))
                if (e.is_regular_file()) files.push_back(e.path());
        } else {
            files.emplace_back(arg);
        }
        for (const auto& f : files) {
            std::ifstream in(f, std::ios::binary);
            if (!in) {
                std::fprintf(stderr, "cannot read %s\n", f.c_str());
                return 2;
            }
            corpus.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        }
    }
    if (corpus.empty()) {
        std::fprintf(stderr, "usage: %s [--mutate SECONDS] CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    for (const auto& input : corpus) run(input);
    std::uint64_t runs = corpus.size();
    const auto seed = std::random_device{}();
    std::mt19937_64 rng(seed);
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (seconds > 0 && std::chrono::steady_clock::now() < until) {
        for (int i = 0; i < 256; ++i, ++runs) run(mutate(corpus[rng() % corpus.size()], corpus, rng));
    }
    std::printf("%llu inputs (%zu from the corpus), seed %u\n", static_cast<unsigned long long>(runs), corpus.size(),
                seed);
    return 0;
}
