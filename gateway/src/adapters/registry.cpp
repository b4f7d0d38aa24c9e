// The registry of adapter types: one row per type, found by name.
#include "registry.h"
#include "password_transform.h"

namespace pwsync::gateway {
namespace {

// Every type also takes the password transform properties.
std::vector<std::string> with_transforms(std::vector<std::string> own) {
    for (const auto& p : PasswordTransform::property_names()) own.push_back(p);
    return own;
}

}  // namespace

const std::vector<AdapterType>& adapter_types() {
    static const std::vector<AdapterType> types = {
        {"ldap", "an external LDAP directory (Password Modify or userPassword)",
         with_transforms({"uri", "bind-dn", "base", "dn-template", "filter", "method", "ca"}), {"bind-password"},
         make_ldap_adapter},
        {"exec", "a program run with the account names as arguments and the password on stdin",
         with_transforms({"program", "args"}), {}, make_exec_adapter},
        {"http", "a webhook: an HTTPS POST of a signed JSON body",
         with_transforms({"url", "ca", "cert", "key"}), {"token", "hmac-secret"}, make_http_adapter},
        {"null", "accepts every password and does nothing (benchmarks, dry runs)", with_transforms({}), {},
         make_null_adapter},
    };
    return types;
}

const AdapterType* find_adapter_type(std::string_view name) {
    for (const auto& t : adapter_types())
        if (t.name == name) return &t;
    return nullptr;
}

Status check_password_transform(const std::map<std::string, std::string>& properties) {
    auto t = PasswordTransform::from_properties(properties);
    if (!t) return std::unexpected(t.error());
    return {};
}

Result<std::unique_ptr<Adapter>> make_adapter(const AdapterContext& context) {
    const AdapterType* type = find_adapter_type(context.config.type);
    if (type == nullptr)
        return fail(Errc::invalid_argument, "adapter '" + context.config.name + "' has unknown type '" + context.config.type + "'");
    PWSYNC_ASSIGN(auto adapter, type->factory(context));
    return with_password_transform(context, std::move(adapter));
}

}  // namespace pwsync::gateway
