// The inbound side of the gateway: an LDAPv3 server over TLS (ldaps://, or
// ldap:// with StartTLS) that accepts Bind, Password Modify (RFC 3062),
// WhoAmI (RFC 4532), StartTLS, Unbind and Search of read-only subtrees the
// handler offers (cn=monitor), and hands every decision to a
// RequestHandler. Nothing but StartTLS (and Unbind) is served before TLS.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pwsync/util.h"

namespace pwsync::gateway {

// The other end of a connection, as far as TLS and the socket tell.
struct Peer {
    std::string address;              // numeric IP, without port ("127.0.0.1", "::1")
    std::uint16_t port = 0;
    std::string client_cert_subject;  // RFC 2253 subject of a verified client certificate, else empty
    bool tls = false;
};

// RFC 4511 resultCode and diagnosticMessage. The message goes to the client
// as it is: never put a password in it.
struct LdapResult {
    int code = 0;
    std::string message;
};

// RFC 4511 result codes the listener itself uses.
namespace ldap_code {
inline constexpr int success = 0;
inline constexpr int operations_error = 1;
inline constexpr int protocol_error = 2;
inline constexpr int size_limit_exceeded = 4;
inline constexpr int auth_method_not_supported = 7;
inline constexpr int unavailable_critical_extension = 12;
inline constexpr int confidentiality_required = 13;
inline constexpr int constraint_violation = 19;
inline constexpr int no_such_object = 32;
inline constexpr int inappropriate_authentication = 48;
inline constexpr int invalid_credentials = 49;
inline constexpr int insufficient_access_rights = 50;
inline constexpr int busy = 51;
inline constexpr int unavailable = 52;
inline constexpr int unwilling_to_perform = 53;
inline constexpr int other = 80;
}  // namespace ldap_code

// One entry a search may return: attribute names with their values.
struct SearchEntry {
    std::string dn;
    std::vector<std::pair<std::string, std::vector<std::string>>> attributes;
};

// Implemented by the engine. Called from connection threads, concurrently;
// the listener holds no lock of its own while a call runs, so a call may
// block (e.g. on an AD write whose capture hook connects back here).
class RequestHandler {
public:
    virtual ~RequestHandler() = default;
    // Simple bind with a non-empty password. Returns the authenticated
    // principal's name, or the result to send (49 invalidCredentials, ...).
    // WhoAmI answers "dn:<name>" when the name contains '=', else "u:<name>".
    virtual std::expected<std::string, LdapResult> bind_simple(std::string_view dn, const Secret& password,
                                                               const Peer& peer) = 0;
    // SASL EXTERNAL: only called with a verified client certificate
    // (peer.client_cert_subject is not empty).
    virtual std::expected<std::string, LdapResult> bind_external(const Peer& peer) = 0;
    // Password Modify from an authenticated principal. user_identity is empty
    // when the request has none. May block.
    virtual LdapResult password_modify(const std::string& principal, std::string_view user_identity,
                                       const std::optional<Secret>& old_password, const Secret& new_password,
                                       const Peer& peer) = 0;
    // Search from an authenticated principal: every entry at or below
    // `base` it may read (the listener applies scope, filter and attribute
    // list), or the result to send (32 noSuchObject, 50 insufficientAccess).
    virtual std::expected<std::vector<SearchEntry>, LdapResult> search_subtree(const std::string& principal,
                                                                               std::string_view base) {
        (void)principal;
        (void)base;
        return std::unexpected(LdapResult{ldap_code::unwilling_to_perform, "this server offers nothing to search"});
    }
};

// Failed simple binds are slowed down per bind DN and per peer address:
// after `free_failures` failures within `window`, every further bind on that
// key waits base_delay * 2^(failures - free_failures), at most max_delay, and
// attempts on one key are spaced by that delay even across connections.
// A bind that would have to wait longer than max_delay is answered 51 busy
// at once. A successful bind clears its DN's record (not its peer's).
struct ThrottleLimits {
    unsigned free_failures = 5;
    std::chrono::seconds window{15 * 60};
    std::chrono::milliseconds base_delay{500};
    std::chrono::milliseconds max_delay{30'000};
};

struct BindThrottleOptions {
    ThrottleLimits per_principal{};
    ThrottleLimits per_peer{.free_failures = 20};
    std::size_t max_tracked = 10'000;  // keys remembered; the stalest are forgotten first
};

struct ListenerOptions {
    // "ldaps://127.0.0.1:1636" (TLS from the first byte), "ldap://0.0.0.0:1389"
    // (StartTLS required), "ldaps://[::1]:1636". Port 0 picks a free port.
    std::vector<std::string> uris;
    std::string cert_file;       // PEM server certificate (chain)
    std::string key_file;        // PEM private key
    std::string client_ca_file;  // optional: request and verify client certificates, enables SASL EXTERNAL
    std::size_t max_message_size = 64 * 1024;
    std::size_t max_connections = 1024;
    // From one peer address, so one client's idle connections cannot take
    // every slot (and every file descriptor) from the others.
    std::size_t max_connections_per_address = 256;
    std::chrono::seconds idle_timeout{60};  // also bounds a TLS handshake and one message's arrival
    BindThrottleOptions throttle{};
    const Clock* clock = nullptr;  // nullptr: the system clock
    // Optional: one line per notable event (refused connection, bad input,
    // throttled bind). Never carries a password. Called from any thread.
    std::function<void(std::string_view line)> log;
};

// One bound listening socket.
struct ListenEndpoint {
    std::string uri;  // as configured
    bool ldaps = false;
    std::string address;  // numeric
    std::uint16_t port = 0;  // the bound port (useful with port 0)
};

class Listener {
public:
    // Binds every URI, loads the TLS material and starts one acceptor thread
    // per URI. Fails without leaving anything running.
    static Result<Listener> start(const ListenerOptions& options, RequestHandler& handler);

    Listener(Listener&&) noexcept;
    Listener& operator=(Listener&&) noexcept;
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;
    ~Listener();  // stop()

    // Closes the listening sockets, wakes every connection (idle ones get a
    // Notice of Disconnection, 52 unavailable) and joins all threads. A
    // handler call in progress is waited for, so a handler must not call
    // stop() itself. Idempotent.
    void stop();

    const std::vector<ListenEndpoint>& endpoints() const;
    // Connections currently open (for tests and status).
    std::size_t connection_count() const;

    struct Impl;

private:
    explicit Listener(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace pwsync::gateway
