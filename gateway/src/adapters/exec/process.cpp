#include "process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "pwsync/handles.h"

namespace pwsync::gateway {
namespace {

// A pipe's two ends: [0] reads, [1] writes.
struct Pipe {
    UniqueFd end[2];
    bool open() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) return false;
        end[0].reset(fds[0]);
        end[1].reset(fds[1]);
        return true;
    }
    int fd(int i) const { return end[i].get(); }
    void close_end(int i) { end[i].reset(); }
};

constexpr std::size_t kMaxOutput = 4096;

}  // namespace

Result<ProcessResult> run_process(const std::vector<std::string>& argv, const Secret& input,
                                  std::chrono::milliseconds timeout) {
    if (argv.empty() || argv[0].empty() || argv[0][0] != '/')
        return fail(Errc::invalid_argument, "the program must be an absolute path");
    if (::access(argv[0].c_str(), X_OK) != 0)
        return fail(Errc::not_found, "cannot execute " + argv[0] + ": " + std::strerror(errno));
    Pipe in, out;
    if (!in.open() || !out.open()) return fail(Errc::io, std::string("pipe: ") + std::strerror(errno));
    // Prepared before fork: the child only calls async-signal-safe functions.
    std::vector<std::string> args = argv;
    std::vector<char*> cargs;
    for (auto& a : args) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    std::string path = "PATH=/usr/local/bin:/usr/bin:/bin", lang = "LANG=C.UTF-8";
    char* env[] = {path.data(), lang.data(), nullptr};

    const pid_t pid = ::fork();
    if (pid < 0) return fail(Errc::io, std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        // The daemon blocks SIGTERM/SIGINT/SIGHUP (taken by sigwait) and
        // ignores SIGPIPE; a program must start with the defaults.
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::signal(SIGPIPE, SIG_DFL);
        ::setpgid(0, 0);
        ::dup2(in.fd(0), 0);
        ::dup2(out.fd(1), 1);
        ::dup2(out.fd(1), 2);
        ::execve(cargs[0], cargs.data(), env);
        ::_exit(127);
    }
    ::setpgid(pid, pid);
    in.close_end(0);
    out.close_end(1);

    ProcessResult r;
    std::size_t written = 0;
    if (input.empty()) in.close_end(1);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool reading = true;
    while (reading) {
        pollfd fds[2];
        nfds_t n = 0;
        fds[n++] = {out.fd(0), POLLIN, 0};
        if (in.fd(1) >= 0) fds[n++] = {in.fd(1), POLLOUT, 0};
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            r.timed_out = true;
            ::kill(-pid, SIGKILL);
            break;
        }
        if (::poll(fds, n, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
        for (nfds_t i = 0; i < n; ++i) {
            if (fds[i].revents == 0) continue;
            if (fds[i].fd == in.fd(1)) {
                const ssize_t w = ::write(in.fd(1), input.data() + written, input.size() - written);
                if (w > 0) written += static_cast<std::size_t>(w);
                if (w < 0 || written == input.size()) in.close_end(1);  // EPIPE: the program did not read it all
                continue;
            }
            char buf[1024];
            const ssize_t got = ::read(out.fd(0), buf, sizeof buf);
            if (got <= 0) { reading = false; break; }
            if (r.output.size() < kMaxOutput)
                r.output.append(buf, std::min(static_cast<std::size_t>(got), kMaxOutput - r.output.size()));
        }
    }
    in.close_end(1);
    int status = 0;
    // The program closed its output: give it the rest of the time to exit.
    while (true) {
        const pid_t w = ::waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) break;
        if (std::chrono::steady_clock::now() >= deadline) {
            r.timed_out = true;
            ::kill(-pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            break;
        }
        ::usleep(2000);
    }
    r.exit_code = (!r.timed_out && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
    return r;
}

}  // namespace pwsync::gateway
