#include "pwsync/gateway.h"

namespace pwsync::gateway {

const std::vector<AdapterType>& adapter_types() {
    static const std::vector<AdapterType> types = {
        {"ldap", "an external LDAP directory (Password Modify or userPassword)",
         {"uri", "bind-dn", "base", "dn-template", "filter", "method", "ca"}, {"bind-password"}},
        {"exec", "a program run with the account names as arguments and the password on stdin",
         {"program", "args"}, {}},
    };
    return types;
}

const AdapterType* find_adapter_type(std::string_view name) {
    for (const auto& t : adapter_types())
        if (t.name == name) return &t;
    return nullptr;
}

}  // namespace pwsync::gateway
