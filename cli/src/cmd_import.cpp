// pwsync import esso FILE.xml...: applications, their password sync flags
// and mappings from ESSO's ssomanage XML, in one transaction (all or
// nothing), with --dry-run to see the plan first.
#include <fstream>
#include <set>
#include <sstream>

#include "cli.h"
#include "esso.h"

namespace pwsync::cli {
namespace {

struct Plan {
    json doc = json::object();
    std::vector<std::string> lines;  // what was (or would be) done
};

Result<std::string> slurp(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return fail(Errc::not_found, "cannot read " + file);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// --adapter APP=ADAPTER pairs.
std::map<std::string, std::string> adapter_choices(const Context& c) {
    std::map<std::string, std::string> out;
    for (const auto& v : c.opt<std::vector<std::string>>("adapter").value_or(std::vector<std::string>{})) {
        const auto eq = v.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == v.size())
            throw UsageError{"--adapter takes APP=ADAPTER, not '" + v + "'"};
        out[ascii_lower(v.substr(0, eq))] = v.substr(eq + 1);
    }
    return out;
}

void set_flag(store::AdapterUpdate& u, const std::string& flag, bool v) {
    if (flag == "syncToAdapter") u.sync_to_adapter = v;
    else if (flag == "syncFromAdapter") u.sync_from_adapter = v;
    else if (flag == "changeWindowsPassword") u.change_windows_password = v;
    else if (flag == "verifyOldPassword") u.verify_old_password = v;
    else if (flag == "sendOldPassword") u.send_old_password = v;
    else if (flag == "allowMappingConflicts") u.allow_mapping_conflicts = v;
}

std::string at(const std::string& file, std::size_t line) {
    return file + (line ? " line " + std::to_string(line) : std::string()) + ": ";
}

// Which adapter an application's sync flags go to: --adapter, else the one
// it already belongs to, else an adapter of the same name; empty if none.
Result<std::string> adapter_for(store::WriteTxn& w, const esso::Application& a,
                                const std::map<std::string, std::string>& chosen) {
    if (auto it = chosen.find(ascii_lower(a.name)); it != chosen.end()) {
        PWSYNC_ASSIGN(auto ad, w.adapter(it->second));
        return ad.name;
    }
    if (auto existing = w.app(a.name); existing && !existing->adapter.empty()) return existing->adapter;
    if (auto same = w.adapter(a.name)) return same->name;
    return std::string();
}

Status import_apps(store::WriteTxn& w, const std::string& file, const esso::Document& d,
                   const std::map<std::string, std::string>& chosen, Plan& plan,
                   std::map<std::string, std::pair<std::string, bool>>& flags_seen,
                   std::vector<std::string>& not_mapped) {
    for (const auto& a : d.apps) {
        const std::string ctx = at(file, a.line) + "application '" + a.name + "': ";
        auto existing = w.app(a.name);
        if (!existing && existing.error().code != Errc::not_found) return std::unexpected(existing.error());
        if (existing) {
            store::App app = *existing;
            if (a.description) app.description = *a.description;
            if (a.contact) app.contact = *a.contact;
            if (a.enabled) app.enabled = *a.enabled;
            if (auto st = w.update_app(app); !st) return fail(st.error().code, ctx + st.error().message);
            plan.lines.push_back("application " + app.name + ": updated");
        } else {
            store::App app;
            app.name = a.name;
            app.description = a.description.value_or("");
            app.contact = a.contact.value_or("");
            app.enabled = a.enabled.value_or(true);
            if (auto st = w.create_app(app); !st) return fail(st.error().code, ctx + st.error().message);
            plan.lines.push_back("application " + app.name + ": created");
        }
        PWSYNC_ASSIGN(const std::string adapter, adapter_for(w, a, chosen));
        json japp = {{"name", a.name}, {"created", !existing.has_value()}, {"adapter", adapter}};
        if (adapter.empty()) {
            if (!a.sync_flags.empty()) {
                std::string names;
                for (const auto& [f, v] : a.sync_flags) names += (names.empty() ? "" : ", ") + f + "=" + (v ? "yes" : "no");
                not_mapped.push_back(ctx + names + " not applied: no adapter for it (use --adapter " + a.name +
                                     "=ADAPTER, or create an adapter named " + a.name + ")");
            }
            plan.doc["applications"].push_back(japp);
            continue;
        }
        if (auto st = w.add_app_to_adapter(adapter, a.name); !st) return fail(st.error().code, ctx + st.error().message);
        store::AdapterUpdate u;
        if (a.enabled) u.enabled = *a.enabled;
        for (const auto& [f, v] : a.sync_flags) {
            const std::string key = ascii_lower(adapter) + "/" + f;
            if (auto [it, fresh] = flags_seen.try_emplace(key, a.name, v); !fresh && it->second.second != v)
                return fail(Errc::conflict, ctx + f + "=" + (v ? "yes" : "no") + " contradicts application '" +
                                                it->second.first + "' in the same adapter " + adapter +
                                                "; nothing was imported");
            set_flag(u, f, v);
        }
        if (auto st = w.update_adapter(adapter, std::move(u)); !st) return fail(st.error().code, ctx + st.error().message);
        std::string flags;
        if (a.enabled) flags += std::string(" enableApp=") + (*a.enabled ? "yes" : "no");
        for (const auto& [f, v] : a.sync_flags) flags += " " + f + "=" + (v ? "yes" : "no");
        plan.lines.push_back("adapter " + adapter + ": application " + a.name + (flags.empty() ? "" : ";" + flags));
        plan.doc["applications"].push_back(japp);
    }
    return {};
}

Status import_mappings(store::WriteTxn& w, const std::string& file, const esso::Document& d, const FoundAccounts& found,
                       Plan& plan, std::size_t& created) {
    for (const auto& m : d.mappings) {
        const std::string ctx = at(file, m.line) + "mapping " + m.windows + " -> " + m.app + "/" + m.external + ": ";
        auto existing = w.mapping({m.app, m.windows});
        if (existing) {
            if (existing->external != m.external)
                return fail(Errc::conflict, ctx + "the store maps " + m.windows + " to '" + existing->external +
                                                "' in " + m.app + "; nothing was imported");
            plan.doc["mappings"].push_back({{"windows", m.windows}, {"app", m.app}, {"external", m.external}, {"created", false}});
            continue;
        }
        if (existing.error().code != Errc::not_found) return fail(existing.error().code, ctx + existing.error().message);
        store::Mapping sm;
        sm.app = m.app;
        sm.windows = m.windows;
        sm.external = m.external;
        if (auto st = record_and_create(w, found, sm); !st)
            return fail(st.error().code, ctx + st.error().message + "; nothing was imported");
        ++created;
        plan.doc["mappings"].push_back({{"windows", m.windows}, {"app", m.app}, {"external", m.external}, {"created", true}});
    }
    return {};
}

Status import_esso(Context& c) {
    const auto files = c.opt<std::vector<std::string>>("FILE").value_or(std::vector<std::string>{});
    if (files.empty()) throw UsageError{"name at least one ssomanage XML file"};
    const bool dry = c.vm().count("dry-run") > 0;
    const auto chosen = adapter_choices(c);
    // Every file parsed and its accounts looked up before the store
    // transaction opens: the directory may be slow.
    std::vector<esso::Document> docs;
    std::vector<std::string> names;
    for (const auto& f : files) {
        PWSYNC_ASSIGN(auto content, slurp(f));
        PWSYNC_ASSIGN(auto d, esso::parse(content, f));
        for (const auto& m : d.mappings) names.push_back(m.windows);
        docs.push_back(std::move(d));
    }
    const auto found = dry ? FoundAccounts{} : look_up_accounts(c, names);
    PWSYNC_ASSIGN(auto s, c.open_store());
    Plan plan;
    std::vector<std::string> not_mapped;
    std::map<std::string, std::pair<std::string, bool>> flags_seen;
    std::size_t apps = 0, mappings = 0, created = 0;
    std::string summary;
    std::string from;
    for (const auto& f : files) from += (from.empty() ? "" : ", ") + f;
    // A dry run rolls back: it shows what the import would do.
    const auto unit = [&](store::WriteTxn& w) -> Status {
        plan.doc["applications"] = json::array();  // a retried run starts afresh
        plan.doc["mappings"] = json::array();
        plan.lines.clear();
        not_mapped.clear();
        flags_seen.clear();
        apps = mappings = created = 0;
        // Applications of every file first, so a mapping may name an
        // application created by another file of the same import.
        for (std::size_t i = 0; i < files.size(); ++i) {
            const auto& d = docs[i];
            not_mapped.insert(not_mapped.end(), d.not_mapped.begin(), d.not_mapped.end());
            PWSYNC_TRY(import_apps(w, files[i], d, chosen, plan, flags_seen, not_mapped));
            apps += d.apps.size();
        }
        for (std::size_t i = 0; i < files.size(); ++i) {
            PWSYNC_TRY(import_mappings(w, files[i], docs[i], found, plan, created));
            mappings += docs[i].mappings.size();
        }
        if (apps == 0 && mappings == 0) return fail(Errc::invalid_argument, "no <application> or <mapping> in the files; nothing was imported");
        if (c.vm().count("strict") && !not_mapped.empty())
            return fail(Errc::invalid_argument, std::to_string(not_mapped.size()) +
                                                    " item(s) could not be mapped (first: " + not_mapped.front() +
                                                    "); --strict: nothing was imported");
        summary = std::to_string(apps) + " applications, " + std::to_string(mappings) + " mappings (" +
                  std::to_string(created) + " new)";
        return w.audit("import.esso", from, summary + (dry ? " [dry run]" : ""));
    };
    PWSYNC_TRY(dry ? s.rehearse(c.actor(), unit) : s.transact(c.actor(), unit));

    plan.doc["not_mapped"] = not_mapped;
    plan.doc["dry_run"] = dry;
    if (c.want_json()) {
        c.print_json(plan.doc);
        return {};
    }
    for (const auto& l : plan.lines) c.out() << l << "\n";
    for (const auto& l : not_mapped) c.err() << "not mapped: " << l << "\n";
    c.out() << (dry ? "dry run, nothing changed: would import " : "imported ") << summary << " from " << from << "\n";
    return {};
}

}  // namespace

void add_import_commands(std::vector<Command>& out) {
    out.push_back({"import", "esso", "FILE.xml... [--adapter APP=ADAPTER]... [--dry-run] [--strict] [--json]",
                   "import applications, sync flags and mappings from ESSO ssomanage XML (all or nothing)",
                   [](auto& d, auto& p) {
                       d.add_options()("FILE", po::value<std::vector<std::string>>(), "ssomanage -createapps / -createmappings XML file")
                                      ("adapter", po::value<std::vector<std::string>>()->value_name("APP=ADAPTER"),
                                       "put APP in ADAPTER and apply its password sync flags there")
                                      ("dry-run", "show what would be imported; change nothing")
                                      ("strict", "fail if anything in the files has no pwsync equivalent")
                                      ("json", "print JSON");
                       p.add("FILE", -1);
                   },
                   import_esso});
}

}  // namespace pwsync::cli
