#include "notify.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <ostream>
#include <sstream>

#include "complexity.h"
#include "pwsync/handles.h"
#include "gateway_client.h"

namespace pwsync::notify {
namespace {

// A usage error: bad or missing arguments (exit 2).
struct Usage {
    std::string message;
};

struct Settings {
    std::vector<std::string> gateways;
    std::string principal, secret_file, ca;
    unsigned long timeout = 0;
};

std::vector<std::string> words(const std::string& s) {
    std::istringstream in(s);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

std::string trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string_view::npos) return {};
    return std::string(s.substr(b, s.find_last_not_of(" \t\r") - b + 1));
}

bool valid_timeout(unsigned long t) { return t >= 1 && t <= 600; }

// The [notify] section of an INI file, read the way pwsync reads its other
// files (pwsync/ini.h: "# comments", "[section]", "key = value") without
// linking Boost.Program_options into the hook.
Result<Settings> read_settings(const std::string& path) {
    std::ifstream f(path);
    if (!f) return fail(Errc::not_found, "cannot read configuration file " + path);
    Settings d;
    std::string section, line;
    for (int n = 1; std::getline(f, line); ++n) {
        if (const auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
        const std::string t = trim(line);
        if (t.empty()) continue;
        if (t.front() == '[' && t.back() == ']') {
            section = trim(std::string_view(t).substr(1, t.size() - 2));
            continue;
        }
        const auto eq = t.find('=');
        if (eq == std::string::npos) return fail(Errc::invalid_argument, path + ": line " + std::to_string(n) + " is not key = value");
        const std::string key = trim(std::string_view(t).substr(0, eq)), v = trim(std::string_view(t).substr(eq + 1));
        if (section != "notify") continue;
        if (key == "gateway") d.gateways = words(v);
        else if (key == "principal") d.principal = v;
        else if (key == "secret-file") d.secret_file = v;
        else if (key == "ca") d.ca = v;
        else if (key == "timeout") {
            char* end = nullptr;
            const unsigned long t2 = std::strtoul(v.c_str(), &end, 10);
            if (v.empty() || *end != '\0' || !valid_timeout(t2))
                return fail(Errc::invalid_argument, path + ": notify.timeout must be 1 to 600 seconds");
            d.timeout = t2;
        } else return fail(Errc::invalid_argument, path + ": unknown key notify." + key);
    }
    return d;
}

// A secret file: a regular file that only its owner may read (as
// directory::read_secret_file checks), one trailing newline dropped.
Result<Secret> read_secret_file(const std::string& path) {
    const UniqueFd owner(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (owner.get() < 0) return fail(Errc::not_found, "cannot open " + path);
    const int fd = owner.get();
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return fail(Errc::permission, path + " is not a regular file");
    if ((st.st_mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        return fail(Errc::permission, path + " has mode " + mode +
                                          ": it must not be readable or writable by group or others (chmod 600)");
    }
    Secret s;
    char buf[512];
    ssize_t n = 0;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(std::string_view(buf, static_cast<std::size_t>(n)));
    wipe(buf, sizeof buf);
    if (n < 0) return fail(Errc::io, "cannot read " + path);
    s.resize(trim_newline(s.view()).size());
    if (s.empty()) return fail(Errc::invalid_argument, path + " is empty");
    return s;
}

Outcome failed(int code, std::string message) { return Outcome{code, std::move(message)}; }

// Everything but the hook's fail-open. Throws Usage.
Outcome send(const Request& r, const std::function<Result<Secret>()>& read_password, std::ostream& out,
             std::string& account) {
    Settings d;
    if (r.config) {
        auto s = read_settings(*r.config);
        if (!s) return failed(kExitRefused, s.error().message);
        d = std::move(*s);
    }
    if (r.gateways) d.gateways = *r.gateways;
    if (r.principal) d.principal = *r.principal;
    if (r.secret_file) d.secret_file = *r.secret_file;
    if (r.ca) d.ca = *r.ca;
    if (r.timeout) {
        if (!valid_timeout(*r.timeout)) throw Usage{"--timeout must be 1 to 600 seconds"};
        d.timeout = *r.timeout;
    }
    if (d.timeout == 0) d.timeout = 5;
    std::string full_name = r.full_name.value_or("");
    if (r.samba_hook) {
        // Samba's check password script: the account comes in the environment.
        const char* a = std::getenv("SAMBA_CPS_ACCOUNT_NAME");
        if (a == nullptr || *a == '\0') throw Usage{"--samba-hook: SAMBA_CPS_ACCOUNT_NAME is not set"};
        account = a;
        if (const char* f = std::getenv("SAMBA_CPS_FULL_NAME")) full_name = f;
    } else {
        if (!r.account) throw Usage{"missing --account"};
        account = *r.account;
    }
    if (d.gateways.empty()) throw Usage{"no gateway: give --gateway URI or gateway = in the [notify] section"};
    if (d.principal.empty()) throw Usage{"no principal: give --principal NAME or principal = in [notify]"};
    if (d.secret_file.empty()) throw Usage{"no secret: give --secret-file FILE or secret-file = in [notify]"};

    auto password = read_password();
    if (!password) return failed(kExitRefused, password.error().message);
    if (r.samba_hook || r.complexity) {
        const auto problem = cli::complexity_problem(password->view(), account, full_name);
        if (!problem.empty()) return failed(kExitComplexity, problem);
    }
    std::optional<Secret> old;
    if (r.old_password_file) {
        auto o = read_secret_file(*r.old_password_file);
        if (!o) return failed(kExitRefused, o.error().message);
        old = std::move(*o);
    }
    auto secret = read_secret_file(d.secret_file);
    if (!secret) return failed(kExitRefused, secret.error().message);

    ClientOptions o;
    o.uris = d.gateways;
    o.ca_file = d.ca;
    o.timeout = std::chrono::seconds(d.timeout);
    o.principal = d.principal;
    auto stored = password_modify(o, *secret, account, old ? &*old : nullptr, *password);
    if (!stored) {
        const auto& e = stored.error();
        // A bind no gateway took: its message names each gateway and answer.
        if (!e.connected || e.result_code < 0 || e.at_bind)
            return failed(e.retryable || e.tls ? kExitUnreachable : kExitRefused,
                          (e.connected && !e.at_bind ? "gateway " + e.uri + ": " : "gateway: ") + e.message);
        return failed(e.retryable ? kExitUnreachable : kExitRefused,
                      "gateway " + e.uri + " refused the change (" + std::to_string(e.result_code) + "): " + e.message);
    }
    if (!r.samba_hook && !r.quiet) out << "stored by " << *stored << "\n";
    return {};
}

}  // namespace

// As a Samba hook, only a complexity failure stops the password change: the
// DC must not depend on the gateway. A change that could not be handed over
// is logged (stderr goes to Samba's log, and syslog), and the directory
// watcher marks the account's mappings stale when it sees the change.
Outcome run(const Request& r, const std::function<Result<Secret>()>& read_password, std::ostream& out,
            std::ostream& err) {
    std::string account;
    Outcome o;
    try {
        o = send(r, read_password, out, account);
    } catch (const Usage& u) {
        if (!r.samba_hook) return failed(kExitUsage, u.message);
        o = failed(kExitUsage, "the hook is misconfigured: " + u.message);  // still fail open
    }
    if (o.exit_code == kExitOk || !r.samba_hook || o.exit_code == kExitComplexity) return o;
    const std::string line = "capture of '" + account + "' not stored: " + o.error +
                             "; the change goes ahead and pwsync will mark the account's mappings stale";
    err << "pwsync: " << line << "\n";
    openlog("pwsync-hook", LOG_PID, LOG_AUTH);
    syslog(LOG_WARNING, "%s", line.c_str());
    closelog();
    return {};
}

void as_program(std::string_view argv0, Request& r) {
    const auto slash = argv0.rfind('/');
    if (argv0.substr(slash == std::string_view::npos ? 0 : slash + 1) != kSambaHookName) return;
    r.samba_hook = true;
    if (!r.config) r.config = kSambaHookConfig;
}

}  // namespace pwsync::notify
