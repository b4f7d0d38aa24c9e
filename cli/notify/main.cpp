// pwsync-notify: the capture hook's client, `pwsync notify` without the
// administration CLI's libraries (libpq, libldap, LMDB, Boost), so that a
// Samba DC starts it quickly in every password change. Same options, same
// code (notify.h), same exit codes; the new password on stdin only.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "notify.h"

namespace {

using pwsync::notify::Request;

constexpr const char* kUsage =
    "usage: pwsync-notify --account ACCOUNT [--gateway URI]... [--principal NAME] [--secret-file FILE] [--ca FILE]\n"
    "                     [--old-password-file FILE] [--timeout SECONDS] [--complexity] [--full-name NAME]\n"
    "                     [--samba-hook] [--config FILE] [--quiet]\n"
    "Sends one password change (the new password on stdin) to a pwsync gateway; `pwsync notify` with fewer\n"
    "libraries, for Samba's check password script. Exit codes: 0 stored, 1 refused, 2 usage,\n"
    "3 no gateway reachable, 4 the password fails the complexity check.\n";

struct UsageError {
    std::string message;
};

// The options of `pwsync notify` (cmd_notify.cpp), as --name VALUE or --name=VALUE.
Request parse(int argc, char** argv, bool& help) {
    Request r;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i], value;
        bool inline_value = false;
        if (const auto eq = a.find('='); a.starts_with("--") && eq != std::string::npos) {
            value = a.substr(eq + 1);
            a.erase(eq);
            inline_value = true;
        }
        auto flag = [&](bool& f) {
            if (inline_value) throw UsageError{a + " takes no value"};
            f = true;
        };
        auto take = [&]() -> std::string {
            if (inline_value) return value;
            if (i + 1 >= argc) throw UsageError{"the option " + a + " needs a value"};
            return argv[++i];
        };
        auto once = [&](std::optional<std::string>& slot) {
            if (slot) throw UsageError{"the option " + a + " is given more than once"};
            slot = take();
        };
        if (a == "--help" || a == "-h") flag(help);
        else if (a == "--account") once(r.account);
        else if (a == "--gateway") {
            if (!r.gateways) r.gateways.emplace();
            r.gateways->push_back(take());
        } else if (a == "--principal") once(r.principal);
        else if (a == "--secret-file") once(r.secret_file);
        else if (a == "--ca") once(r.ca);
        else if (a == "--old-password-file") once(r.old_password_file);
        else if (a == "--full-name") once(r.full_name);
        else if (a == "--config") once(r.config);
        else if (a == "--timeout") {
            const std::string t = take();
            char* end = nullptr;
            const unsigned long v = std::strtoul(t.c_str(), &end, 10);
            if (t.empty() || *end != '\0' || t.front() == '-') throw UsageError{"--timeout needs a number of seconds"};
            r.timeout = v;
        } else if (a == "--complexity") flag(r.complexity);
        else if (a == "--samba-hook") flag(r.samba_hook);
        else if (a == "--quiet" || a == "-q") flag(r.quiet);
        else throw UsageError{"unknown option '" + a + "'"};
    }
    return r;
}

// All of stdin, one trailing newline removed. A terminal is refused: the
// hook never has one, and `pwsync notify` prompts with echo off.
pwsync::Result<pwsync::Secret> read_stdin() {
    if (::isatty(STDIN_FILENO))
        return pwsync::fail(pwsync::Errc::invalid_argument,
                            "the new password is read from standard input, not a terminal (pwsync notify prompts)");
    pwsync::Secret s;
    char buf[512];
    ssize_t n = 0;
    while ((n = ::read(STDIN_FILENO, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0) s.append(std::string_view(buf, static_cast<std::size_t>(n)));
    pwsync::wipe(buf, sizeof buf);
    if (n < 0) return pwsync::fail(pwsync::Errc::io, "cannot read the new password from standard input");
    s.resize(pwsync::trim_newline(s.view()).size());
    if (s.empty()) return pwsync::fail(pwsync::Errc::invalid_argument, "no new password on standard input");
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    pwsync::harden_process();
    bool help = false;
    Request r;
    try {
        r = parse(argc, argv, help);
        if (argc > 0) pwsync::notify::as_program(argv[0], r);
    } catch (const UsageError& u) {
        std::cerr << "pwsync-notify: error: " << u.message << " (see pwsync-notify --help)\n";
        return pwsync::notify::kExitUsage;
    }
    if (help) {
        std::cout << kUsage;
        return 0;
    }
    const auto o = pwsync::notify::run(r, read_stdin, std::cout, std::cerr);
    if (o.exit_code != 0) {
        std::cerr << "pwsync-notify: error: " << o.error
                  << (o.exit_code == pwsync::notify::kExitUsage ? " (see pwsync-notify --help)" : "") << "\n";
    }
    return o.exit_code;
}
