#include "rule_keeper.h"

#include "pwsync/rules.h"

namespace pwsync::gateway {

Result<RuleRound> RuleKeeper::round() {
    RuleRound out;
    std::vector<store::Rule> rules;
    {
        PWSYNC_ASSIGN(auto r, store_.read());
        PWSYNC_ASSIGN(rules, r.rules());
    }
    std::string seen;
    for (const auto& x : rules)
        if (x.enabled) seen += x.name + '\n' + std::to_string(to_unix_micros(x.updated)) + '\n';
    if (seen.empty()) {
        rules_seen_.clear();
        return out;
    }
    if (!conn_) {
        auto c = directory::Connection::open(ad_.connect_options());
        if (!c) return fail(Errc::unavailable, c.error().message);
        conn_.emplace(std::move(*c));
    }
    auto root = conn_->root_dse();
    if (!root) {
        conn_.reset();
        return fail(Errc::unavailable, root.error().message);
    }
    if (usn_ && *usn_ == root->highest_committed_usn && seen == rules_seen_) return out;
    out.evaluated = true;
    bool complete = true;
    for (const auto& rule : rules) {
        if (!rule.enabled) continue;
        ++out.rules;
        auto tmpl = rules::Template::parse(rule.external);
        if (!tmpl) {
            log_("rule " + rule.name + ": " + tmpl.error().message);
            continue;
        }
        auto found = rules::evaluate(*conn_, ad_.domain(), rule, *tmpl);
        if (!found) {
            log_("rule " + rule.name + ": " + found.error().message);
            complete = false;
            if (found.error().retryable()) {
                conn_.reset();
                break;
            }
            continue;
        }
        std::optional<Fence> right;
        if (fence_) {
            right = fence_();
            if (!right) return fail(Errc::refused, "not the active gateway any more: rules left to the new one");
        }
        rules::Plan plan;
        auto st = store_.transact("pwsyncd", [&](store::WriteTxn& w) -> Status {
            if (right) PWSYNC_TRY(w.require_lease(right->instance, right->epoch));
            PWSYNC_ASSIGN(auto current, w.rule(rule.name));  // changed meanwhile: the next round takes it
            if (!current.enabled || current.updated != rule.updated) return {};
            PWSYNC_ASSIGN(plan, rules::apply(w, rule, *found, ad_.domain().netbios));
            return {};
        });
        if (!st) {
            log_("rule " + rule.name + ": " + st.error().message);
            complete = false;
            continue;
        }
        out.created += plan.creates.size();
        out.changed += plan.changes.size();
        out.removed += plan.removes.size();
        out.conflicts += plan.conflicts.size();
        if (!plan.empty())
            log_("rule " + rule.name + ": " + std::to_string(plan.creates.size()) + " created, " +
                 std::to_string(plan.changes.size()) + " changed, " + std::to_string(plan.removes.size()) +
                 " removed, " + std::to_string(plan.conflicts.size()) + " conflict(s)");
    }
    // The USN read before the searches: a change made during them is seen next round.
    if (complete) {
        usn_ = root->highest_committed_usn;
        rules_seen_ = seen;
    }
    return out;
}

}  // namespace pwsync::gateway
