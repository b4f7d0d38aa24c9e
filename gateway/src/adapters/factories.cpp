// The factories of the adapter types: one row per type, as in registry.cpp.
#include "registry.h"

namespace pwsync::gateway {

AdapterFactory find_adapter_factory(std::string_view type) {
    static const std::vector<std::pair<std::string_view, AdapterFactory>> factories = {
        {"ldap", make_ldap_adapter},
        {"exec", make_exec_adapter},
        {"http", make_http_adapter},
        {"null", make_null_adapter},
    };
    for (const auto& [name, make] : factories)
        if (name == type) return make;
    return nullptr;
}

Result<std::unique_ptr<Adapter>> make_adapter(const AdapterContext& context) {
    auto make = find_adapter_factory(context.config.type);
    if (!make)
        return fail(Errc::invalid_argument, "adapter '" + context.config.name + "' has unknown type '" + context.config.type + "'");
    PWSYNC_ASSIGN(auto adapter, make(context));
    return with_password_transform(context, std::move(adapter));
}

}  // namespace pwsync::gateway
