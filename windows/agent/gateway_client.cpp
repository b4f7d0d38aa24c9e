#include "gateway_client.h"

#include <windows.h>
#include <winldap.h>

#include "ber.h"
#include "log.h"
#include "winutil.h"

namespace pwsync::win {
namespace {

// wldap32's certificate callback has no user argument; the agent is single
// threaded and checks one connection at a time.
const PinnedCa* g_ca = nullptr;
std::string g_cert_problem;

BOOLEAN __cdecl verify_server_cert(PLDAP, PCCERT_CONTEXT* cert) {
    g_cert_problem = g_ca == nullptr ? "no CA configured" : g_ca->check(cert != nullptr ? *cert : nullptr);
    if (cert != nullptr && *cert != nullptr) CertFreeCertificateContext(*cert);
    return g_cert_problem.empty() ? TRUE : FALSE;
}

bool transient(ULONG rc) {
    switch (rc) {
        case LDAP_SERVER_DOWN:
        case LDAP_TIMEOUT:
        case LDAP_CONNECT_ERROR:
        case LDAP_UNAVAILABLE:
        case LDAP_BUSY:
        case LDAP_LOCAL_ERROR:
        case LDAP_NO_MEMORY:
        case LDAP_OTHER:
            return true;
        default:
            return false;
    }
}

std::string code_text(ULONG rc) {
    const char* s = ldap_err2stringA(rc);
    return std::to_string(rc) + (s != nullptr ? std::string(" ") + s : "");
}

}  // namespace

GatewayClient::GatewayClient(AgentConfig cfg, SecretBytes secret, std::optional<PinnedCa> ca)
    : cfg_(std::move(cfg)), secret_(std::move(secret)), ca_(std::move(ca)) {}

GatewayClient::~GatewayClient() {
    disconnect();
}

void GatewayClient::disconnect() {
    if (ld_ != nullptr) ldap_unbind(ld_);
    ld_ = nullptr;
}

// The result of request `msgid`, waiting at most the configured timeout; the
// server's message, if any, in server_text.
ULONG GatewayClient::await(LDAP* ld, ULONG msgid, std::string& server_text) {
    l_timeval tv{static_cast<LONG>(cfg_.timeout), 0};
    LDAPMessage* res = nullptr;
    const ULONG got = ldap_result(ld, msgid, LDAP_MSG_ALL, &tv, &res);
    if (got == 0) {
        ldap_abandon(ld, msgid);
        return LDAP_TIMEOUT;
    }
    if (got == static_cast<ULONG>(-1) || res == nullptr) return LDAP_SERVER_DOWN;
    ULONG code = 0;
    PCHAR text = nullptr;
    const ULONG rc = ldap_parse_resultA(ld, res, &code, nullptr, &text, nullptr, nullptr, TRUE);
    if (text != nullptr) {
        server_text = text;
        ldap_memfreeA(text);
    }
    return rc == LDAP_SUCCESS ? code : rc;
}

// Simple bind as the principal, asynchronous so that it times out too.
ULONG GatewayClient::bind(LDAP* ld) {
    // wldap32 wants a C string: the secret is kept with its NUL.
    char* pw = reinterpret_cast<char*>(secret_.bytes().data());
    const ULONG msgid = ldap_simple_bindA(ld, const_cast<char*>(cfg_.principal.c_str()), pw);
    if (msgid == static_cast<ULONG>(-1)) return LdapGetLastError();
    std::string ignored;
    return await(ld, msgid, ignored);
}

bool GatewayClient::connect(std::string& why) {
    why.clear();
    const std::size_t n = cfg_.gateways.size();
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t k = (current_ + i) % n;
        const std::string& uri = cfg_.gateways[k];
        auto u = parse_gateway_uri(uri);
        if (!u) {
            why += uri + ": " + u.error() + "; ";
            continue;
        }
        LDAP* ld = ldap_sslinitA(const_cast<char*>(u->host.c_str()), u->port, 1);
        if (ld == nullptr) {
            why += uri + ": ldap_sslinit failed; ";
            continue;
        }
        ULONG version = LDAP_VERSION3;
        ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
        ULONG off = 0;
        ldap_set_option(ld, LDAP_OPT_REFERRALS, &off);
        ULONG secs = cfg_.timeout;
        ldap_set_option(ld, LDAP_OPT_TIMELIMIT, &secs);
        if (ca_) {
            g_ca = &*ca_;
            const ULONG rc = ldap_set_option(ld, LDAP_OPT_SERVER_CERTIFICATE, reinterpret_cast<void*>(&verify_server_cert));
            if (rc != LDAP_SUCCESS) {
                ldap_unbind(ld);
                why += uri + ": this LDAP client cannot check the certificate against the configured CA "
                             "(LDAP_OPT_SERVER_CERTIFICATE: " + code_text(rc) + "); ";
                continue;
            }
        }
        l_timeval tv{static_cast<LONG>(cfg_.timeout), 0};
        g_cert_problem.clear();
        ULONG rc = ldap_connect(ld, &tv);
        if (rc == LDAP_SUCCESS) rc = bind(ld);
        if (rc != LDAP_SUCCESS) {
            ldap_unbind(ld);
            why += uri + ": " + (g_cert_problem.empty() ? code_text(rc) : g_cert_problem) + "; ";
            continue;
        }
        ld_ = ld;
        current_ = k;
        return true;
    }
    return false;
}

// Asynchronous request + ldap_result with the configured timeout: a gateway
// that accepted the connection but does not answer cannot hold the agent.
ULONG GatewayClient::password_modify(berval& data, std::string& server_text) {
    ULONG msgid = 0;
    const ULONG rc = ldap_extended_operationA(ld_, const_cast<char*>(kPasswordModifyOid), &data, nullptr, nullptr, &msgid);
    return rc == LDAP_SUCCESS ? await(ld_, msgid, server_text) : rc;
}

SendResult GatewayClient::send(const std::string& account, const SecretBytes& password) {
    for (int attempt = 0; attempt < 2; ++attempt) {
        std::string why;
        if (ld_ == nullptr && !connect(why)) return {Outcome::unreachable, "no gateway answered: " + why};
        SecretBytes value = encode_password_modify(account, password);
        berval data{static_cast<ULONG>(value.size()), reinterpret_cast<PCHAR>(value.bytes().data())};
        std::string server_text;
        const ULONG rc = password_modify(data, server_text);
        value.clear();
        const std::string where = cfg_.gateways[current_];
        if (rc == LDAP_SUCCESS) return {Outcome::stored, "stored by " + where};
        if (!transient(rc))
            return {Outcome::refused, where + " refused the change: " + code_text(rc) +
                                          (server_text.empty() ? "" : " (" + server_text + ")")};
        // The connection broke: once more on a fresh one (maybe another URI).
        log(Level::warning, where + ": " + code_text(rc) + "; reconnecting");
        disconnect();
        current_ = (current_ + 1) % cfg_.gateways.size();
    }
    return {Outcome::unreachable, "the gateways failed twice for this change"};
}

}  // namespace pwsync::win
