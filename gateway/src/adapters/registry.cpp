// The registry of adapter types: one row per type, found by name. What
// pwsync needs (validation); the factories are in factories.cpp.
#include "registry.h"
#include "password_transform.h"
#include "temporary_passwords.h"

namespace pwsync::gateway {
namespace {

// Every type also takes the password transform properties and temporary-passwords.
AdapterType with_transforms(AdapterType type) {
    for (const auto& p : PasswordTransform::property_names()) type.properties.push_back(p);
    type.properties.emplace_back(kTemporaryPasswordsProperty);
    return type;
}

}  // namespace

const std::vector<AdapterType>& adapter_types() {
    static const std::vector<AdapterType> types = {
        with_transforms(ldap_adapter_type()),
        with_transforms(exec_adapter_type()),
        with_transforms(http_adapter_type()),
        with_transforms(null_adapter_type()),
    };
    return types;
}

const AdapterType* find_adapter_type(std::string_view name) {
    for (const auto& t : adapter_types())
        if (t.name == name) return &t;
    return nullptr;
}

Status validate_adapter(const store::Adapter& config) {
    const AdapterType* type = find_adapter_type(config.type);
    if (type == nullptr) return fail(Errc::invalid_argument, "unknown adapter type '" + config.type + "'");
    PWSYNC_TRY(check_password_transform(config.properties));
    PWSYNC_TRY(temporary_passwords(config.properties));
    return type->validate(config);
}

Status check_password_transform(const std::map<std::string, std::string>& properties) {
    auto t = PasswordTransform::from_properties(properties);
    if (!t) return std::unexpected(t.error());
    return {};
}

}  // namespace pwsync::gateway
