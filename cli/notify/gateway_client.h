// The capture hook's LDAP client: TCP and TLS (OpenSSL) of its own, a simple
// bind as the principal, and one RFC 3062 Password Modify, with failover
// over the gateway URIs. It links no libldap, so the DC pays little to start
// it in every password change (see docs/ARCHITECTURE.md, "The capture hook").
#pragma once

#include <chrono>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "pwsync/util.h"

namespace pwsync::notify {

// ldaps://HOST[:PORT][/] (TLS at once) or ldap://HOST[:PORT][/] (StartTLS).
struct Endpoint {
    std::string host;  // no brackets around an IPv6 address
    std::string port;
    bool ldaps = true;
};
Result<Endpoint> parse_gateway_uri(std::string_view uri);

struct ClientOptions {
    std::vector<std::string> uris;  // tried in order
    std::string ca_file;            // empty: the system's trust store
    std::chrono::milliseconds timeout{5000};  // per connection and per request
    std::string principal;          // the bind name
};

struct ClientError {
    bool connected = false;  // false: no gateway took the bind; true: the change itself failed
    bool retryable = false;  // an outage: the gateway unreachable, busy, or the connection lost
    bool tls = false;        // the gateway's certificate or TLS itself failed
    int result_code = -1;    // the gateway's LDAP result code, -1 when it sent none
    std::string uri;         // the gateway that failed the change (when connected)
    std::string message;     // for an admin; never a secret
    bool at_bind = false;    // the gateway answered the bind, not the change, with result_code
};

// Connects to the first gateway that answers, binds as the principal with
// `secret`, and sends the Password Modify; returns the URI that stored it.
// A refused bind stops the failover (trying every gateway would only add
// failed logons); an unreachable gateway, one lost before it answered the
// bind, or one that answered it with a retryable code (52: its store could
// not check it now), passes to the next.
std::expected<std::string, ClientError> password_modify(const ClientOptions& o, const Secret& secret,
                                                         std::string_view account, const Secret* old_password,
                                                         const Secret& new_password);

}  // namespace pwsync::notify
