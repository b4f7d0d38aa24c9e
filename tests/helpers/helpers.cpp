#include "helpers.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <gtest/gtest.h>

extern char** environ;

namespace pwsync::test {

TempDir::TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string templ = std::string(base != nullptr && *base ? base : "/tmp") + "/pwsync-test-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = templ;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

RunResult run(const std::vector<std::string>& argv, std::string_view input, const std::vector<std::string>& env,
              int timeout_seconds) {
    int in_pipe[2], out_pipe[2], err_pipe[2];
    if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0)
        throw std::runtime_error("pipe failed");
    // Build the environment before fork: only async-signal-safe calls after it.
    std::vector<std::string> envs;
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string_view entry(*e);
        const auto name = entry.substr(0, entry.find('=') + 1);
        bool replaced = false;
        for (const auto& x : env) replaced |= x.starts_with(name);
        if (!replaced) envs.emplace_back(entry);
    }
    envs.insert(envs.end(), env.begin(), env.end());
    std::vector<char*> cenv, cargv;
    for (auto& e : envs) cenv.push_back(e.data());
    cenv.push_back(nullptr);
    std::vector<std::string> args = argv;
    for (auto& a : args) cargv.push_back(a.data());
    cargv.push_back(nullptr);

    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        ::dup2(in_pipe[0], 0);
        ::dup2(out_pipe[1], 1);
        ::dup2(err_pipe[1], 2);
        ::execve(cargv[0], cargv.data(), cenv.data());
        ::_exit(127);
    }
    ::close(in_pipe[0]);
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    ::signal(SIGPIPE, SIG_IGN);

    RunResult r;
    std::size_t written = 0;
    if (input.empty()) ::close(in_pipe[1]), in_pipe[1] = -1;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
    bool out_open = true, err_open = true;
    while (out_open || err_open) {
        pollfd fds[3];
        nfds_t n = 0;
        if (out_open) fds[n++] = {out_pipe[0], POLLIN, 0};
        if (err_open) fds[n++] = {err_pipe[0], POLLIN, 0};
        if (in_pipe[1] >= 0) fds[n++] = {in_pipe[1], POLLOUT, 0};
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            ::kill(pid, SIGKILL);
            break;
        }
        if (::poll(fds, n, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
        for (nfds_t i = 0; i < n; ++i) {
            if (fds[i].revents == 0) continue;
            if (fds[i].fd == in_pipe[1]) {
                const ssize_t w = ::write(in_pipe[1], input.data() + written, input.size() - written);
                if (w > 0) written += static_cast<std::size_t>(w);
                if (w < 0 || written == input.size()) ::close(in_pipe[1]), in_pipe[1] = -1;
                continue;
            }
            char buf[4096];
            const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
            std::string& sink = fds[i].fd == out_pipe[0] ? r.out : r.err;
            if (got > 0) sink.append(buf, static_cast<std::size_t>(got));
            else (fds[i].fd == out_pipe[0] ? out_open : err_open) = false;
        }
    }
    if (in_pipe[1] >= 0) ::close(in_pipe[1]);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

void write_file(const std::string& path, std::string_view content, unsigned mode) {
    {
        std::ofstream f(path, std::ios::binary | std::ios::trunc);
        f.write(content.data(), static_cast<std::streamsize>(content.size()));
    }
    ::chmod(path.c_str(), mode);
}

std::vector<std::string> files_under(const std::string& dir) {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec); !ec && it != std::filesystem::end(it);
         it.increment(ec))
        if (it->is_regular_file()) out.push_back(it->path().string());
    return out;
}

std::vector<std::string> files_containing(const std::string& dir, std::string_view needle) {
    std::string utf16;
    for (char c : needle) {
        utf16.push_back(c);
        utf16.push_back('\0');
    }
    std::vector<std::string> out;
    for (const auto& f : files_under(dir)) {
        const std::string bytes = read_file(f);
        if (bytes.find(needle) != std::string::npos || bytes.find(utf16) != std::string::npos) out.push_back(f);
    }
    return out;
}

std::map<std::string, std::string> testenv() {
    std::map<std::string, std::string> vars;
    const char* state = std::getenv("PWSYNC_TESTENV_STATE");
    if (state == nullptr) {
        ADD_FAILURE() << "PWSYNC_TESTENV_STATE is not set: run integration tests through ctest (testenv/test)";
        return vars;
    }
    std::ifstream f(std::string(state) + "/env.sh");
    if (!f) {
        ADD_FAILURE() << "no env.sh in " << state << ": the testenv fixture did not start";
        return vars;
    }
    // Lines of the form: export NAME='value'
    for (std::string line; std::getline(f, line);) {
        if (line.rfind("export ", 0) != 0) continue;
        const auto eq = line.find('=');
        if (eq == std::string::npos) continue;
        std::string value = line.substr(eq + 1);
        if (value.size() >= 2 && value.front() == '\'' && value.back() == '\'') value = value.substr(1, value.size() - 2);
        vars[line.substr(7, eq - 7)] = value;
    }
    return vars;
}

std::string program(const std::string& name) {
    const std::string var = "PWSYNC_BIN_" + name;
    for (auto& c : const_cast<std::string&>(var))
        if (c == '-') c = '_';
    const char* p = std::getenv(var.c_str());
    if (p == nullptr) {
        ADD_FAILURE() << var << " is not set: run the tests through ctest";
        return "/nonexistent/" + name;
    }
    return p;
}

}  // namespace pwsync::test
