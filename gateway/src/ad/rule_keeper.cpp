#include "rule_keeper.h"

#include <algorithm>
#include <set>
#include <vector>

namespace pwsync::gateway {
namespace {

namespace dir = pwsync::directory;

// More changed accounts than this and one paged search of each scope is
// cheaper than searching for them 100 at a time.
constexpr std::size_t kMaxIncremental = 5000;

bool reads_dn(const rules::Template& t) {
    return std::ranges::any_of(t.attributes(), [](const std::string& a) {
        const std::string l = ascii_lower(a);
        return l == "dn" || l == "distinguishedname";
    });
}

bool same(const rules::Candidate& a, const rules::Candidate& b) {
    return a.dn == b.dn && a.sam == b.sam && a.upn == b.upn && a.external == b.external && a.missing == b.missing;
}

// The evaluation `before` with the accounts `looked_at` replaced by what a
// search for them found now (`now`: those still in scope). Nullopt when
// nothing the plan depends on moved.
std::optional<rules::Evaluation> merged(const rules::Evaluation& before, const std::set<std::string>& looked_at,
                                        std::vector<rules::Candidate> now) {
    std::map<std::string, const rules::Candidate*> had;
    for (const auto& c : before.accounts)
        if (looked_at.contains(ascii_lower(c.guid))) had[ascii_lower(c.guid)] = &c;
    bool moved = had.size() != now.size();
    for (const auto& c : now) {
        auto it = had.find(ascii_lower(c.guid));
        if (it == had.end() || !same(*it->second, c)) moved = true;
    }
    if (!moved) return std::nullopt;
    rules::Evaluation out;
    out.base = before.base;
    out.filter = before.filter;
    out.groups = before.groups;
    for (const auto& c : before.accounts)
        if (!looked_at.contains(ascii_lower(c.guid))) out.accounts.push_back(c);
    for (auto& c : now) out.accounts.push_back(std::move(c));
    return out;
}

}  // namespace

struct RuleKeeper::Changed {
    std::vector<std::string> accounts;  // raw objectGUIDs, for the searches
    std::set<std::string> account_ids;  // the same, formatted, lower case
    std::set<std::string> groups;       // formatted, lower case
    bool containers = false;            // an OU or container changed
    std::size_t objects = 0;
};

// The objects changed on this DC since `usn`, deleted ones included (a
// deleted account is one that left every scope).
dir::LdapResult<RuleKeeper::Changed> RuleKeeper::changed_since(std::uint64_t usn) {
    Changed out;
    dir::Search s;
    s.base = naming_;
    s.filter = "(&(uSNChanged>=" + std::to_string(usn) +
               ")(|(objectClass=user)(objectClass=group)(objectClass=organizationalUnit)(objectClass=container)))";
    s.attributes = {"objectGUID", "objectClass"};
    s.show_deleted = true;
    PWSYNC_TRY(conn_->search_paged(s, [&](dir::Entry&& e) -> Status {
        ++out.objects;
        bool user = false, computer = false, group = false, container = false;
        if (const auto* classes = e.values("objectClass"))
            for (const auto& c : *classes) {
                const std::string l = ascii_lower(c);
                user |= l == "user";
                computer |= l == "computer";
                group |= l == "group";
                container |= l == "organizationalunit" || l == "container";
            }
        const std::string raw = e.first("objectGUID");
        if (user && !computer) {
            out.accounts.push_back(raw);
            out.account_ids.insert(ascii_lower(dir::format_guid(raw)));
        } else if (group) {
            out.groups.insert(ascii_lower(dir::format_guid(raw)));
        } else if (container) {
            out.containers = true;
        }
        return {};
    }));
    return out;
}

Result<RuleRound> RuleKeeper::round() {
    RuleRound out;
    std::vector<store::Rule> rules;
    {
        PWSYNC_ASSIGN(auto r, store_.read());
        PWSYNC_ASSIGN(auto all, r.rules());
        for (auto& x : all)
            if (x.enabled && (!mine_ || mine_(x))) rules.push_back(std::move(x));
    }
    // Forget the rules deleted or disabled since.
    std::erase_if(kept_, [&](const auto& k) {
        return std::ranges::none_of(rules, [&](const store::Rule& r) { return ascii_lower(r.name) == k.first; });
    });
    if (rules.empty()) return out;
    if (!conn_) {
        auto c = dir::Connection::open(ad_.connect_options());
        if (!c) return fail(Errc::unavailable, c.error().message);
        conn_.emplace(std::move(*c));
    }
    auto root = conn_->root_dse();
    if (!root) {
        conn_.reset();
        return fail(Errc::unavailable, root.error().message);
    }
    const auto started = std::chrono::steady_clock::now();
    // USNs are the DC's own: on another DC (a failover) they say nothing.
    const bool same_dc = usn_ && root->ds_service_name == dc_;
    const bool due = started - last_full_ >= full_every_;
    const bool rules_same = std::ranges::all_of(rules, [&](const store::Rule& r) {
        auto it = kept_.find(ascii_lower(r.name));
        return it != kept_.end() && it->second.updated == r.updated;
    });
    if (same_dc && !due && rules_same && *usn_ == root->highest_committed_usn) return out;
    out.evaluated = true;
    naming_ = ad_.domain().base.empty() ? root->default_naming_context : ad_.domain().base;
    const std::string uri = conn_->uri();

    std::optional<Changed> changed;  // nullopt: every rule whole
    if (same_dc && !due) {
        auto c = changed_since(*usn_ + 1);
        if (!c) {
            conn_.reset();
            return fail(Errc::unavailable, "the changes since USN " + std::to_string(*usn_) + ": " + c.error().message);
        }
        out.objects_changed = c->objects;
        if (c->accounts.size() <= kMaxIncremental) changed = std::move(*c);
    }

    bool complete = true;
    for (const auto& rule : rules) {
        ++out.rules;
        const std::string key = ascii_lower(rule.name);
        auto tmpl = rules::Template::parse(rule.external);
        if (!tmpl) {
            log_("rule " + rule.name + ": " + tmpl.error().message);
            continue;
        }
        auto kept = kept_.find(key);
        bool whole = !changed || kept == kept_.end() || kept->second.updated != rule.updated ||
                     (changed->containers && (!rule.scope.base.empty() || reads_dn(*tmpl))) ||
                     std::ranges::any_of(kept->second.found.groups,
                                         [&](const std::string& g) { return changed->groups.contains(g); });
        // A search that failed: the rule is evaluated whole next round; a
        // lost connection ends this one (true).
        auto lost = [&](const dir::LdapError& e) {
            log_("rule " + rule.name + ": " + e.message);
            kept_.erase(key);
            complete = false;
            if (e.retryable()) conn_.reset();
            return e.retryable();
        };
        rules::Evaluation found;
        if (whole) {
            out.full = true;
            auto ev = rules::evaluate(*conn_, ad_.domain(), rule, *tmpl);
            if (!ev) {
                if (lost(ev.error())) break;
                continue;
            }
            out.examined += ev->accounts.size();
            found = std::move(*ev);
        } else {
            if (changed->accounts.empty()) continue;
            auto now = rules::evaluate_accounts(*conn_, kept->second.found, *tmpl, changed->accounts);
            out.examined += changed->accounts.size();
            if (!now) {
                if (lost(now.error())) break;
                continue;
            }
            auto m = merged(kept->second.found, changed->account_ids, std::move(*now));
            if (!m) continue;  // no account came, went or changed its id: the plan would be the same
            found = std::move(*m);
        }
        std::optional<Fence> right;
        if (fence_) {
            right = fence_();
            if (!right) return fail(Errc::refused, "not the active gateway any more: rules left to the new one");
        }
        rules::Plan plan;
        bool stale = false;
        auto st = store_.transact("pwsyncd", [&](store::WriteTxn& w) -> Status {
            if (right) PWSYNC_TRY(w.require_lease(right->instance, right->epoch));
            PWSYNC_ASSIGN(auto current, w.rule(rule.name));  // changed meanwhile: the next round takes it
            if (!current.enabled || current.updated != rule.updated) {
                stale = true;
                return {};
            }
            PWSYNC_ASSIGN(plan, rules::apply(w, rule, found, ad_.domain().netbios));
            return {};
        });
        if (!st || stale) {
            if (!st) log_("rule " + rule.name + ": " + st.error().message);
            kept_.erase(key);
            complete = false;
            continue;
        }
        kept_[key] = Kept{rule.updated, std::move(found)};
        out.created += plan.creates.size();
        out.changed += plan.changes.size();
        out.removed += plan.removes.size();
        out.conflicts += plan.conflicts.size();
        if (!plan.empty())
            log_("rule " + rule.name + ": " + std::to_string(plan.creates.size()) + " created, " +
                 std::to_string(plan.changes.size()) + " changed, " + std::to_string(plan.removes.size()) +
                 " removed, " + std::to_string(plan.conflicts.size()) + " conflict(s)");
    }
    // A reconnect during the round may have moved to another DC: its USN
    // says nothing about this one's changes.
    if (conn_ && conn_->uri() != uri) complete = false;
    // The USN read before the searches: a change made during them is seen next round.
    if (complete) {
        usn_ = root->highest_committed_usn;
        dc_ = root->ds_service_name;
        if (!changed) last_full_ = started;
    } else if (!conn_ || conn_->uri() != uri) {
        usn_.reset();
    }
    out.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    log_(std::string("mapping rules: ") + (out.full ? "full" : "incremental") + " round: " +
         (out.full ? std::to_string(out.rules) + " rule(s), "
                   : std::to_string(out.objects_changed) + " object(s) changed, ") +
         std::to_string(out.examined) + " account(s) examined, " + std::to_string(out.created) + " created, " +
         std::to_string(out.changed) + " changed, " + std::to_string(out.removed) + " removed, " +
         std::to_string(out.conflicts) + " conflict(s) in " + std::to_string(out.took.count()) + " ms");
    return out;
}

}  // namespace pwsync::gateway
