// pwsync mapping ...
#include <fstream>

#include "cli.h"

namespace pwsync::cli {
namespace {

void key_options(po::options_description& d) {
    d.add_options()("app", po::value<std::string>()->value_name("APP"), "application")
                   ("windows", po::value<std::string>()->value_name("ACCOUNT"), "Windows account: DOMAIN\\sam, sam or UPN");
}

store::MappingKey key_of(Context& c) { return {c.arg("app"), c.arg("windows")}; }

std::string describe(const store::MappingKey& k) { return k.windows + " in " + k.app; }

// One CSV record: fields split on commas, double quotes protect commas and
// quotes ("" inside quotes is one quote).
std::optional<std::vector<std::string>> split_csv(std::string_view line) {
    std::vector<std::string> fields(1);
    bool quoted = false;
    for (std::size_t i = 0; i < line.size(); ++i) {
        const char ch = line[i];
        if (quoted) {
            if (ch == '"' && i + 1 < line.size() && line[i + 1] == '"') { fields.back().push_back('"'); ++i; }
            else if (ch == '"') quoted = false;
            else fields.back().push_back(ch);
        } else if (ch == '"' && fields.back().empty()) {
            quoted = true;
        } else if (ch == ',') {
            fields.emplace_back();
        } else {
            fields.back().push_back(ch);
        }
    }
    if (quoted) return std::nullopt;
    for (auto& f : fields) {
        while (!f.empty() && (f.back() == ' ' || f.back() == '\t')) f.pop_back();
        while (!f.empty() && (f.front() == ' ' || f.front() == '\t')) f.erase(f.begin());
    }
    return fields;
}


}  // namespace

void add_mapping_commands(std::vector<Command>& out) {
    out.push_back({"mapping", "create", "--app APP --windows ACCOUNT --external USER [--disabled]",
                   "map a Windows account to an external user in an application",
                   [](auto& d, auto&) {
                       key_options(d);
                       d.add_options()("external", po::value<std::string>()->value_name("USER"), "external user id")
                                      ("disabled", "create the mapping disabled");
                   },
                   [](Context& c) -> Status {
                       store::Mapping m;
                       m.app = c.arg("app");
                       m.windows = c.arg("windows");
                       m.external = c.arg("external");
                       m.enabled = c.vm().count("disabled") == 0;
                       const auto found = look_up_accounts(c, {m.windows});
                       // Several domains: a bare sam is mapped as DOMAIN\sam (said so).
                       const auto it = found.find(ascii_lower(m.windows));
                       const std::string as = it != found.end() && !it->second.qualified.empty() ? it->second.qualified : m.windows;
                       return write_and_say(c, [&](store::WriteTxn& w) { return record_and_create(w, found, m); },
                                            "mapped " + as + " to " + m.external + " in " + m.app);
                   }});
    out.push_back({"mapping", "delete", "--app APP --windows ACCOUNT", "delete a mapping and its credential",
                   [](auto& d, auto&) { key_options(d); },
                   [](Context& c) -> Status {
                       const auto k = key_of(c);
                       return write_and_say(c, [&](store::WriteTxn& w) { return w.delete_mapping(k); }, "deleted mapping of " + describe(k));
                   }});
    for (bool enable : {true, false})
        out.push_back({"mapping", enable ? "enable" : "disable", "--app APP --windows ACCOUNT",
                       enable ? "enable a mapping" : "disable a mapping (no sync through it)",
                       [](auto& d, auto&) { key_options(d); },
                       [enable](Context& c) -> Status {
                           const auto k = key_of(c);
                           return write_and_say(c, [&](store::WriteTxn& w) { return w.set_mapping_enabled(k, enable); },
                                                std::string(enable ? "enabled" : "disabled") + " mapping of " + describe(k));
                       }});
    out.push_back({"mapping", "set-credentials", "--app APP --windows ACCOUNT [--password-file FILE]",
                   "store the external password (stdin, prompt or file)",
                   [](auto& d, auto&) {
                       key_options(d);
                       d.add_options()("password-file", po::value<std::string>()->value_name("FILE"), "read the password from FILE");
                   },
                   [](Context& c) -> Status {
                       const auto k = key_of(c);
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       { PWSYNC_ASSIGN(auto r, s.read()); PWSYNC_TRY(r.mapping(k)); }  // fail before asking
                       PWSYNC_ASSIGN(Secret password, c.read_secret("external password", true));
                       PWSYNC_TRY(s.transact(c.actor(), [&](store::WriteTxn& w) -> Status {
                           PWSYNC_TRY(w.set_mapping_credential(k, password));
                           return {};
                       }));
                       c.out() << "stored the credential of " << describe(k) << "\n";
                       return {};
                   }});
    out.push_back({"mapping", "list", "[--app APP] [--windows ACCOUNT] [--external USER] [--json]", "list mappings",
                   [](auto& d, auto&) {
                       key_options(d);
                       d.add_options()("external", po::value<std::string>()->value_name("USER"), "only this external user")
                                      ("json", "print JSON");
                   },
                   [](Context& c) -> Status {
                       store::MappingFilter f{c.opt<std::string>("app"), c.opt<std::string>("windows"), c.opt<std::string>("external")};
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       PWSYNC_ASSIGN(auto r, s.read());
                       if (c.want_json()) {
                           // Streamed: one element at a time, so a million mappings fit.
                           bool first = true;
                           c.out() << "[";
                           PWSYNC_TRY(r.for_each_mapping(f, [&](const store::Mapping& m) {
                               c.out() << (first ? "\n  " : ",\n  ") << to_json(m).dump(-1, ' ', false, json::error_handler_t::replace);
                               first = false;
                               return true;
                           }));
                           c.out() << (first ? "]\n" : "\n]\n");
                           return {};
                       }
                       std::vector<std::vector<std::string>> rows;
                       PWSYNC_TRY(r.for_each_mapping(f, [&](const store::Mapping& m) {
                           rows.push_back({m.app, m.windows, m.external, yes_no(m.enabled), yes_no(m.has_credential),
                                           store::mapping_status_name(m.status)});
                           return true;
                       }));
                       print_table(c.out(), {"APP", "WINDOWS", "EXTERNAL", "ENABLED", "CREDENTIAL", "STATUS"}, rows);
                       return {};
                   }});
    out.push_back({"mapping", "show", "--app APP --windows ACCOUNT [--json] [--reveal]",
                   "show a mapping; --reveal prints the stored password (audited)",
                   [](auto& d, auto&) {
                       key_options(d);
                       d.add_options()("json", "print JSON")("reveal", "print the stored external password (recorded in the audit)");
                   },
                   [](Context& c) -> Status {
                       const auto k = key_of(c);
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       std::optional<Secret> revealed;
                       store::Mapping m;
                       if (c.vm().count("reveal")) {
                           PWSYNC_TRY(s.transact(c.actor(), [&](store::WriteTxn& w) -> Status {
                               PWSYNC_ASSIGN(m, w.mapping(k));
                               PWSYNC_ASSIGN(revealed, w.reveal_mapping_credential(k));
                               return {};
                           }));  // the audit record is durable before the password is shown
                       } else {
                           PWSYNC_ASSIGN(auto r, s.read());
                           PWSYNC_ASSIGN(m, r.mapping(k));
                       }
                       if (c.want_json()) {
                           json doc = to_json(m);
                           if (revealed) doc["password"] = std::string(revealed->view());
                           c.print_json(doc);
                           return {};
                       }
                       c.out() << "app:                " << m.app << "\n"
                               << "windows:            " << m.windows << "\n"
                               << "external:           " << m.external << "\n"
                               << "enabled:            " << yes_no(m.enabled) << "\n"
                               << "status:             " << store::mapping_status_name(m.status) << "\n"
                               << "objectGUID:         " << (m.object_guid.empty() ? "-" : m.object_guid) << "\n"
                               << "credential:         " << (m.has_credential ? "set" : "not set") << "\n"
                               << "credential updated: " << time_text(m.credential_updated) << "\n"
                               << "created:            " << time_text(m.created) << "\n"
                               << "updated:            " << time_text(m.updated) << "\n";
                       if (revealed) c.out() << "password:           " << revealed->view() << "\n";
                       return {};
                   }});
    out.push_back({"mapping", "import", "--app APP FILE.csv", "create mappings from windows,external lines (all or nothing)",
                   [](auto& d, auto& p) {
                       d.add_options()("app", po::value<std::string>()->value_name("APP"), "application")
                                      ("FILE", po::value<std::string>(), "CSV file: windows,external per line");
                       p.add("FILE", 1);
                   },
                   [](Context& c) -> Status {
                       const auto app = c.arg("app");
                       const auto file = c.arg("FILE");
                       std::ifstream in(file);
                       if (!in) return fail(Errc::not_found, "cannot read " + file);
                       std::vector<std::pair<std::size_t, store::Mapping>> rows;
                       std::string line;
                       for (std::size_t n = 1; std::getline(in, line); ++n) {
                           const auto text = trim_newline(line);
                           if (text.find_first_not_of(" \t") == std::string_view::npos || text.front() == '#') continue;
                           auto fields = split_csv(text);
                           if (!fields || fields->size() != 2)
                               return fail(Errc::invalid_argument, file + " line " + std::to_string(n) +
                                                                       ": expected two fields, windows,external; nothing was imported");
                           if (rows.empty() && ascii_lower((*fields)[0]) == "windows" && ascii_lower((*fields)[1]) == "external")
                               continue;  // header
                           store::Mapping m;
                           m.app = app;
                           m.windows = (*fields)[0];
                           m.external = (*fields)[1];
                           rows.emplace_back(n, std::move(m));
                       }
                       std::vector<std::string> names;
                       for (const auto& row : rows) names.push_back(row.second.windows);
                       const auto found = look_up_accounts(c, names);
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       PWSYNC_TRY(s.transact(c.actor(), [&](store::WriteTxn& w) -> Status {
                           for (const auto& [n, m] : rows)
                               if (auto st = record_and_create(w, found, m); !st)
                                   return fail(st.error().code, file + " line " + std::to_string(n) + ": " + st.error().message +
                                                                    "; nothing was imported");
                           PWSYNC_TRY(w.audit("mapping.import", app, std::to_string(rows.size()) + " mappings from " + file));
                           return {};
                       }));
                       c.out() << "imported " << rows.size() << " mappings into " << app << "\n";
                       return {};
                   }});
}

}  // namespace pwsync::cli
