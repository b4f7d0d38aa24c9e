#include "handler.h"

#include "log.h"

namespace pwsync::gateway {

std::expected<std::string, LdapResult> EngineHandler::bind_simple(std::string_view dn, const Secret& password,
                                                                  const Peer& peer) {
    if (auto name = engine_.authenticate(dn, password)) return *name;
    log_warning("failed bind as '" + std::string(dn) + "' from " + peer.address);
    return std::unexpected(LdapResult{ldap_code::invalid_credentials, "invalid credentials"});
}

std::expected<std::string, LdapResult> EngineHandler::bind_external(const Peer& peer) {
    if (auto name = engine_.authenticate_certificate(peer.client_cert_subject)) return *name;
    log_warning("certificate '" + peer.client_cert_subject + "' from " + peer.address + " is no principal's");
    return std::unexpected(LdapResult{ldap_code::invalid_credentials, "no principal has this certificate"});
}

LdapResult EngineHandler::password_modify(const std::string& principal, std::string_view user_identity,
                                          const std::optional<Secret>& old_password, const Secret& new_password,
                                          const Peer& peer) {
    auto r = engine_.change(principal, user_identity, old_password ? &*old_password : nullptr, new_password);
    const std::string line = "change for '" + std::string(user_identity) + "' from " + principal + " (" + peer.address +
                             "): " + std::to_string(r.code) + " " + r.message;
    if (r.code == ldap_code::success) log_info(line);
    else log_warning(line);
    return {r.code, r.message};
}

}  // namespace pwsync::gateway
