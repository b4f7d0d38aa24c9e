// The adapter setting temporary-passwords = send | hold (any adapter type):
// what happens to a password set with "user must change password at next
// logon". Read by the engine, validated with the adapter's other settings.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "pwsync/util.h"

namespace pwsync::gateway {

inline constexpr std::string_view kTemporaryPasswordsProperty = "temporary-passwords";

enum class TemporaryPasswords {
    send,  // delivered like any other password (the default: what pwsync always did)
    hold,  // not delivered; the mapping awaits the user's own change
};

// From an adapter's properties; absent: send. A bad value names the property.
Result<TemporaryPasswords> temporary_passwords(const std::map<std::string, std::string>& properties);

}  // namespace pwsync::gateway
