// What became of a password change, in the engine's terms. The request
// handler turns these into LDAP result codes; the engine knows no protocol.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace pwsync::gateway {

enum class ChangeOutcome {
    stored,             // committed: queued, pending, or set in Active Directory
    incomplete,         // the request lacks what it needs (new password, account)
    malformed,          // the request cannot be read (a userIdentity that is no DN)
    bad_password,       // the new password is not valid UTF-8 or is too long
    refused,            // sync off, adapter disabled, old password required, ...
    no_mapping,         // no mapping for the account
    denied,             // the principal may not (gone, monitor only)
    wrong_old_password, // the old password does not match (or nothing to match)
    refused_by_ad,      // Active Directory refused the password (policy)
    unavailable,        // the store could not take it: the sender retries
    failed,             // anything else
};

// Where a change's time went inside the engine, for the monitoring figures:
// asking the directory (a name, the account's state, full sync's AD write)
// and the store (waiting for the writer's turn, running, the commit's flush).
struct ChangeTimes {
    std::chrono::nanoseconds directory{0};
    std::chrono::nanoseconds store{0};
};

struct ChangeResult {
    ChangeOutcome outcome = ChangeOutcome::stored;
    std::string message;  // for the sender and the log: never a password
    // For the counters: windows, full, partial, or external when an
    // adapter's change was refused before its mode was known.
    std::string_view mode = "external";
    ChangeTimes times{};
};

}  // namespace pwsync::gateway
