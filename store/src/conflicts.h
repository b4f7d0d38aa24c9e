// The ESSO mapping-conflict rule: two mappings whose applications share an
// adapter may not map the same external user, unless that adapter allows it.
// An application with no adapter is its own scope.
#pragma once

#include "impl.h"

namespace pwsync::store::conflicts {

// The applications whose mappings share a scope with `app` (itself included).
Result<std::vector<std::string>> scope(const TxnState& s, const App& app);

// Fails with Errc::conflict when `external` is already mapped in one of the
// `apps` by any account other than (`own_app`, `own_windows`).
Status check_free(const TxnState& s, const std::vector<std::string>& apps, std::string_view external,
                  std::string_view own_app, std::string_view own_windows, std::string_view adapter);

// Checks every mapping of `apps` against the same scope.
Status check_scope(const TxnState& s, const std::vector<std::string>& apps, std::string_view adapter);

}  // namespace pwsync::store::conflicts
