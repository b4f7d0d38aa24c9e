// A rule's plan against the store, and carrying it out.
#include <map>
#include <set>

#include "pwsync/rules.h"

namespace pwsync::rules {
namespace {

std::string windows_name(const Candidate& c, std::string_view netbios) {
    return netbios.empty() ? c.sam : std::string(netbios) + "\\" + c.sam;
}

std::string who(const Candidate& c) { return c.sam.empty() ? c.dn : c.sam; }

bool same_rule(const store::Mapping& m, const store::Rule& r) { return ascii_lower(m.rule) == ascii_lower(r.name); }

// Why the account gives no usable external id: a missing attribute, or an
// id the store would refuse (which, refused in apply, would fail the whole
// rule). Empty: usable.
std::string unusable(const Candidate& c) {
    if (!c.missing.empty()) return c.missing;
    auto ok = store::check_external_user(c.external);
    return ok ? std::string() : "the template gives an invalid external user id (" + ok.error().message + ")";
}

}  // namespace

Result<Plan> make_plan(const store::ReadTxn& t, const store::Rule& rule, const Evaluation& found,
                       std::string_view netbios) {
    Plan p;
    p.rule = rule.name;
    p.app = rule.app;
    p.in_scope = found.accounts.size();

    // The application's mappings by account, and which external ids they hold.
    std::map<std::string, std::vector<const store::Mapping*>> by_guid;
    std::map<std::string, const store::Mapping*> by_windows;
    std::vector<store::Mapping> all;
    store::MappingFilter f;
    f.app = rule.app;
    PWSYNC_TRY(t.for_each_mapping(f, [&](const store::Mapping& m) {
        all.push_back(m);
        return true;
    }));
    std::map<std::string, std::vector<const store::Mapping*>> by_external;
    for (const auto& m : all) {
        if (!m.object_guid.empty()) by_guid[ascii_lower(m.object_guid)].push_back(&m);
        by_windows[ascii_lower(m.windows)] = &m;
        by_external[ascii_lower(m.external)].push_back(&m);
    }

    // Two accounts in scope that give one external id: neither is mapped.
    std::map<std::string, std::vector<const Candidate*>> wanted;
    for (const auto& c : found.accounts)
        if (unusable(c).empty()) wanted[ascii_lower(c.external)].push_back(&c);

    std::set<std::string> keep;  // GUIDs whose rule-made mapping stays as it is
    for (const auto& c : found.accounts) {
        const std::string guid = ascii_lower(c.guid);
        keep.insert(guid);
        const std::vector<const store::Mapping*>* mine = nullptr;
        if (auto it = by_guid.find(guid); it != by_guid.end()) mine = &it->second;
        const store::Mapping* own = nullptr;    // this rule's mapping of the account
        const store::Mapping* other = nullptr;  // a hand-made one or another rule's
        if (mine)
            for (const auto* m : *mine) (same_rule(*m, rule) ? own : other) = m;
        if (auto why = unusable(c); !why.empty()) {
            p.missing.push_back(c.dn + ": " + why);
            continue;
        }
        if (other) {
            if (other->rule.empty() && ascii_lower(other->external) == ascii_lower(c.external)) continue;
            p.conflicts.push_back(who(c) + ": " +
                                  (other->rule.empty() ? "a hand-made mapping" : "a mapping of rule " + other->rule) +
                                  " to '" + other->external + "' wins over the rule's '" + c.external + "'");
            continue;
        }
        const auto& same = wanted[ascii_lower(c.external)];
        if (same.size() > 1) {
            std::string names;
            for (const auto* o : same) names += (names.empty() ? "" : ", ") + who(*o);
            p.conflicts.push_back(who(c) + ": external user '" + c.external + "' is given by several accounts (" +
                                  names + "); none is mapped");
            continue;
        }
        // The external id held by another account's mapping in the application.
        const store::Mapping* holder = nullptr;
        if (auto it = by_external.find(ascii_lower(c.external)); it != by_external.end())
            for (const auto* m : it->second)
                if (ascii_lower(m->object_guid) != guid) holder = m;
        if (own) {
            if (own->external == c.external) { ++p.unchanged; continue; }
            if (!rule.allow_external_updates) {
                p.conflicts.push_back(who(c) + ": the external user would change from '" + own->external + "' to '" +
                                      c.external + "'; kept (the rule does not allow external id updates)");
                continue;
            }
            if (holder) {
                p.conflicts.push_back(who(c) + ": external user '" + c.external + "' is already mapped to " +
                                      holder->windows + "; kept '" + own->external + "'");
                continue;
            }
            p.changes.push_back({own->windows, guid, c.external, own->external});
            continue;
        }
        const std::string win = windows_name(c, netbios);
        if (auto it = by_windows.find(ascii_lower(win)); it != by_windows.end()) {
            p.conflicts.push_back(who(c) + ": " + win + " already has a mapping (to '" + it->second->external +
                                  "', account not resolved to this objectGUID); it wins");
            continue;
        }
        if (holder) {
            p.conflicts.push_back(who(c) + ": external user '" + c.external + "' is already mapped to " +
                                  holder->windows + "; it wins");
            continue;
        }
        p.creates.push_back({win, guid, c.external, {}});
    }
    // The rule's mappings of accounts no longer in scope.
    for (const auto& m : all)
        if (same_rule(m, rule) && !keep.contains(ascii_lower(m.object_guid)))
            p.removes.push_back({m.windows, m.object_guid, {}, m.external});
    return p;
}

Result<Plan> apply(store::WriteTxn& w, const store::Rule& rule, const Evaluation& found, std::string_view netbios) {
    PWSYNC_ASSIGN(Plan p, make_plan(w, rule, found, netbios));
    std::map<std::string, const Candidate*> by_guid;
    for (const auto& c : found.accounts) by_guid[ascii_lower(c.guid)] = &c;
    // What the store refuses now is a conflict, not a failure of the rest.
    auto refused = [&](const Status& st, const std::string& what) -> Status {
        if (st) return {};
        if (st.error().code != Errc::conflict && st.error().code != Errc::already_exists) return st;
        p.conflicts.push_back(what + ": " + st.error().message);
        return {};
    };
    std::vector<Change> done;
    for (const auto& ch : p.creates) {
        const Candidate& c = *by_guid.at(ch.guid);
        store::Mapping m;
        m.app = rule.app;
        m.windows = ch.windows;
        m.external = ch.external;
        m.object_guid = ch.guid;
        m.rule = rule.name;
        PWSYNC_TRY(w.note_account(store::AccountNames{c.guid, c.sam, std::string(netbios), c.upn, c.dn, false, {}}));
        auto st = w.create_mapping(std::move(m));
        PWSYNC_TRY(refused(st, who(c)));
        if (st) done.push_back(ch);
    }
    p.creates = std::move(done);
    done.clear();
    for (const auto& ch : p.changes) {
        auto st = w.set_mapping_external({rule.app, ch.windows}, ch.external);
        PWSYNC_TRY(refused(st, ch.windows));
        if (st) done.push_back(ch);
    }
    p.changes = std::move(done);
    for (const auto& ch : p.removes) {
        PWSYNC_TRY(w.delete_mapping({rule.app, ch.windows}));
        PWSYNC_TRY(w.audit("rule.remove", rule.app + "/" + ch.windows,
                           "rule " + rule.name + ": the account left its scope (left the group or OU, disabled, "
                           "deleted or privileged); external=" + ch.old_external));
    }
    PWSYNC_TRY(w.note_rule_evaluation(rule.name, p.conflicts));
    if (!p.empty())
        PWSYNC_TRY(w.audit("rule.apply", rule.name,
                           std::to_string(p.creates.size()) + " created, " + std::to_string(p.changes.size()) +
                               " changed, " + std::to_string(p.removes.size()) + " removed, " +
                               std::to_string(p.conflicts.size()) + " conflict(s)"));
    return p;
}

}  // namespace pwsync::rules
