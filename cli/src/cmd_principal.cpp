// pwsync principal ...
#include "cli.h"

namespace pwsync::cli {

void add_principal_commands(std::vector<Command>& out) {
    out.push_back({"principal", "create",
                   "NAME --kind windows|adapter|monitor [--adapter ADAPTER] [--capture pre-commit|post-commit] [--certificate-subject DN]",
                   "allow an identity to send changes (secret read from stdin)",
                   [](auto& d, auto& p) {
                       d.add_options()("NAME", po::value<std::string>(), "principal name")
                           ("kind", po::value<std::string>()->value_name("KIND"), "windows (a DC capture hook), adapter, or monitor (reads cn=monitor)")
                           ("adapter", po::value<std::string>()->value_name("ADAPTER"), "the adapter an adapter principal speaks for")
                           ("capture", po::value<std::string>()->value_name("MODE"),
                            "windows principals: pre-commit (confirmed by the directory watcher) or post-commit")
                           ("certificate-subject", po::value<std::string>()->value_name("DN"),
                            "TLS client certificate subject accepted for SASL EXTERNAL")
                           ("password-file", po::value<std::string>()->value_name("FILE"), "read the secret from FILE");
                       p.add("NAME", 1);
                   },
                   [](Context& c) -> Status {
                       store::Principal p;
                       p.name = c.arg("NAME");
                       const auto kind = c.arg("kind");
                       if (kind == "windows") p.kind = store::PrincipalKind::windows;
                       else if (kind == "adapter") p.kind = store::PrincipalKind::adapter;
                       else if (kind == "monitor") p.kind = store::PrincipalKind::monitor;
                       else throw UsageError{"--kind must be windows, adapter or monitor, not '" + kind + "'"};
                       p.adapter = c.opt<std::string>("adapter").value_or("");
                       if (auto cap = c.opt<std::string>("capture")) {
                           if (*cap == "pre-commit") p.capture = store::CaptureMode::pre_commit;
                           else if (*cap == "post-commit") p.capture = store::CaptureMode::post_commit;
                           else throw UsageError{"--capture must be pre-commit or post-commit, not '" + *cap + "'"};
                       }
                       p.certificate_subject = c.opt<std::string>("certificate-subject").value_or("");
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       PWSYNC_ASSIGN(Secret secret, c.read_secret("secret of principal " + p.name, true));
                       PWSYNC_TRY(s.transact(c.actor(), [&](store::WriteTxn& w) -> Status {
                           PWSYNC_TRY(w.create_principal(p, secret));
                           return {};
                       }));
                       c.out() << "created principal " << p.name << "\n";
                       return {};
                   }});
    out.push_back({"principal", "delete", "NAME", "delete a principal",
                   [](auto& d, auto& p) {
                       d.add_options()("NAME", po::value<std::string>(), "principal name");
                       p.add("NAME", 1);
                   },
                   [](Context& c) -> Status {
                       const auto name = c.arg("NAME");
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       PWSYNC_TRY(s.transact(c.actor(), [&](store::WriteTxn& w) -> Status {
                           PWSYNC_TRY(w.delete_principal(name));
                           return {};
                       }));
                       c.out() << "deleted principal " << name << "\n";
                       return {};
                   }});
    out.push_back({"principal", "list", "[--json]", "list principals (secrets are stored as hashes only)",
                   [](auto& d, auto&) { d.add_options()("json", "print JSON"); },
                   [](Context& c) -> Status {
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       PWSYNC_ASSIGN(auto r, s.read());
                       PWSYNC_ASSIGN(auto list, r.principals());
                       if (c.want_json()) {
                           json arr = json::array();
                           for (const auto& p : list) arr.push_back(to_json(p));
                           c.print_json(arr);
                           return {};
                       }
                       std::vector<std::vector<std::string>> rows;
                       for (const auto& p : list)
                           rows.push_back({p.name, store::principal_kind_name(p.kind), p.adapter.empty() ? "-" : p.adapter,
                                           p.capture == store::CaptureMode::none ? "-" : store::capture_mode_name(p.capture)});
                       print_table(c.out(), {"NAME", "KIND", "ADAPTER", "CAPTURE"}, rows);
                       return {};
                   }});
}

}  // namespace pwsync::cli
