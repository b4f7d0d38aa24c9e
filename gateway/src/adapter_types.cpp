// The registry of adapter types: one row per type, found by name.
#include "adapters.h"

namespace pwsync::gateway {

const std::vector<AdapterType>& adapter_types() {
    static const std::vector<AdapterType> types = {
        {"ldap", "an external LDAP directory (Password Modify or userPassword)",
         {"uri", "bind-dn", "base", "dn-template", "filter", "method", "ca"}, {"bind-password"}, make_ldap_adapter},
        {"exec", "a program run with the account names as arguments and the password on stdin",
         {"program", "args"}, {}, make_exec_adapter},
        {"null", "accepts every password and does nothing (benchmarks, dry runs)", {}, {}, make_null_adapter},
    };
    return types;
}

const AdapterType* find_adapter_type(std::string_view name) {
    for (const auto& t : adapter_types())
        if (t.name == name) return &t;
    return nullptr;
}

Result<std::unique_ptr<Adapter>> make_adapter(const AdapterContext& context) {
    const AdapterType* type = find_adapter_type(context.config.type);
    if (type == nullptr)
        return fail(Errc::invalid_argument, "adapter '" + context.config.name + "' has unknown type '" + context.config.type + "'");
    return type->factory(context);
}

}  // namespace pwsync::gateway
