#include "safe_scope.h"

#include "temporary_passwords.h"

namespace pwsync::gateway {

std::optional<Withheld> withhold(const AccountState* state, bool temporary, const store::App& app,
                                 const store::Adapter& adapter) {
    // Not sent: the external system is now behind (stale). Its password is
    // not kept either, so re-enabling or unprotecting the account sends
    // nothing; the user's next change syncs and clears the mark.
    if (state != nullptr && state->disabled)
        return Withheld{"change.not-sent", "account disabled in the directory: disabled accounts are not synced",
                        store::MappingStatus::stale};
    if (state != nullptr && !state->privileged.empty() && !app.allow_privileged)
        return Withheld{"change.not-sent",
                        "privileged account (" + state->privileged + "): application " + app.name +
                            " does not allow privileged accounts (pwsync app update " + app.name + " --allow-privileged)",
                        store::MappingStatus::stale};
    if (temporary) {
        const auto policy = temporary_passwords(adapter.properties);
        if (!policy || *policy == TemporaryPasswords::hold)
            return Withheld{"change.held",
                            "temporary password (the user must change it at next logon): adapter " + adapter.name +
                                " holds temporary passwords until the user's own change",
                            store::MappingStatus::awaiting_change};
    }
    return std::nullopt;
}

Withheld state_unknown(std::string_view why) {
    return Withheld{"change.not-sent", "the directory cannot tell the account's state: " + std::string(why),
                    store::MappingStatus::stale};
}

}  // namespace pwsync::gateway
