// init, sync, key rotate, store backup|migrate|verify, audit.
#include <iostream>

#include "cli.h"

namespace pwsync::cli {
namespace {

void mode_arg(po::options_description& d, po::positional_options_description& p) {
    d.add_options()("MODE", po::value<std::string>(), "windows, partial or full");
    p.add("MODE", 1);
}

Status set_sync(Context& c, bool enable) {
    const auto name = c.arg("MODE");
    const auto mode = store::parse_sync_mode(name);
    if (!mode) throw UsageError{"unknown mode '" + name + "' (windows, partial or full)"};
    PWSYNC_ASSIGN(auto s, c.open_store());
    PWSYNC_TRY(s.transact(c.actor(), [&](store::WriteTxn& w) -> Status {
        PWSYNC_TRY(w.set_sync(*mode, enable));
        return {};
    }));
    c.out() << "sync " << name << ": " << (enable ? "enabled" : "disabled") << "\n";
    return {};
}

}  // namespace

void add_settings_commands(std::vector<Command>& out) {
    out.push_back({"init", "", "", "create the store and its master key", nullptr, [](Context& c) -> Status {
        PWSYNC_ASSIGN(auto o, c.store_options());
        PWSYNC_ASSIGN(auto s, store::Store::init(o));
        PWSYNC_TRY(s.transact(c.actor(), [&](store::WriteTxn& w) -> Status {
            PWSYNC_TRY(w.audit("store.init", s.info().dir));
            return {};
        }));
        const auto info = s.info();
        c.out() << "created store in " << info.dir << "\nmaster key: " << info.key_file
                << " (mode 0600; back it up apart from the store: without it no secret can be read)\n";
        return {};
    }});

    out.push_back({"sync", "show", "[--json]", "show the global sync switches",
                   [](po::options_description& d, po::positional_options_description&) {
                       d.add_options()("json", "print JSON");
                   },
                   [](Context& c) -> Status {
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       PWSYNC_ASSIGN(auto r, s.read());
                       PWSYNC_ASSIGN(auto sync, r.sync_settings());
                       if (c.want_json()) {
                           c.print_json({{"windows", sync.windows}, {"partial", sync.partial}, {"full", sync.full}});
                       } else {
                           print_table(c.out(), {"MODE", "STATE", "MEANING"},
                                       {{"windows", sync.windows ? "enabled" : "disabled", "Windows -> External"},
                                        {"partial", sync.partial ? "enabled" : "disabled", "External -> store"},
                                        {"full", sync.full ? "enabled" : "disabled", "External -> store and Windows"}});
                       }
                       return {};
                   }});
    out.push_back({"sync", "enable", "windows|partial|full", "allow a sync direction", mode_arg,
                   [](Context& c) { return set_sync(c, true); }});
    out.push_back({"sync", "disable", "windows|partial|full", "stop a sync direction", mode_arg,
                   [](Context& c) { return set_sync(c, false); }});

    out.push_back({"key", "rotate", "", "new master key; re-seal every secret in one transaction", nullptr,
                   [](Context& c) -> Status {
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       const auto before = s.info().key_id;
                       PWSYNC_ASSIGN(auto id, s.rotate_key(c.actor()));
                       char buf[32];
                       std::snprintf(buf, sizeof buf, "%08x -> %08x", before, id);
                       c.out() << "master key rotated (" << buf << "); back up " << s.info().key_file
                               << " again: older backups need the old key\n";
                       return {};
                   }});

    out.push_back({"store", "backup", "DEST", "consistent compact copy of the databases (not the key)",
                   [](po::options_description& d, po::positional_options_description& p) {
                       d.add_options()("DEST", po::value<std::string>(), "destination folder (LMDB)");
                       p.add("DEST", 1);
                   },
                   [](Context& c) -> Status {
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       // PostgreSQL: the database's backups; pwsync checks what a restore needs.
                       if (const auto how = s.backed_up_by(); !how.empty()) {
                           PWSYNC_ASSIGN(auto info, s.check_restorable());
                           char id[16];
                           std::snprintf(id, sizeof id, "%08x", info.key_id);
                           c.out() << "nothing copied: " << how << ".\nwhat a restore needs is in the store: schema "
                                   << "version " << info.schema_version << ", key check value for key " << id
                                   << ".\nback up the master key " << info.key_file << " (key " << id
                                   << ") apart from the database backups: without it no secret can be read.\n";
                           return {};
                       }
                       const auto dest = c.arg("DEST");
                       PWSYNC_TRY(s.backup(dest));
                       PWSYNC_TRY(s.transact(c.actor(), [&](store::WriteTxn& w) -> Status {
                           PWSYNC_TRY(w.audit("store.backup", dest));
                           return {};
                       }));
                       c.out() << "backed up to " << dest << "/data.mdb (the master key is not included)\n";
                       return {};
                   }});
    out.push_back({"store", "migrate", "--to URI", "copy the whole store into an empty store of any backend, verified",
                   [](po::options_description& d, po::positional_options_description&) {
                       d.add_options()("to", po::value<std::string>()->value_name("URI"),
                                       "the target: a folder or lmdb:..., or postgresql://... (no password in it)");
                   },
                   [](Context& c) -> Status {
                       const auto to = c.opt<std::string>("to");
                       if (!to || to->empty()) throw UsageError{"store migrate needs --to URI"};
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       PWSYNC_ASSIGN(auto rep, s.migrate(*to, c.actor()));
                       std::vector<std::vector<std::string>> rows;
                       std::size_t total = 0;
                       for (const auto& [name, n] : rep.tables) {
                           rows.push_back({name, std::to_string(n)});
                           total += n;
                       }
                       rows.push_back({"(total)", std::to_string(total)});
                       c.out() << "migrated " << s.info().dir << " to " << rep.target
                               << ": every record copied in one transaction and compared with the source\n";
                       print_table(c.out(), {"TABLE", "RECORDS"}, rows);
                       c.out() << "ids go on after " << rep.last_id << "\n";
                       const auto key = s.info().key_file;
                       c.out() << "master key: the target is sealed with " << key << " (not copied)";
                       if (rep.target_key_file != key)
                           c.out() << "; a store at the target looks for it in " << rep.target_key_file
                                   << ": copy it there (mode 0600) or set key = " << key << " in the configuration";
                       c.out() << "\n";
                       return {};
                   }});
    out.push_back({"store", "verify", "[--json]", "decode every record, open every secret, check every index",
                   [](po::options_description& d, po::positional_options_description&) {
                       d.add_options()("json", "print JSON");
                   },
                   [](Context& c) -> Status {
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       PWSYNC_ASSIGN(auto rep, s.verify());
                       if (c.want_json()) {
                           c.print_json({{"ok", rep.problems.empty()}, {"records", rep.records},
                                         {"secrets", rep.secrets}, {"problems", rep.problems}});
                       } else {
                           for (const auto& p : rep.problems) c.out() << "PROBLEM " << p << "\n";
                           c.out() << (rep.problems.empty() ? "OK" : "FAILED") << ": " << rep.records << " records, "
                                   << rep.secrets << " secrets, " << rep.problems.size() << " problems\n";
                       }
                       if (!rep.problems.empty())
                           return fail(Errc::corrupt, "store verification found " + std::to_string(rep.problems.size()) +
                                                          " problem(s)");
                       return {};
                   }});

    out.push_back({"audit", "", "[--since ISO-TIME] [--limit N] [--json]", "show the audit trail",
                   [](po::options_description& d, po::positional_options_description&) {
                       d.add_options()("since", po::value<std::string>()->value_name("ISO-TIME"),
                                       "only records at or after this UTC time (2026-11-24 or 2026-11-24T10:00:00Z)")
                                      ("limit", po::value<std::size_t>()->value_name("N"), "at most N records")
                                      ("json", "print JSON");
                   },
                   [](Context& c) -> Status {
                       TimePoint since{};
                       if (auto text = c.opt<std::string>("since")) {
                           auto t = parse_iso8601(*text);
                           if (!t) throw UsageError{"--since: '" + *text + "' is not an ISO 8601 UTC time"};
                           since = *t;
                       }
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       PWSYNC_ASSIGN(auto r, s.read());
                       PWSYNC_ASSIGN(auto recs, r.audit(since, c.opt<std::size_t>("limit").value_or(0)));
                       if (c.want_json()) {
                           json arr = json::array();
                           for (const auto& a : recs) arr.push_back(to_json(a));
                           c.print_json(arr);
                           return {};
                       }
                       std::vector<std::vector<std::string>> rows;
                       for (const auto& a : recs) rows.push_back({format_iso8601(a.time), a.actor, a.action, a.object, a.detail});
                       print_table(c.out(), {"TIME", "ACTOR", "ACTION", "OBJECT", "DETAIL"}, rows);
                       return {};
                   }});
}

}  // namespace pwsync::cli
