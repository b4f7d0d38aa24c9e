// Keeps rule-made mappings current (pwsync/rules.h) on the active gateway.
// Each round costs one rootDSE read; when the directory's
// highestCommittedUSN moved (any change: a member added to a group, an
// account moved, renamed, disabled or deleted) or a rule changed in the
// store since the last round, every enabled rule is evaluated (one paged
// search of its scope, plus the protected groups) and its plan applied in
// one store transaction, every change audited. A group's membership
// changes on the group, which the account watcher does not follow, hence
// the USN rather than the watcher's events.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "ad.h"
#include "dispatcher.h"  // Fence
#include "pwsync/directory.h"
#include "pwsync/store.h"

namespace pwsync::gateway {

struct RuleRound {
    bool evaluated = false;   // false: nothing changed since the last round
    std::size_t rules = 0, created = 0, changed = 0, removed = 0, conflicts = 0;
};

class RuleKeeper {
public:
    // `log` receives one line per rule whose plan changed something, and
    // per rule that could not be evaluated. `fence`, on a shared store, is
    // the active gateway's right as the dispatcher sees it: a plan is
    // applied only under it (the lease checked in the plan's transaction),
    // so a gateway that lost the lease mid-round writes nothing.
    RuleKeeper(store::Store& store, Ad& ad, std::function<void(std::string_view)> log,
               std::function<std::optional<Fence>()> fence = {})
        : store_(store), ad_(ad), log_(std::move(log)), fence_(std::move(fence)) {}
    Result<RuleRound> round();

private:
    store::Store& store_;
    Ad& ad_;
    std::function<void(std::string_view)> log_;
    std::function<std::optional<Fence>()> fence_;
    std::optional<directory::Connection> conn_;
    std::optional<std::uint64_t> usn_;  // the directory's at the last complete round
    std::string rules_seen_;            // the rules' names and update times then
};

}  // namespace pwsync::gateway
