// Which DC is which: invocationIds (as replication metadata names a change's
// originating DC) to DNS host names.
#include "connection_impl.h"

namespace pwsync::directory {
namespace {

// The parent of a DN (its first RDN dropped); NTDS Settings and server
// names hold no escaped commas.
std::string parent_dn(std::string_view dn) {
    const auto comma = dn.find(',');
    return comma == std::string_view::npos ? std::string() : std::string(dn.substr(comma + 1));
}

std::string first_rdn_value(std::string_view dn) {
    const auto eq = dn.find('='), comma = dn.find(',');
    if (eq == std::string_view::npos) return std::string(dn);
    return std::string(dn.substr(eq + 1, comma == std::string_view::npos ? std::string_view::npos : comma - eq - 1));
}

}  // namespace

LdapResult<std::map<std::string, std::string>> domain_controllers(Connection& c) {
    PWSYNC_ASSIGN(RootDse root, c.root_dse());
    // dsServiceName: CN=NTDS Settings,CN=<server>,CN=Servers,CN=<site>,CN=Sites,CN=Configuration,...
    const std::string lower = ascii_lower(root.ds_service_name);
    const auto sites = lower.find("cn=sites,");
    if (sites == std::string::npos)
        return std::unexpected(client_error(Reason::invalid_request, "the rootDSE's dsServiceName names no Sites container"));
    Search s;
    s.base = root.ds_service_name.substr(sites);
    s.scope = Scope::subtree;
    s.filter = "(|(objectClass=server)(objectClass=nTDSDSA))";
    s.attributes = {"objectClass", "dNSHostName", "invocationId"};
    std::map<std::string, std::string> hosts;                  // lower(server DN) -> name
    std::vector<std::pair<std::string, std::string>> dsas;     // invocationId, lower(server DN)
    PWSYNC_TRY(c.search_paged(s, [&](Entry&& e) -> Status {
        if (e.has("invocationId")) {
            if (const std::string id = format_guid(e.first("invocationId")); !id.empty())
                dsas.emplace_back(id, ascii_lower(parent_dn(e.dn)));
        } else {
            const std::string dns = e.first("dNSHostName");
            hosts[ascii_lower(e.dn)] = ascii_lower(dns.empty() ? first_rdn_value(e.dn) : dns);
        }
        return {};
    }));
    std::map<std::string, std::string> out;
    for (const auto& [id, server] : dsas) {
        auto it = hosts.find(server);
        out[id] = it != hosts.end() ? it->second : ascii_lower(first_rdn_value(server));
    }
    return out;
}

}  // namespace pwsync::directory
