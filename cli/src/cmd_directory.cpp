// pwsync check, pwsync mapping resolve: the commands that talk to the
// directory named in the [directory] section of the configuration file.

#include <algorithm>
#include <cstdlib>

#include "cli.h"
#include "directory_config.h"
#include "pwsync/ini.h"
#include "pwsync/directory.h"

namespace pwsync::cli {

namespace dir = pwsync::directory;

std::string config_path(const Context& c) {
    if (c.vm().count("config")) return c.vm()["config"].as<std::string>();
    if (const char* e = std::getenv("PWSYNC_CONFIG"); e != nullptr && *e != '\0') return e;
    return "/etc/pwsync/pwsyncd.conf";
}

Result<std::vector<dir::Settings>> load_directories(const std::string& path) {
    PWSYNC_ASSIGN(auto entries, read_ini(path));
    auto dirs = dir::parse_directories(entries);
    if (!dirs) return fail(dirs.error().code, path + ": " + dirs.error().message);
    if (dirs->empty()) return fail(Errc::invalid_argument, "configuration file " + path + " has no [directory] section");
    return dirs;
}

Directories::Directories(Context& c, std::vector<dir::Settings> sections)
    : c_(c), sections_(std::move(sections)), connections_(sections_.size()), failures_(sections_.size()) {}

dir::LdapResult<dir::Connection*> Directories::connection(std::size_t i) {
    if (connections_[i]) return connections_[i].get();
    // Tried once per run: a wrong bind password is not tried for every
    // account (it could lock the service account out).
    if (failures_[i]) return std::unexpected(*failures_[i]);
    auto options = dir::connect_options(sections_[i]);
    if (!options) {
        failures_[i] = dir::client_error(dir::Reason::invalid_request, options.error().message);
        return std::unexpected(*failures_[i]);
    }
    options->warn = [this](std::string_view w) { c_.err() << "pwsync: " << w << "\n"; };
    auto conn = dir::Connection::open(std::move(*options));
    if (!conn) {
        failures_[i] = conn.error();
        return std::unexpected(std::move(conn).error());
    }
    connections_[i] = std::make_unique<dir::Connection>(std::move(*conn));
    return connections_[i].get();
}

dir::LdapResult<Directories::Found> Directories::resolve(std::string_view name) {
    std::vector<std::size_t> where;
    if (auto i = dir::directory_of(sections_, name); i || size() == 1) where.push_back(i.value_or(0));
    else for (std::size_t j = 0; j < size(); ++j) where.push_back(j);
    std::optional<Found> found;
    std::optional<dir::LdapError> last;
    for (const auto i : where) {
        PWSYNC_ASSIGN(dir::Connection * conn, connection(i));
        auto a = dir::resolve_account(*conn, domain(i), name);
        if (!a) {
            if (a.error().retryable() || where.size() == 1) return std::unexpected(std::move(a).error());
            last = std::move(a).error();
            continue;
        }
        if (found)
            return std::unexpected(dir::client_error(
                dir::Reason::ambiguous, std::string(name) + " is in domain " + domain(found->index).netbios + " and in domain " +
                                            domain(i).netbios + ": name it DOMAIN\\sam"));
        found = Found{std::move(*a), i};
    }
    if (!found) {
        if (!last) return std::unexpected(dir::client_error(dir::Reason::no_such_object, std::string(name) + ": no such account"));
        auto e = std::move(*last);
        e.message = std::string(name) + " is in none of the configured domains";
        return std::unexpected(std::move(e));
    }
    return std::move(*found);
}

store::AccountNames Directories::names(const Found& f) const {
    const auto& a = f.account;
    store::AccountNames n{a.guid, a.sam, domain(f.index).netbios, a.upn, a.dn, false, {}};
    n.sam_alone = size() == 1;  // several domains: a bare sam may name an account in each
    return n;
}

namespace {

std::string identity(const dir::Settings& s) {
    if (s.bind == dir::BindMethod::gssapi)
        return "gssapi as " + (s.principal.empty() ? "the keytab's principal" : s.principal) + " (keytab " + s.keytab + ")";
    return "simple as " + s.bind_dn;
}

// The lines of `pwsync check`, and how many failed.
struct CheckReport {
    Context& c;
    int failed = 0;
    void ok(const std::string& line) const { c.out() << "OK  " << line << "\n"; }
    void bad(const std::string& what, const std::string& reason) {
        c.out() << "FAIL " << what << ": " << reason << "\n";
        ++failed;
    }
};

// One directory's checks. `user`: resolved here too; `user_elsewhere`: it
// may be in another domain, so not finding it here is no failure (counted
// in `user_found` when found).
void check_one(Context& c, CheckReport& rep, const std::string& path, const dir::Settings& section,
               const std::optional<std::string>& user, bool user_elsewhere, int& user_found) {
    const auto ok = [&](const std::string& line) { rep.ok(line); };
    const auto bad = [&](const std::string& what, const std::string& reason) { rep.bad(what, reason); };
    auto options = dir::connect_options(section);
    if (!options) {
        bad("config", options.error().message);
        return;
    }
    ok("config: " + path + (section.name.empty() ? std::string() : " " + dir::section_label(section)) + ": " + std::to_string(section.uris.size()) + " URI" + (section.uris.size() == 1 ? "" : "s") +
       ", bind " + identity(section));
    // Loud warnings go to stderr too, where an admin's terminal shows them.
    options->warn = [&](std::string_view w) { c.err() << "pwsync: " << w << "\n"; };

    // Connect first without credentials, so that a connection problem and a
    // bind problem are told apart.
    dir::ConnectOptions anonymous = options->clone();
    anonymous.credentials = dir::Credentials{};
    auto conn = dir::Connection::open(std::move(anonymous));
    if (!conn) {
        bad("connect", conn.error().message);
        bad("bind", "not tried (no connection)");
        if (user) bad("user " + *user, "not tried (no connection)");
        bad("dirsync", "not tried (no connection)");
        return;
    }
    ok("connect: " + conn->uri() + (conn->tls() ? section.insecure_skip_verify ? " (TLS, certificate NOT verified)" : " (TLS, certificate verified)"
                                                : " (no TLS yet: GSSAPI must seal)"));
    dir::Credentials creds = options->credentials.method == dir::BindMethod::simple
                                 ? dir::Credentials{dir::BindMethod::simple, options->credentials.name,
                                                    options->credentials.password.clone(), {}, {}}
                                 : dir::Credentials{dir::BindMethod::gssapi, options->credentials.name, Secret(),
                                                    options->credentials.keytab, options->credentials.krb5_config};
    if (auto b = conn->bind(std::move(creds)); !b) {
        bad("bind", b.error().message);
        if (user) bad("user " + *user, "not tried (not bound)");
        bad("dirsync", "not tried (not bound)");
        return;
    }
    ok("bind: " + identity(section) +
       (conn->sasl_ssf() > 0 ? " (SASL SSF " + std::to_string(conn->sasl_ssf()) + ")" : std::string()) +
       (conn->protected_for_passwords() ? "" : " — WARNING: connection not protected, password writes will be refused"));

    std::string base = section.base;
    if (auto root = conn->root_dse(); !root) {
        bad("base", root.error().message);
    } else if (base.empty()) {
        base = root->default_naming_context;
        ok("base: " + base + " (the DC's naming context; set base = to pin it)");
    } else if (ascii_lower(base) != ascii_lower(root->default_naming_context)) {
        bad("base", base + " is not the DC's naming context " + root->default_naming_context +
                        " (DirSync and notifications need the naming context)");
    } else {
        ok("base: " + base);
    }

    if (user) {
        dir::Domain d = dir::domain_of(section);
        d.base = base;
        auto a = dir::resolve_account(*conn, d, *user);
        if (a) ++user_found;
        if (!a && user_elsewhere && a.error().reason == dir::Reason::no_such_object) ok("user " + *user + ": not in this domain");
        else if (!a) bad("user " + *user, a.error().message);
        else ok("user " + *user + ": " + a->guid + " " + a->dn + (a->enabled ? " (enabled)" : " (disabled)"));
    }

    if (section.watch == dir::WatchMode::dirsync) {
        if (auto r = dir::check_dirsync_rights(*conn, base, section.dirsync_flags); !r)
            bad("dirsync", r.error().message);
        else
            ok("dirsync: allowed on " + base + " (flags " + std::to_string(section.dirsync_flags) + ")");
    } else if (auto root = conn->root_dse(); !root) {
        bad("usn", root.error().message);
    } else {
        ok("usn: highestCommittedUSN " + std::to_string(root->highest_committed_usn));
    }
    }

Status check(Context& c) {
    CheckReport rep{c};
    const auto user = c.opt<std::string>("user");
    const std::string path = config_path(c);
    auto dirs = load_directories(path);
    if (!dirs) rep.bad("config", dirs.error().message);
    int found = 0;
    const std::optional<std::size_t> home = dirs && user ? dir::directory_of(*dirs, *user) : std::nullopt;
    const bool anywhere = dirs && dirs->size() > 1 && user && !home;
    for (std::size_t i = 0; dirs && i < dirs->size(); ++i) {
        const bool here = user && (dirs->size() == 1 || anywhere || home == i);
        check_one(c, rep, path, (*dirs)[i], here ? user : std::nullopt, anywhere, found);
    }
    if (anywhere && found == 0) rep.bad("user " + *user, "in none of the configured domains");
    if (anywhere && found > 1) rep.bad("user " + *user, "in " + std::to_string(found) + " domains: name it DOMAIN\\sam");
    if (rep.failed == 0) return {};
    return fail(Errc::refused, std::to_string(rep.failed) + " check" + (rep.failed == 1 ? "" : "s") + " failed");
}

Status resolve_mappings(Context& c) {
    const bool all = c.vm().count("all") > 0;
    PWSYNC_ASSIGN(auto sections, load_directories(config_path(c)));
    PWSYNC_ASSIGN(auto s, c.open_store());

    std::vector<store::Mapping> todo;
    {
        PWSYNC_ASSIGN(auto r, s.read());
        store::MappingFilter f;
        f.app = c.opt<std::string>("app");
        if (all) {
            PWSYNC_TRY(r.for_each_mapping(f, [&](const store::Mapping& m) {
                todo.push_back(m);
                return true;
            }));
        } else {
            // Not resolved, or resolved before the store kept account names.
            PWSYNC_ASSIGN(auto waiting, r.unresolved_mappings());
            for (auto& m : waiting)
                if (!f.app || ascii_lower(*f.app) == ascii_lower(m.app)) todo.push_back(std::move(m));
        }
    }
    if (todo.empty()) {
        c.out() << "nothing to resolve\n";
        return {};
    }
    Directories dirs(c, std::move(sections));

    // Resolve with no store transaction open: the directory may be slow,
    // and a write transaction would block the daemon meanwhile. What the
    // daemon's watcher records after `asked` is newer than these answers.
    const TimePoint asked = SystemClock().now();
    struct Resolved {
        store::MappingKey key;
        std::string guid_before;
        store::AccountNames names;
    };
    std::vector<Resolved> resolved;
    std::size_t unresolved = 0;
    for (const auto& m : todo) {
        auto a = dirs.resolve(m.windows);
        if (!a) {
            // An outage stops the run: every later lookup would fail the same way.
            if (a.error().retryable()) return fail(a.error().code, a.error().message);
            c.out() << "unresolved " << m.windows << " in " << m.app << ": " << a.error().message << "\n";
            ++unresolved;
            continue;
        }
        const auto& acc = a->account;
        if (acc.guid == m.object_guid) c.out() << "unchanged  " << m.windows << " in " << m.app << ": " << acc.guid << "\n";
        else c.out() << "resolved   " << m.windows << " in " << m.app << ": " << acc.guid << " " << acc.dn << "\n";
        // Its names too, so that any of them finds the mapping.
        resolved.push_back(Resolved{{m.app, m.windows}, m.object_guid, dirs.names(*a)});
    }
    std::vector<std::string> gone;
    if (!resolved.empty()) {
        PWSYNC_TRY(s.transact(c.actor(), [&](store::WriteTxn& w) -> Status {
            gone.clear();
            for (const auto& r : resolved) {
                auto kept = w.record_resolution(r.key, r.guid_before, r.names, asked);
                if (!kept)
                    return fail(kept.error().code, "mapping " + r.key.windows + " in " + r.key.app + ": " + kept.error().message);
                if (!*kept) gone.push_back(r.key.windows + " in " + r.key.app);
            }
            return {};
        }));
    }
    for (const auto& g : gone) c.out() << "skipped    " << g << ": deleted or resolved otherwise meanwhile\n";
    c.out() << resolved.size() - gone.size() << " resolved, " << unresolved << " unresolved\n";
    if (unresolved > 0) return fail(Errc::not_found, std::to_string(unresolved) + " mapping(s) could not be resolved");
    return {};
}

}  // namespace

Result<OpenDirectory> open_directory(Context& c, const std::vector<std::string>& dn_hints) {
    PWSYNC_ASSIGN(auto sections, load_directories(config_path(c)));
    std::size_t chosen = 0;
    for (const auto& dn : dn_hints)
        if (auto i = dir::directory_of(sections, dn); i && !dn.empty()) {
            chosen = *i;
            break;
        }
    const dir::Settings& settings = sections[chosen];
    PWSYNC_ASSIGN(dir::ConnectOptions options, dir::connect_options(settings));
    options.warn = [&](std::string_view w) { c.err() << "pwsync: " << w << "\n"; };
    PWSYNC_ASSIGN(dir::Connection conn, dir::Connection::open(std::move(options)));
    return OpenDirectory{std::move(conn), dir::domain_of(settings)};
}

FoundAccounts look_up_accounts(Context& c, const std::vector<std::string>& names) {
    FoundAccounts found;
    const std::string path = config_path(c);
    // No configuration, or one without a directory: the store alone.
    if (names.empty() || !path_exists(path)) return found;
    auto entries = read_ini(path);
    if (!entries || std::none_of(entries->begin(), entries->end(),
                                 [](const auto& e) { return e.section == "directory" || e.section.starts_with("directory "); }))
        return found;
    const auto later = [&](const std::string& why) {
        c.err() << "pwsync: warning: " << why << "; the account(s) stay unresolved until pwsyncd resolves them\n";
    };
    auto sections = load_directories(path);
    if (!sections) { later(sections.error().message); return found; }
    Directories dirs(c, std::move(*sections));
    for (const auto& name : names) {
        if (found.contains(ascii_lower(name))) continue;
        auto a = dirs.resolve(name);
        if (!a && a.error().retryable()) { later("the directory cannot be reached: " + a.error().message); break; }
        if (!a && a.error().reason == dir::Reason::ambiguous) {
            found[ascii_lower(name)] = FoundAccount{{}, {}, a.error().message, {}};
            continue;
        }
        if (!a) { c.err() << "pwsync: warning: " << name << " not resolved: " << a.error().message << "\n"; continue; }
        FoundAccount account{dirs.names(*a), {}, {}, {}};
        // Several domains: a bare sam found in one is mapped as DOMAIN\sam,
        // so that no other domain's namesake ever matches it.
        if (dirs.size() > 1 && dir::is_bare_sam(name)) account.qualified = dirs.domain(a->index).netbios + "\\" + name;
        auto conn = dirs.connection(a->index);  // open: it just answered
        auto why = dir::privileged_reason(**conn, a->account);
        if (!why && why.error().retryable()) { later("the directory cannot be reached: " + why.error().message); break; }
        if (!why) c.err() << "pwsync: warning: the groups of " << name << " could not be read (" << why.error().message
                          << "); pwsyncd checks its privilege before each delivery\n";
        else account.privileged = std::move(*why);
        found[ascii_lower(name)] = std::move(account);
    }
    // A bare sam the directories could not place is not mapped unresolved:
    // with several domains it would match a namesake in any.
    if (dirs.size() > 1)
        for (const auto& name : names)
            if (dir::is_bare_sam(name) && !found.contains(ascii_lower(name)))
                found[ascii_lower(name)] = FoundAccount{{}, {}, "'" + name + "' does not say its domain and the "
                    "directories could not tell which has it: name it DOMAIN\\sam", {}};
    return found;
}

Status record_account(store::WriteTxn& w, const FoundAccounts& found, store::Mapping& m) {
    const auto it = found.find(ascii_lower(m.windows));
    if (it == found.end()) return {};
    if (!it->second.ambiguous.empty()) return fail(Errc::invalid_argument, it->second.ambiguous);
    if (!it->second.qualified.empty()) m.windows = it->second.qualified;
    if (!it->second.privileged.empty()) {
        PWSYNC_ASSIGN(store::App app, w.app(m.app));
        if (!app.allow_privileged)
            return fail(Errc::conflict, m.windows + " is a privileged account (" + it->second.privileged + "); application " +
                                            app.name + " does not allow privileged accounts (pwsync app update " + app.name +
                                            " --allow-privileged allows them)");
        PWSYNC_TRY(w.audit("mapping.privileged", m.app + "/" + m.windows,
                           "privileged account mapped (" + it->second.privileged + "); application " + app.name +
                               " allows privileged accounts"));
    }
    PWSYNC_TRY(w.note_account(it->second.names));
    m.object_guid = it->second.names.guid;
    return {};
}

Status record_and_create(store::WriteTxn& w, const FoundAccounts& found, store::Mapping m) {
    PWSYNC_TRY(record_account(w, found, m));
    return w.create_mapping(std::move(m));
}

void add_directory_commands(std::vector<Command>& out) {
    out.push_back({"check", "", "[--user NAME]",
                   "check the [directory] settings: connection, bind, a user, DirSync rights (one line each)",
                   [](auto& d, auto&) {
                       d.add_options()("user", po::value<std::string>()->value_name("NAME"),
                                       "also resolve this account (sam, DOMAIN\\sam, UPN, DN or {GUID})");
                   },
                   check});
    out.push_back({"mapping", "resolve", "[--app APP] [--all]",
                   "resolve mappings' Windows accounts to objectGUIDs in the directory and store them",
                   [](auto& d, auto&) {
                       d.add_options()("app", po::value<std::string>()->value_name("APP"), "only this application")
                                      ("all", "also re-resolve mappings that already have an objectGUID");
                   },
                   resolve_mappings});
}

}  // namespace pwsync::cli
