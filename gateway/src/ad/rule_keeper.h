// Keeps rule-made mappings current (pwsync/rules.h) on the active gateway.
//
// Each round costs one rootDSE read when nothing changed. When the DC's
// highestCommittedUSN moved, one search for the objects changed since the
// last round (uSNChanged, deleted ones included) says what to look at:
// - the accounts that changed (created, renamed, moved, disabled, deleted,
//   a password set): each rule searches for those accounts alone, with its
//   scope's filter, and plans only if one of them came in, went out or
//   would get another external id: the cost is proportional to the changes;
// - a group that decides a rule's scope (its group, the protected groups,
//   groups nested in them) changed: membership changes are made on the
//   group, not on the accounts, so that rule is evaluated whole (one paged
//   search of its scope);
// - an OU or container changed (renamed, moved): rules with an OU in their
//   scope or the DN in their template are evaluated whole.
// A rule that changed in the store, the first round, a change of DC (USNs
// are per DC), a round that failed half-way and every `full_every` are
// whole evaluations too; the last also catches what changed in the store
// alone (a hand-made mapping deleted that had won a conflict).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "ad.h"
#include "dispatcher.h"  // Fence
#include "pwsync/directory.h"
#include "pwsync/rules.h"
#include "pwsync/store.h"

namespace pwsync::gateway {

struct RuleRound {
    bool evaluated = false;   // false: nothing changed since the last round
    bool full = false;        // at least one rule was evaluated whole
    std::size_t rules = 0, created = 0, changed = 0, removed = 0, conflicts = 0;
    std::size_t objects_changed = 0;  // directory objects changed since the last round
    std::size_t examined = 0;         // accounts the round's searches looked at
    std::chrono::milliseconds took{0};
};

class RuleKeeper {
public:
    // `log` receives one line per evaluated round (what it cost), one per
    // rule whose plan changed something, and one per rule that could not be
    // evaluated. `fence`, on a shared store, is the active gateway's right
    // as the dispatcher sees it: a plan is applied only under it (the lease
    // checked in the plan's transaction), so a gateway that lost the lease
    // mid-round writes nothing.
    RuleKeeper(store::Store& store, Ad& ad, std::function<void(std::string_view)> log,
               std::function<std::optional<Fence>()> fence = {},
               std::chrono::seconds full_every = std::chrono::hours(1))
        : store_(store), ad_(ad), log_(std::move(log)), fence_(std::move(fence)), full_every_(full_every) {}
    Result<RuleRound> round();
    // Several domains: this keeper's rules only (those of its domain);
    // unset: every rule.
    void only(std::function<bool(const store::Rule&)> mine) { mine_ = std::move(mine); }

private:
    // What a rule's last applied evaluation found, kept for incremental rounds.
    struct Kept {
        TimePoint updated{};       // the rule's update time then
        rules::Evaluation found;
    };
    struct Changed;
    directory::LdapResult<Changed> changed_since(std::uint64_t usn);

    store::Store& store_;
    Ad& ad_;
    std::function<void(std::string_view)> log_;
    std::function<std::optional<Fence>()> fence_;
    std::chrono::seconds full_every_;
    std::function<bool(const store::Rule&)> mine_;
    std::optional<directory::Connection> conn_;
    std::optional<std::uint64_t> usn_;  // the DC's at the last complete round
    std::string dc_;                    // that DC (its dsServiceName)
    std::string naming_;                // its default naming context
    std::chrono::steady_clock::time_point last_full_{};
    std::map<std::string, Kept> kept_;  // by lower-case rule name
};

}  // namespace pwsync::gateway
