// Shared test helpers: temporary folders, running programs, reading files,
// and the test environment's settings. Every test uses these instead of
// writing its own.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace pwsync::test {

// A fresh folder under $TMPDIR (or /tmp), removed with its contents.
class TempDir {
public:
    TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir();
    const std::string& path() const { return path_; }
    std::string operator/(std::string_view name) const { return path_ + "/" + std::string(name); }

private:
    std::string path_;
};

struct RunResult {
    int exit_code = -1;  // -1 when killed by a signal
    std::string out;
    std::string err;
};

// Runs a program (no shell) with `input` on stdin; extra environment
// entries are "NAME=value" strings added to (or replacing) the current ones.
RunResult run(const std::vector<std::string>& argv, std::string_view input = {},
              const std::vector<std::string>& env = {}, int timeout_seconds = 120);

std::string read_file(const std::string& path);
void write_file(const std::string& path, std::string_view content, unsigned mode = 0600);
// Every regular file below `dir`, recursively.
std::vector<std::string> files_under(const std::string& dir);
// The files below `dir` whose bytes contain `needle` (also as UTF-16LE).
std::vector<std::string> files_containing(const std::string& dir, std::string_view needle);

// The test environment's variables (testenv/env writes env.sh), found
// through $PWSYNC_TESTENV_STATE. Fails the calling test when it is missing.
std::map<std::string, std::string> testenv();

// The path of a program built by this project (from CTest's environment).
std::string program(const std::string& name);

}  // namespace pwsync::test
