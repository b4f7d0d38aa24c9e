// A deliberately dumb LDAP client for listener tests: it sends whatever
// bytes it is given (over TCP, or TLS after start_tls) and reads back whole
// LDAPMessages, so tests can send hostile input and see what comes back.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace pwsync::test {

struct LdapResponse {
    int message_id = -1;
    unsigned long op = 0;  // protocolOp tag
    int code = -1;
    std::string message;
    std::optional<std::string> name;   // responseName [10]
    std::optional<std::string> value;  // responseValue [11]
};

// Request encoders (liblber).
std::string bind_request(int id, std::string_view dn, std::string_view password);
std::string sasl_bind_request(int id, std::string_view mechanism, std::optional<std::string_view> credentials = {});
std::string extended_request(int id, std::string_view oid, std::optional<std::string_view> value = {});
// RFC 3062 PasswdModifyRequestValue.
std::string password_modify_value(std::optional<std::string_view> user, std::optional<std::string_view> old_pw,
                                  std::optional<std::string_view> new_pw);
std::string unbind_request(int id);
// A SearchRequest for the root DSE.
std::string search_request(int id);

class RawClient {
public:
    // Connects (blocking, 5 s receive timeout); nullptr when refused.
    static std::unique_ptr<RawClient> connect(const std::string& host, std::uint16_t port);
    ~RawClient();

    // TLS client handshake verifying the server against `ca_file`; an
    // optional client certificate.
    bool start_tls(const std::string& ca_file, const std::string& cert = {}, const std::string& key = {});
    bool send(std::string_view bytes);
    // The next whole message; nullopt on EOF, timeout or undecodable bytes.
    std::optional<LdapResponse> receive();
    // True when the server closes the connection within `seconds` (any
    // messages it sends first are skipped).
    bool closed_within(double seconds);

private:
    RawClient() = default;
    bool read_exact(char* data, std::size_t size);
    int fd_ = -1;
    SSL_CTX* ctx_ = nullptr;
    SSL* ssl_ = nullptr;
};

}  // namespace pwsync::test
