#include "temporary_passwords.h"

namespace pwsync::gateway {

Result<TemporaryPasswords> temporary_passwords(const std::map<std::string, std::string>& properties) {
    const auto it = properties.find(std::string(kTemporaryPasswordsProperty));
    if (it == properties.end() || it->second == "send") return TemporaryPasswords::send;
    if (it->second == "hold") return TemporaryPasswords::hold;
    return fail(Errc::invalid_argument,
                std::string(kTemporaryPasswordsProperty) + ": expected send or hold, got '" + it->second + "'");
}

}  // namespace pwsync::gateway
