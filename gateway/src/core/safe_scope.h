// Safe scope: which Windows -> External deliveries are withheld because of
// the account (disabled, privileged) or the password (temporary), and what
// the mapping then says. Pure: the engine reads the facts, this decides.
#pragma once

#include <optional>
#include <string>

#include "pwsync/store.h"

namespace pwsync::gateway {

// What the directory says of an account when a change of it is confirmed.
struct AccountState {
    bool disabled = false;   // userAccountControl bit 2
    std::string privileged;  // why it is privileged (adminCount=1, a protected group); empty: not
    bool must_change = false;  // pwdLastSet 0: the password just set is temporary
};

// A delivery not made, and what it does to the mapping.
struct Withheld {
    std::string action;             // audit action: change.not-sent or change.held
    std::string reason;             // audit detail
    store::MappingStatus status;    // the mapping's status afterwards
};

// Whether a change of the account must not go to `app` through `adapter`.
// `state`: nullptr when unknown (no directory): nothing is withheld for it.
// Checked in this order: disabled account, privileged account (unless the
// application allows them), temporary password (adapter temporary-passwords
// = hold; a bad value holds, the safe reading).
std::optional<Withheld> withhold(const AccountState* state, bool temporary, const store::App& app,
                                 const store::Adapter& adapter);

// The directory cannot tell the account's state, and asking again will not
// help (`why`: its error, e.g. an ambiguous name or no access): nothing is
// sent (fail-closed), the external system is behind.
Withheld state_unknown(std::string_view why);

}  // namespace pwsync::gateway
