// Mapping rules: the rule records, and the rule a mapping was made by. What
// a rule selects in the directory and the plan it makes are pwsync/rules.h's.
#include <algorithm>

#include "impl.h"

namespace pwsync::store {
namespace {

Result<Rule> load_rule(const TxnState& s, std::string_view name) {
    return load(s, s.db().rules, app_key(name), records::decode_rule, "rule " + quote(name) + " does not exist");
}

std::string scope_text(const RuleScope& sc) {
    std::string out;
    auto part = [&](const char* what, const std::string& v) {
        if (v.empty()) return;
        if (!out.empty()) out += ' ';
        out += std::string(what) + "=" + v;
    };
    part("group", sc.group);
    part("base", sc.base);
    part("filter", sc.filter);
    return out;
}

std::string rule_detail(const Rule& r) {
    return "app=" + r.app + " " + scope_text(r.scope) + " external=" + r.external + (r.enabled ? "" : " disabled") +
           (r.allow_external_updates ? " external-updates=allowed" : "");
}

Status check_rule(const Rule& r) {
    PWSYNC_TRY(check_name("rule name", r.name));
    if (r.scope.empty())
        return fail(Errc::invalid_argument, "rule " + quote(r.name) + " needs a scope: a group, a base OU and/or a filter");
    if (r.external.empty()) return fail(Errc::invalid_argument, "rule " + quote(r.name) + " needs an external user template");
    for (const auto* v : {&r.scope.group, &r.scope.base, &r.scope.filter, &r.external})
        if (!valid_utf8(*v)) return fail(Errc::invalid_argument, "rule " + quote(r.name) + ": not valid UTF-8");
    return {};
}

}  // namespace

Result<Rule> ReadTxn::rule(std::string_view name) const { return load_rule(*s_, name); }

Result<std::vector<Rule>> ReadTxn::rules() const { return load_all(*s_, s_->db().rules, records::decode_rule); }

Result<std::vector<Mapping>> ReadTxn::rule_mappings(std::string_view name) const {
    PWSYNC_ASSIGN(Rule r, rule(name));
    std::vector<Mapping> out;
    MappingFilter f;
    f.app = r.app;
    PWSYNC_TRY(for_each_mapping(f, [&](const Mapping& m) {
        if (ascii_lower(m.rule) == ascii_lower(r.name)) out.push_back(m);
        return true;
    }));
    return out;
}

Status WriteTxn::create_rule(Rule r) {
    PWSYNC_TRY(check_rule(r));
    PWSYNC_ASSIGN(App a, app(r.app));
    r.app = a.name;
    PWSYNC_ASSIGN(auto existing, s_->kv().get(s_->db().rules, app_key(r.name)));
    if (existing) return fail(Errc::already_exists, "rule " + quote(r.name) + " already exists");
    r.created = r.updated = s_->now();
    r.evaluated = {};
    r.conflicts.clear();
    PWSYNC_TRY(s_->kv().put(s_->db().rules, app_key(r.name), records::encode(r)));
    return audit("rule.create", r.name, rule_detail(r));
}

Status WriteTxn::update_rule(const Rule& changed) {
    PWSYNC_ASSIGN(Rule r, rule(changed.name));
    PWSYNC_ASSIGN(App a, app(changed.app));
    if (ascii_lower(a.name) != ascii_lower(r.app)) {
        PWSYNC_ASSIGN(auto made, rule_mappings(r.name));
        if (!made.empty())
            return fail(Errc::in_use, "rule " + quote(r.name) + " has " + std::to_string(made.size()) +
                                          " mapping(s) in application " + quote(r.app) +
                                          "; delete the rule (with or without --keep-mappings) to move it");
    }
    r.app = a.name;
    r.scope = changed.scope;
    r.external = changed.external;
    r.enabled = changed.enabled;
    r.allow_external_updates = changed.allow_external_updates;
    PWSYNC_TRY(check_rule(r));
    r.updated = s_->now();
    PWSYNC_TRY(s_->kv().put(s_->db().rules, app_key(r.name), records::encode(r)));
    return audit("rule.update", r.name, rule_detail(r));
}

Status WriteTxn::delete_rule(std::string_view name, bool keep_mappings) {
    PWSYNC_ASSIGN(Rule r, rule(name));
    PWSYNC_ASSIGN(auto made, rule_mappings(r.name));
    for (const auto& m : made) {
        const MappingKey k{m.app, m.windows};
        if (!keep_mappings) {
            PWSYNC_TRY(delete_mapping(k));
            continue;
        }
        PWSYNC_ASSIGN(auto v, s_->kv().get(s_->db().mappings, mapping_key(m.app, m.windows)));
        if (!v) return fail(Errc::corrupt, "rule " + quote(r.name) + " lists a missing mapping");
        PWSYNC_ASSIGN(auto rec, records::decode_mapping(*v));
        rec.mapping.rule.clear();
        rec.mapping.updated = s_->now();
        PWSYNC_TRY(s_->kv().put(s_->db().mappings, mapping_key(m.app, m.windows), records::encode(rec)));
        PWSYNC_TRY(audit("mapping.keep", m.app + "/" + m.windows, "rule " + r.name + " deleted; now hand-made"));
    }
    PWSYNC_TRY(s_->kv().del(s_->db().rules, app_key(r.name)));
    return audit("rule.delete", r.name,
                 std::to_string(made.size()) + " mapping(s) " + (keep_mappings ? "kept as hand-made" : "deleted"));
}

Status WriteTxn::note_rule_evaluation(std::string_view name, std::vector<std::string> found) {
    PWSYNC_ASSIGN(Rule r, rule(name));
    for (const auto& c : found)
        if (std::find(r.conflicts.begin(), r.conflicts.end(), c) == r.conflicts.end())
            PWSYNC_TRY(audit("rule.conflict", r.name, c));
    r.conflicts = std::move(found);
    r.evaluated = s_->now();
    return s_->kv().put(s_->db().rules, app_key(r.name), records::encode(r));
}

}  // namespace pwsync::store
