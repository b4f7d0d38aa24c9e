#include "health.h"

#include <lber.h>
#include <ldap.h>

#include <memory>

#include "listen_uri.h"

namespace pwsync::gateway {

namespace {

struct LdapUnbind {
    void operator()(LDAP* ld) const noexcept { ldap_unbind_ext(ld, nullptr, nullptr); }
};

std::string probe_uri(const ListenUri& listen) {
    std::string host = listen.host;
    if (host.empty() || host == "0.0.0.0" || host == "*") host = "127.0.0.1";
    if (host == "::") host = "::1";
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    return std::string(listen.ldaps ? "ldaps://" : "ldap://") + host + ":" + std::to_string(listen.port);
}

}  // namespace

Result<std::string> probe_listener(const DaemonConfig& config, int timeout_seconds) {
    if (config.listen_uris.empty()) return std::unexpected(Error{Errc::invalid_argument, "the configuration names no [listen] uri"});
    auto listen = parse_listen_uri(config.listen_uris.front());
    if (!listen) return std::unexpected(listen.error());
    const std::string uri = probe_uri(*listen);
    LDAP* raw = nullptr;
    if (int rc = ldap_initialize(&raw, uri.c_str()); rc != LDAP_SUCCESS)
        return std::unexpected(Error{Errc::invalid_argument, uri + ": " + ldap_err2string(rc)});
    std::unique_ptr<LDAP, LdapUnbind> ld(raw);
    int version = LDAP_VERSION3, no_verify = LDAP_OPT_X_TLS_ALLOW, new_ctx = 0;
    timeval timeout{timeout_seconds, 0};
    ldap_set_option(ld.get(), LDAP_OPT_PROTOCOL_VERSION, &version);
    ldap_set_option(ld.get(), LDAP_OPT_NETWORK_TIMEOUT, &timeout);
    ldap_set_option(ld.get(), LDAP_OPT_TIMEOUT, &timeout);
    ldap_set_option(ld.get(), LDAP_OPT_X_TLS_REQUIRE_CERT, &no_verify);
    ldap_set_option(ld.get(), LDAP_OPT_X_TLS_NEWCTX, &new_ctx);
    if (!listen->ldaps) {
        if (int rc = ldap_start_tls_s(ld.get(), nullptr, nullptr); rc != LDAP_SUCCESS)
            return std::unexpected(Error{Errc::unavailable, uri + ": StartTLS: " + ldap_err2string(rc)});
    }
    berval* authz = nullptr;
    const int rc = ldap_whoami_s(ld.get(), &authz, nullptr, nullptr);
    if (authz != nullptr) ber_bvfree(authz);
    if (rc != LDAP_SUCCESS) return std::unexpected(Error{Errc::unavailable, uri + ": WhoAmI: " + ldap_err2string(rc)});
    return uri + " answers";
}

}  // namespace pwsync::gateway
