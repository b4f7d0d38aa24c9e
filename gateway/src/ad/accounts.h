// Keeping the store's account names current from the directory: what the
// watcher sees (renames, UPN changes, deletions), and the mappings whose
// account is not resolved yet, resolved in the background.
#pragma once

#include <functional>
#include <set>
#include <string>

#include "account_events.h"
#include "ad.h"
#include "dispatcher.h"  // Fence
#include "pwsync/store.h"

namespace pwsync::gateway {

// Applies one watcher event to the store's account names: an account the
// store keeps gets its new names (or is forgotten when deleted); an account
// a mapping names by a name not resolved yet is recorded. Accounts no
// mapping names are not kept. Returns the account's sAMAccountName (DOMAIN\sam
// with several domains; its GUID when that is unknown), the name the engine
// is told a change under.
// `events` (may be null): told of every account an event names.
Result<std::string> note_event(store::Store& store, Ad& ad, const directory::Event& e, AccountEvents* events = nullptr);

// Resolves the mappings whose account the store does not know yet (none
// resolved, or resolved before the store kept names). Stops at the first
// directory outage (Errc::unavailable). `reported` keeps the mappings whose
// failure was logged already, so a mapping of a missing account is logged
// once, not at every pass. `lookup`: Ad::lookup of the account's domain.
// Returns how many accounts were recorded. The accounts found are written
// kResolvedPerCommit to a commit; an answer is not written when the watcher
// saw its account after the question (`events`, may be null), nor over
// what the store recorded after it (`clock`: the one the store's records
// are stamped with); an entry the store refuses is reported and skipped,
// the others written. `guard`: when the pass ends early, and under whose
// right it writes.
inline constexpr std::size_t kResolvedPerCommit = 64;
using Lookup = std::function<Result<store::AccountNames>(std::string_view account)>;
struct ResolveGuard {
    // Asked before each lookup: true ends the pass (what was found is
    // written). A long pass (an import of thousands) must not outlive the
    // gateway's turn as the active one.
    std::function<bool()> stopped;
    // Several gateways on one store: the active gateway's right, checked in
    // every write's transaction (WriteTxn::require_lease). Without it (or
    // when the lease is gone) the pass fails with Errc::refused and writes
    // nothing more: the new active gateway's watcher, not this one's, sees
    // the renames its answers must not overwrite.
    std::function<std::optional<Fence>()> fence;
};
Result<std::size_t> resolve_unresolved(store::Store& store, const Clock& clock, AccountEvents* events,
                                       const Lookup& lookup, std::set<std::string>& reported,
                                       const std::function<void(std::string_view)>& log,
                                       const ResolveGuard& guard = {});

}  // namespace pwsync::gateway
