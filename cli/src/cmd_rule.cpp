// pwsync rule create|update|delete|list|show|preview|apply: mapping rules
// (pwsync/rules.h). preview and apply read the directory of the
// configuration file's [directory] section.
#include <chrono>

#include "cli.h"
#include "pwsync/rules.h"

namespace pwsync::cli {
namespace {

void rule_name_arg(po::options_description& d, po::positional_options_description& p) {
    d.add_options()("NAME", po::value<std::string>(), "rule name");
    p.add("NAME", 1);
}

void rule_options(po::options_description& d) {
    d.add_options()("app", po::value<std::string>()->value_name("APP"), "application the rule maps accounts in")
        ("scope", po::value<std::vector<std::string>>()->value_name("KIND=VALUE"),
         "group=GROUP (DN or name; nested members too), ou=DN (accounts under it) or filter=LDAPFILTER; "
         "repeat to combine (all must hold)")
        ("external", po::value<std::string>()->value_name("TEMPLATE"),
         "external user id from the account's attributes, e.g. '{sAMAccountName|lower}'; transforms: upper, lower, "
         "localpart, truncate N")
        ("allow-external-updates", po::value<std::string>()->value_name("yes|no"),
         "let a rename (a change of the template's attributes) change an existing mapping's external user id");
}

bool yes_no_value(const std::string& what, const std::string& v) {
    const std::string l = ascii_lower(v);
    if (l == "yes" || l == "true" || l == "on") return true;
    if (l == "no" || l == "false" || l == "off") return false;
    throw UsageError{"--" + what + " takes yes or no, not '" + v + "'"};
}

store::RuleScope parse_scope(const std::vector<std::string>& parts) {
    store::RuleScope sc;
    for (const auto& p : parts) {
        const auto eq = p.find('=');
        const std::string kind = eq == std::string::npos ? std::string() : ascii_lower(p.substr(0, eq));
        const std::string value = eq == std::string::npos ? std::string() : p.substr(eq + 1);
        std::string* into = kind == "group" ? &sc.group : kind == "ou" || kind == "base" ? &sc.base
                            : kind == "filter" ? &sc.filter : nullptr;
        if (into == nullptr || value.empty())
            throw UsageError{"--scope '" + p + "': expected group=GROUP, ou=DN or filter=LDAPFILTER"};
        if (!into->empty()) throw UsageError{"--scope " + kind + " given twice"};
        *into = value;
    }
    return sc;
}

Status check_template(const std::string& text) {
    PWSYNC_ASSIGN(auto t, rules::Template::parse(text));
    (void)t;
    return {};
}

std::string scope_text(const store::RuleScope& sc) {
    std::string out;
    for (auto [k, v] : {std::pair{"group", &sc.group}, {"ou", &sc.base}, {"filter", &sc.filter}})
        if (!v->empty()) out += (out.empty() ? "" : " ") + std::string(k) + "=" + *v;
    return out;
}

json rule_json(const store::Rule& r, std::size_t mappings) {
    return {{"name", r.name},
            {"app", r.app},
            {"scope", {{"group", r.scope.group.empty() ? json(nullptr) : json(r.scope.group)},
                       {"ou", r.scope.base.empty() ? json(nullptr) : json(r.scope.base)},
                       {"filter", r.scope.filter.empty() ? json(nullptr) : json(r.scope.filter)}}},
            {"external", r.external},
            {"enabled", r.enabled},
            {"allow_external_updates", r.allow_external_updates},
            {"mappings", mappings},
            {"created", time_text(r.created)},
            {"updated", time_text(r.updated)},
            {"evaluated", r.evaluated == TimePoint{} ? json(nullptr) : json(time_text(r.evaluated))},
            {"conflicts", r.conflicts}};
}

json change_json(const rules::Change& c) {
    json j = {{"windows", c.windows}, {"object_guid", c.guid}};
    if (!c.external.empty()) j["external"] = c.external;
    if (!c.old_external.empty()) j["old_external"] = c.old_external;
    return j;
}

void print_plan(Context& c, const rules::Plan& p, bool done, std::chrono::milliseconds took) {
    if (c.want_json()) {
        json creates = json::array(), changes = json::array(), removes = json::array();
        for (const auto& x : p.creates) creates.push_back(change_json(x));
        for (const auto& x : p.changes) changes.push_back(change_json(x));
        for (const auto& x : p.removes) removes.push_back(change_json(x));
        c.print_json({{"rule", p.rule}, {"app", p.app}, {"applied", done}, {"in_scope", p.in_scope},
                      {"unchanged", p.unchanged}, {"create", creates}, {"change", changes}, {"remove", removes},
                      {"conflicts", p.conflicts}, {"missing", p.missing}, {"milliseconds", took.count()}});
        return;
    }
    for (const auto& x : p.creates) c.out() << "create  " << x.windows << " -> " << x.external << "\n";
    for (const auto& x : p.changes) c.out() << "change  " << x.windows << ": " << x.old_external << " -> " << x.external << "\n";
    for (const auto& x : p.removes) c.out() << "remove  " << x.windows << " (was " << x.old_external << ")\n";
    for (const auto& x : p.conflicts) c.out() << "conflict " << x << "\n";
    for (const auto& x : p.missing) c.out() << "missing " << x << "\n";
    c.out() << "rule " << p.rule << " (" << p.app << "): " << p.in_scope << " account(s) in scope, " << p.unchanged
            << " unchanged, " << p.creates.size() << (done ? " created, " : " to create, ") << p.changes.size()
            << (done ? " changed, " : " to change, ") << p.removes.size() << (done ? " removed, " : " to remove, ")
            << p.conflicts.size() << " conflict(s), " << p.missing.size() << " missing attribute(s) (" << took.count()
            << " ms)\n";
}

// Evaluates the rule in the directory, then plans (preview) or applies.
Status evaluate(Context& c, bool write) {
    const std::string name = c.arg("NAME");
    PWSYNC_ASSIGN(auto s, c.open_store());
    store::Rule rule;
    {
        PWSYNC_ASSIGN(auto r, s.read());
        PWSYNC_ASSIGN(rule, r.rule(name));
    }
    if (write && !rule.enabled)
        return fail(Errc::refused, "rule " + rule.name + " is disabled (preview shows what it would do)");
    PWSYNC_ASSIGN(auto t, rules::Template::parse(rule.external));
    const auto start = std::chrono::steady_clock::now();
    // Several domains: the one its scope's OU or group DN lies in (as pwsyncd's keepers).
    PWSYNC_ASSIGN(auto dir, open_directory(c, {rule.scope.base, rule.scope.group}));
    PWSYNC_ASSIGN(auto found, rules::evaluate(dir.connection, dir.domain, rule, t));
    rules::Plan plan;
    if (write) {
        PWSYNC_TRY(s.transact(c.actor(), [&](store::WriteTxn& w) -> Status {
            PWSYNC_ASSIGN(plan, rules::apply(w, rule, found, dir.domain.netbios));
            return {};
        }));
    } else {
        PWSYNC_ASSIGN(auto r, s.read());
        PWSYNC_ASSIGN(plan, rules::make_plan(r, rule, found, dir.domain.netbios));
    }
    print_plan(c, plan, write,
               std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start));
    return {};
}

}  // namespace

void add_rule_commands(std::vector<Command>& out) {
    out.push_back({"rule", "create", "NAME --app APP --scope KIND=VALUE... --external TEMPLATE [--disabled]",
                   "create a mapping rule: accounts in scope get a mapping in APP (pwsyncd keeps them current)",
                   [](auto& d, auto& p) {
                       rule_name_arg(d, p);
                       rule_options(d);
                       d.add_options()("disabled", "create the rule disabled (preview works, nothing is applied)");
                   },
                   [](Context& c) -> Status {
                       store::Rule r;
                       r.name = c.arg("NAME");
                       r.app = c.arg("app");
                       r.external = c.arg("external");
                       if (!c.vm().count("scope")) throw UsageError{"missing --scope"};
                       r.scope = parse_scope(c.vm()["scope"].as<std::vector<std::string>>());
                       r.enabled = c.vm().count("disabled") == 0;
                       if (auto v = c.opt<std::string>("allow-external-updates"))
                           r.allow_external_updates = yes_no_value("allow-external-updates", *v);
                       PWSYNC_TRY(check_template(r.external));
                       return write_and_say(c, [&](store::WriteTxn& w) { return w.create_rule(r); },
                                            "created rule " + r.name + (r.enabled ? "" : " (disabled)"));
                   }});
    out.push_back({"rule", "update", "NAME [--app APP] [--scope KIND=VALUE...] [--external TEMPLATE] [--enable|--disable]",
                   "change a rule (--scope replaces the whole scope)",
                   [](auto& d, auto& p) {
                       rule_name_arg(d, p);
                       rule_options(d);
                       d.add_options()("enable", "enable the rule")("disable", "disable the rule (its mappings stay)");
                   },
                   [](Context& c) -> Status {
                       if (c.vm().count("enable") && c.vm().count("disable")) throw UsageError{"--enable or --disable, not both"};
                       const std::string name = c.arg("NAME");
                       if (auto e = c.opt<std::string>("external")) PWSYNC_TRY(check_template(*e));
                       std::optional<store::RuleScope> scope;
                       if (c.vm().count("scope")) scope = parse_scope(c.vm()["scope"].as<std::vector<std::string>>());
                       std::optional<bool> allow;
                       if (auto v = c.opt<std::string>("allow-external-updates"))
                           allow = yes_no_value("allow-external-updates", *v);
                       return write_and_say(c, [&](store::WriteTxn& w) -> Status {
                           PWSYNC_ASSIGN(store::Rule r, w.rule(name));
                           if (auto a = c.opt<std::string>("app")) r.app = *a;
                           if (scope) r.scope = *scope;
                           if (auto e = c.opt<std::string>("external")) r.external = *e;
                           if (c.vm().count("enable")) r.enabled = true;
                           if (c.vm().count("disable")) r.enabled = false;
                           if (allow) r.allow_external_updates = *allow;
                           return w.update_rule(r);
                       }, "updated rule " + name);
                   }});
    out.push_back({"rule", "delete", "NAME --keep-mappings|--delete-mappings",
                   "delete a rule; its mappings stay as hand-made ones, or go with it (one of the two is required "
                   "when it has any)",
                   [](auto& d, auto& p) {
                       rule_name_arg(d, p);
                       d.add_options()("keep-mappings", "keep the rule's mappings (they become hand-made)")
                                      ("delete-mappings", "delete the rule's mappings with it");
                   },
                   [](Context& c) -> Status {
                       const bool keep = c.vm().count("keep-mappings") > 0, drop = c.vm().count("delete-mappings") > 0;
                       if (keep && drop) throw UsageError{"--keep-mappings or --delete-mappings, not both"};
                       const std::string name = c.arg("NAME");
                       std::size_t n = 0;
                       PWSYNC_TRY(write_and_say(c, [&](store::WriteTxn& w) -> Status {
                           PWSYNC_ASSIGN(auto made, w.rule_mappings(name));
                           n = made.size();
                           if (n > 0 && !keep && !drop)
                               return fail(Errc::invalid_argument,
                                           "rule " + name + " has " + std::to_string(n) +
                                               " mapping(s): say what happens to them with --keep-mappings or "
                                               "--delete-mappings");
                           return w.delete_rule(name, keep);
                       }, "deleted rule " + name));
                       if (n > 0) c.out() << n << " mapping(s) " << (keep ? "kept as hand-made" : "deleted") << "\n";
                       return {};
                   }});
    out.push_back({"rule", "list", "[--json]", "mapping rules",
                   [](auto& d, auto&) { d.add_options()("json", "print JSON"); },
                   [](Context& c) -> Status {
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       PWSYNC_ASSIGN(auto r, s.read());
                       PWSYNC_ASSIGN(auto all, r.rules());
                       json arr = json::array();
                       std::vector<std::vector<std::string>> rows;
                       for (const auto& x : all) {
                           PWSYNC_ASSIGN(auto made, r.rule_mappings(x.name));
                           arr.push_back(rule_json(x, made.size()));
                           rows.push_back({x.name, x.app, scope_text(x.scope), x.external, yes_no(x.enabled),
                                           std::to_string(made.size()), std::to_string(x.conflicts.size())});
                       }
                       if (c.want_json()) c.print_json(arr);
                       else print_table(c.out(), {"NAME", "APP", "SCOPE", "EXTERNAL", "ENABLED", "MAPPINGS", "CONFLICTS"}, rows);
                       return {};
                   }});
    out.push_back({"rule", "show", "NAME [--json]", "one rule, its last evaluation's conflicts and its mappings",
                   [](auto& d, auto& p) {
                       rule_name_arg(d, p);
                       d.add_options()("json", "print JSON");
                   },
                   [](Context& c) -> Status {
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       PWSYNC_ASSIGN(auto r, s.read());
                       PWSYNC_ASSIGN(auto x, r.rule(c.arg("NAME")));
                       PWSYNC_ASSIGN(auto made, r.rule_mappings(x.name));
                       if (c.want_json()) {
                           json doc = rule_json(x, made.size());
                           json ms = json::array();
                           for (const auto& m : made) ms.push_back(to_json(m));
                           doc["mapping_list"] = ms;
                           c.print_json(doc);
                           return {};
                       }
                       c.out() << "name: " << x.name << "\napp: " << x.app << "\nscope: " << scope_text(x.scope)
                               << "\nexternal: " << x.external << "\nenabled: " << yes_no(x.enabled)
                               << "\nallow external updates: " << yes_no(x.allow_external_updates)
                               << "\ncreated: " << time_text(x.created) << "\nupdated: " << time_text(x.updated)
                               << "\nevaluated: " << time_text(x.evaluated) << "\nmappings: " << made.size() << "\n";
                       for (const auto& k : x.conflicts) c.out() << "conflict: " << k << "\n";
                       std::vector<std::vector<std::string>> rows;
                       for (const auto& m : made) rows.push_back({m.windows, m.external, m.object_guid});
                       if (!rows.empty()) {
                           c.out() << "\n";
                           print_table(c.out(), {"WINDOWS", "EXTERNAL", "OBJECTGUID"}, rows);
                       }
                       return {};
                   }});
    out.push_back({"rule", "preview", "NAME [--json]",
                   "what the rule would create, change and remove now, and its conflicts; writes nothing",
                   [](auto& d, auto& p) {
                       rule_name_arg(d, p);
                       d.add_options()("json", "print JSON");
                   },
                   [](Context& c) { return evaluate(c, false); }});
    out.push_back({"rule", "apply", "NAME [--json]",
                   "evaluate the rule now and carry out its plan (pwsyncd does this after directory changes)",
                   [](auto& d, auto& p) {
                       rule_name_arg(d, p);
                       d.add_options()("json", "print JSON");
                   },
                   [](Context& c) { return evaluate(c, true); }});
}

}  // namespace pwsync::cli
