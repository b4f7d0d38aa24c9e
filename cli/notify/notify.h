// One password change handed to a gateway: what `pwsync notify` and the
// lean `pwsync-notify` (the Samba hook) both run, so they behave alike.
//
// Exit codes: 0 stored by the gateway; 1 refused by the gateway (its result
// code and message on stderr); 2 usage; 3 no gateway reachable; 4 the
// password fails the complexity check (--complexity, --samba-hook).
#pragma once

#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pwsync/util.h"

namespace pwsync::notify {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRefused = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;
inline constexpr int kExitComplexity = 4;

// What the command line gave; whatever is unset comes from the [notify]
// section of `config` (the hook's own file).
struct Request {
    std::optional<std::string> config;
    std::optional<std::vector<std::string>> gateways;
    std::optional<std::string> principal, secret_file, ca, old_password_file, full_name, account;
    std::optional<unsigned long> timeout;  // seconds, 1 to 600
    bool complexity = false;
    bool samba_hook = false;
    bool quiet = false;
};

// The package links /usr/lib/pwsync/samba-check-password to pwsync-notify,
// so that no wrapper script (a second shell) stands between the `sh -c`
// Samba runs the check password script with and the hook. Run under that
// name, it is a Samba hook (--samba-hook) with
// kSambaHookConfig unless --config names another file.
inline constexpr const char* kSambaHookName = "samba-check-password";
inline constexpr const char* kSambaHookConfig = "/etc/pwsync/hook.conf";
void as_program(std::string_view argv0, Request& r);

struct Outcome {
    int exit_code = kExitOk;
    std::string error;  // for the front end to print when exit_code != 0 (never a secret)
};

// Sends one change. `read_password` is asked for the new password only once
// the request is known to be complete. Prints "stored by URI" on `out`
// (unless quiet or a hook). As a Samba hook only a complexity failure stops
// the change: any other failure is logged on `err` and syslog, and exits 0.
Outcome run(const Request& request, const std::function<Result<Secret>()>& read_password, std::ostream& out,
            std::ostream& err);

}  // namespace pwsync::notify
