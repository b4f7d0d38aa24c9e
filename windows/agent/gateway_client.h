// Sends one change to the gateway exactly as `pwsync notify` does: LDAPS,
// simple bind as the principal, Password Modify (RFC 3062) with the account
// and the new password. Windows' own LDAP client (wldap32) does the TLS.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "agent_config.h"
#include "bytes.h"
#include "cert_check.h"

struct ldap;
struct berval;

namespace pwsync::win {

enum class Outcome {
    stored,       // the gateway said it stored the change
    refused,      // the gateway refused this change for good
    unreachable,  // no gateway could be asked: keep the change, retry later
};

struct SendResult {
    Outcome outcome;
    std::string detail;  // URI, LDAP code and message; never a password
};

class GatewayClient {
public:
    GatewayClient(AgentConfig cfg, SecretBytes secret, std::optional<PinnedCa> ca);
    ~GatewayClient();
    GatewayClient(const GatewayClient&) = delete;
    GatewayClient& operator=(const GatewayClient&) = delete;

    // `account` and `password` in UTF-8.
    SendResult send(const std::string& account, const SecretBytes& password);

private:
    bool connect(std::string& why);
    void disconnect();
    unsigned long password_modify(berval& data, std::string& server_text);
    unsigned long await(ldap* ld, unsigned long msgid, std::string& server_text);
    unsigned long bind(ldap* ld);

    AgentConfig cfg_;
    SecretBytes secret_;
    std::optional<PinnedCa> ca_;
    ldap* ld_ = nullptr;
    std::size_t current_ = 0;  // the URI that answered last: tried first next time
};

}  // namespace pwsync::win
