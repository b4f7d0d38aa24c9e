// The `ldap` adapter type as pwsync and pwsyncd know it: its properties and
// what makes a setting of it well formed. The adapter itself is in ldap_adapter.cpp.
#include "registry.h"

#include <ldap.h>

#include <sstream>

namespace pwsync::gateway {
namespace {

std::string property(const store::Adapter& a, const char* key) {
    auto it = a.properties.find(key);
    return it == a.properties.end() ? std::string() : it->second;
}

// Each URI of `uri` must parse (libldap's own parser) as ldap, ldaps or ldapi.
Status validate_ldap(const store::Adapter& a) {
    const std::string name = "ldap adapter '" + a.name + "'";
    std::istringstream uris(property(a, "uri"));
    for (std::string u; uris >> u;) {
        LDAPURLDesc* parsed = nullptr;
        const int rc = ldap_url_parse(u.c_str(), &parsed);
        if (parsed != nullptr) ldap_free_urldesc(parsed);
        if (rc != LDAP_URL_SUCCESS)
            return fail(Errc::invalid_argument, name + ": uri '" + u + "' is not an ldap://, ldaps:// or ldapi:// URI");
    }
    const std::string method = property(a, "method");
    if (!method.empty() && method != "passwd-exop" && method != "userPassword")
        return fail(Errc::invalid_argument, name + ": method must be passwd-exop or userPassword");
    return {};
}

}  // namespace

const AdapterType& ldap_adapter_type() {
    static const AdapterType type{"ldap", "an external LDAP directory (Password Modify or userPassword)",
                                  {"uri", "bind-dn", "base", "dn-template", "filter", "method", "ca"},
                                  {"bind-password"}, validate_ldap};
    return type;
}

}  // namespace pwsync::gateway
