// pwsync notify: sends one password change to a gateway — the client a
// capture hook or an external agent uses. LDAPS (or StartTLS), simple bind as
// a principal, RFC 3062 Password Modify; the new password on stdin.
//
// Exit codes: 0 stored by the gateway; 1 refused by the gateway (its result
// code and message on stderr); 2 usage; 3 no gateway reachable; 4 the
// password fails the complexity check (--complexity).
#include <syslog.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "cli.h"
#include "pwsync/ini.h"
#include "complexity.h"
#include "pwsync/directory.h"

namespace pwsync::cli {
namespace {

constexpr int kExitUnreachable = 3;
constexpr int kExitComplexity = 4;

// Defaults from the [notify] section of --config (the hook's own file).
struct NotifyDefaults {
    std::vector<std::string> gateways;
    std::string principal, secret_file, ca;
    unsigned timeout = 0;
};

Result<NotifyDefaults> read_defaults(const std::string& path) {
    NotifyDefaults d;
    PWSYNC_ASSIGN(auto entries, read_ini(path));
    for (const auto& [section, key, v] : entries) {
        if (section != "notify") continue;
        if (key == "gateway") d.gateways = split_words(v);
        else if (key == "principal") d.principal = v;
        else if (key == "secret-file") d.secret_file = v;
        else if (key == "ca") d.ca = v;
        else if (key == "timeout") {
            char* end = nullptr;
            const unsigned long t = std::strtoul(v.c_str(), &end, 10);
            if (v.empty() || *end != '\0' || t == 0 || t > 600)
                return fail(Errc::invalid_argument, path + ": notify.timeout must be 1 to 600 seconds");
            d.timeout = static_cast<unsigned>(t);
        } else return fail(Errc::invalid_argument, path + ": unknown key notify." + key);
    }
    return d;
}

Status send(Context& c, bool hook, std::string& account);

// As a Samba hook, only a complexity failure stops the password change: the
// DC must not depend on the gateway. A change that could not be handed over
// is logged (stderr goes to Samba's log, and syslog), and the directory
// watcher marks the account's mappings stale when it sees the change.
Status notify(Context& c) {
    const bool hook = c.vm().count("samba-hook") > 0;
    std::string account;
    Status st;
    try {
        st = send(c, hook, account);
    } catch (const UsageError& u) {
        if (!hook) throw;
        st = fail(Errc::invalid_argument, "the hook is misconfigured: " + u.message);  // still fail open
    }
    if (st || !hook || c.exit_code() == kExitComplexity) return st;
    const std::string line = "capture of '" + account + "' not stored: " + st.error().message +
                             "; the change goes ahead and pwsync will mark the account's mappings stale";
    c.err() << "pwsync: " << line << "\n";
    openlog("pwsync-hook", LOG_PID, LOG_AUTH);
    syslog(LOG_WARNING, "%s", line.c_str());
    closelog();
    c.set_exit(0);
    return {};
}

Status send(Context& c, bool hook, std::string& account) {
    NotifyDefaults d;
    if (auto cfg = c.opt<std::string>("config")) {
        PWSYNC_ASSIGN(d, read_defaults(*cfg));
    }
    if (auto g = c.opt<std::vector<std::string>>("gateway")) d.gateways = *g;
    if (auto v = c.opt<std::string>("principal")) d.principal = *v;
    if (auto v = c.opt<std::string>("secret-file")) d.secret_file = *v;
    if (auto v = c.opt<std::string>("ca")) d.ca = *v;
    if (auto v = c.opt<unsigned>("timeout")) {
        if (*v == 0 || *v > 600) throw UsageError{"--timeout must be 1 to 600 seconds"};
        d.timeout = *v;
    }
    if (d.timeout == 0) d.timeout = 5;
    std::string full_name = c.opt<std::string>("full-name").value_or("");
    if (hook) {
        // Samba's check password script: the account comes in the environment.
        const char* a = std::getenv("SAMBA_CPS_ACCOUNT_NAME");
        if (a == nullptr || *a == '\0') throw UsageError{"--samba-hook: SAMBA_CPS_ACCOUNT_NAME is not set"};
        account = a;
        if (const char* f = std::getenv("SAMBA_CPS_FULL_NAME")) full_name = f;
    } else {
        account = c.arg("account");
    }
    if (d.gateways.empty()) throw UsageError{"no gateway: give --gateway URI or gateway = in the [notify] section"};
    if (d.principal.empty()) throw UsageError{"no principal: give --principal NAME or principal = in [notify]"};
    if (d.secret_file.empty()) throw UsageError{"no secret: give --secret-file FILE or secret-file = in [notify]"};

    PWSYNC_ASSIGN(Secret password, c.read_secret("new password"));
    if (hook || c.vm().count("complexity")) {
        const auto problem = complexity_problem(password.view(), account, full_name);
        if (!problem.empty()) {
            c.set_exit(kExitComplexity);
            return fail(Errc::invalid_argument, problem);
        }
    }
    std::optional<Secret> old;
    if (auto f = c.opt<std::string>("old-password-file")) {
        PWSYNC_ASSIGN(auto o, directory::read_secret_file(*f));
        old = std::move(o);
    }
    PWSYNC_ASSIGN(Secret secret, directory::read_secret_file(d.secret_file));

    directory::ConnectOptions o;
    o.uris = d.gateways;
    o.ca_file = d.ca;
    o.connect_timeout = std::chrono::seconds(d.timeout);
    o.op_timeout = std::chrono::seconds(d.timeout);
    o.credentials.method = directory::BindMethod::simple;
    o.credentials.name = d.principal;
    o.credentials.password = std::move(secret);
    auto conn = directory::Connection::open(std::move(o));
    if (!conn) {
        if (conn.error().retryable() || conn.error().reason == directory::Reason::tls) c.set_exit(kExitUnreachable);
        return fail(conn.error().code, "gateway: " + conn.error().message);
    }
    auto r = directory::password_modify(*conn, account, old ? &*old : nullptr, &password);
    if (!r) {
        if (r.error().retryable()) c.set_exit(kExitUnreachable);
        return fail(r.error().code, "gateway " + conn->uri() + " refused the change (" + std::to_string(r.error().ldap_code) +
                                        "): " + r.error().server_text);
    }
    if (!hook && !c.vm().count("quiet")) c.out() << "stored by " << conn->uri() << "\n";
    return {};
}

}  // namespace

void add_notify_commands(std::vector<Command>& out) {
    out.push_back({"notify", "", "--account ACCOUNT [--gateway URI]... [--principal NAME] [--secret-file FILE] [--ca FILE]",
                   "send one password change (new password on stdin) to a gateway",
                   [](auto& d, auto&) {
                       d.add_options()
                           ("account", po::value<std::string>()->value_name("ACCOUNT"), "the account whose password changed")
                           ("gateway", po::value<std::vector<std::string>>()->composing()->value_name("URI"),
                            "gateway URI, ldaps:// or ldap:// (StartTLS); repeat for failover")
                           ("principal", po::value<std::string>()->value_name("NAME"), "principal to bind as")
                           ("secret-file", po::value<std::string>()->value_name("FILE"), "the principal's secret (mode 0600)")
                           ("ca", po::value<std::string>()->value_name("FILE"), "CA certificate(s) of the gateway")
                           ("old-password-file", po::value<std::string>()->value_name("FILE"), "the old password (mode 0600)")
                           ("timeout", po::value<unsigned>()->value_name("SECONDS"), "per connection and request (default 5)")
                           ("complexity", "refuse (exit 4) a password that fails AD's complexity rule")
                           ("full-name", po::value<std::string>()->value_name("NAME"), "the user's full name, for --complexity")
                           ("samba-hook", "run as Samba's check password script: account from SAMBA_CPS_ACCOUNT_NAME, "
                                          "complexity checked, the change never blocked by the gateway")
                           ("quiet,q", "print nothing on success");
                   },
                   notify});
}

}  // namespace pwsync::cli
