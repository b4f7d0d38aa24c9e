// pwsync notify: sends one password change to a gateway — the client an
// external agent or an admin uses. The work is notify/notify.cpp, shared
// with the lean pwsync-notify that Samba's hook runs; this file only maps
// the CLI's options onto it.
//
// Exit codes: 0 stored by the gateway; 1 refused by the gateway (its result
// code and message on stderr); 2 usage; 3 no gateway reachable; 4 the
// password fails the complexity check (--complexity).
#include "cli.h"
#include "notify.h"

namespace pwsync::cli {
namespace {

Status notify(Context& c) {
    notify::Request r;
    r.config = c.opt<std::string>("config");
    r.gateways = c.opt<std::vector<std::string>>("gateway");
    r.principal = c.opt<std::string>("principal");
    r.secret_file = c.opt<std::string>("secret-file");
    r.ca = c.opt<std::string>("ca");
    r.old_password_file = c.opt<std::string>("old-password-file");
    r.full_name = c.opt<std::string>("full-name");
    r.account = c.opt<std::string>("account");
    if (auto t = c.opt<unsigned>("timeout")) r.timeout = *t;
    r.complexity = c.vm().count("complexity") > 0;
    r.samba_hook = c.vm().count("samba-hook") > 0;
    r.quiet = c.vm().count("quiet") > 0;
    const auto o = notify::run(r, [&] { return c.read_secret("new password"); }, c.out(), c.err());
    if (o.exit_code == notify::kExitOk) return {};
    if (o.exit_code == notify::kExitUsage) throw UsageError{o.error};
    c.set_exit(o.exit_code);
    return fail(o.exit_code == notify::kExitUnreachable ? Errc::unavailable : Errc::refused, o.error);
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
