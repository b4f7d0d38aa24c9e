#include "gateway_client.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

#include "ber.h"
#include "pwsync/handles.h"
#include "ldap_message.h"

namespace pwsync::notify {
namespace {

using SteadyClock = std::chrono::steady_clock;
using Deadline = SteadyClock::time_point;

constexpr std::size_t kMaxResponse = 1 << 20;  // an LDAPResult is small; anything bigger is not the gateway

struct SslCtxFree {
    void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
};
struct SslFree {
    void operator()(SSL* s) const noexcept { SSL_free(s); }
};
using SslCtx = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;

ClientError lost(std::string message) { return ClientError{false, true, false, -1, {}, std::move(message)}; }
ClientError tls_error(std::string message) { return ClientError{false, false, true, -1, {}, std::move(message)}; }
ClientError protocol_error(std::string message) { return ClientError{false, false, false, -1, {}, std::move(message)}; }

std::string openssl_text() {
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return "unknown TLS error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

// Waits until `fd` is ready for `events`; false once the deadline passed.
bool wait_for(int fd, short events, Deadline deadline) {
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
        if (left <= 0) return false;
        pollfd p{fd, events, 0};
        const int r = ::poll(&p, 1, static_cast<int>(left));
        if (r > 0) return true;
        if (r == 0 || errno != EINTR) return false;
    }
}

bool is_ip_literal(const std::string& host) {
    unsigned char buf[sizeof(in6_addr)];
    return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::expected<UniqueFd, ClientError> tcp_connect(const std::string& uri, const Endpoint& ep, Deadline deadline) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (const int rc = ::getaddrinfo(ep.host.c_str(), ep.port.c_str(), &hints, &res); rc != 0)
        return std::unexpected(lost("connect " + uri + ": cannot resolve " + ep.host + ": " + ::gai_strerror(rc)));
    const std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(res, &::freeaddrinfo);
    std::string why = "no address";
    for (const addrinfo* a = res; a != nullptr; a = a->ai_next) {
        UniqueFd fd(::socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (fd.get() < 0) {
            why = std::strerror(errno);
            continue;
        }
        int err = ::connect(fd.get(), a->ai_addr, a->ai_addrlen) == 0 ? 0 : errno;
        if (err == EINPROGRESS) {
            if (!wait_for(fd.get(), POLLOUT, deadline)) {
                why = "timed out";
                break;  // the time is used up: no other address would get any
            }
            socklen_t len = sizeof err;
            if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        }
        if (err != 0) {
            why = std::strerror(err);
            continue;
        }
        const int one = 1;
        ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return fd;
    }
    return std::unexpected(lost("connect " + uri + ": " + why));
}

// One connection to one gateway: plain until TLS starts, then TLS only.
class Connection {
public:
    Connection(std::string uri, UniqueFd fd) : uri_(std::move(uri)), fd_(std::move(fd)) {}
    Connection(Connection&&) noexcept = default;
    ~Connection() {
        // Best effort (the socket is non-blocking); never after a failed handshake.
        if (ssl_ && established_) SSL_shutdown(ssl_.get());
    }

    const std::string& uri() const { return uri_; }

    std::expected<void, ClientError> start_tls(SSL_CTX* ctx, const std::string& host, Deadline deadline) {
        ssl_.reset(SSL_new(ctx));
        if (!ssl_ || SSL_set_fd(ssl_.get(), fd_.get()) != 1) return std::unexpected(tls_error("TLS with " + uri_ + ": " + openssl_text()));
        // The certificate must name the host of the URI (as libldap checks it).
        if (is_ip_literal(host)) {
            if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_.get()), host.c_str()) != 1)
                return std::unexpected(tls_error("TLS with " + uri_ + ": " + openssl_text()));
        } else if (SSL_set1_host(ssl_.get(), host.c_str()) != 1 || SSL_set_tlsext_host_name(ssl_.get(), host.c_str()) != 1) {
            return std::unexpected(tls_error("TLS with " + uri_ + ": " + openssl_text()));
        }
        for (;;) {
            ERR_clear_error();
            const int r = SSL_connect(ssl_.get());
            if (r == 1) {
                established_ = true;
                return {};
            }
            const int e = SSL_get_error(ssl_.get(), r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                if (!wait_for(fd_.get(), e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline))
                    return std::unexpected(lost("TLS with " + uri_ + ": timed out"));
                continue;
            }
            if (const long v = SSL_get_verify_result(ssl_.get()); v != X509_V_OK)
                return std::unexpected(tls_error("TLS with " + uri_ + " failed: certificate verify failed (" +
                                                 X509_verify_cert_error_string(v) + ")"));
            if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN) {
                ERR_clear_error();
                return std::unexpected(lost("TLS with " + uri_ + ": the connection was closed"));
            }
            return std::unexpected(tls_error("TLS with " + uri_ + " failed: " + openssl_text()));
        }
    }

    // Sends one request and reads its response: an LDAPResult for `id`.
    std::expected<ldap::Response, ClientError> call(const Secret& request, int id, unsigned char op, Deadline deadline) {
        if (auto s = send(request.view(), deadline); !s) return std::unexpected(s.error());
        auto message = receive(deadline);
        if (!message) return std::unexpected(message.error());
        auto r = ldap::decode_response(message->view());
        if (!r) return std::unexpected(protocol_error(uri_ + " sent a malformed response"));
        // A Notice of Disconnection (id 0): the gateway is going away.
        if (r->message_id == 0)
            return std::unexpected(lost(uri_ + " closed the connection: " + ldap::result_name(r->result_code) +
                                        (r->diagnostic.empty() ? "" : ": " + r->diagnostic)));
        if (r->message_id != id || r->op != op) return std::unexpected(protocol_error(uri_ + " answered another request"));
        return std::move(*r);
    }

    // Bytes read but not yet handed out: after StartTLS there must be none.
    bool drained() const { return pending_.empty(); }

    void unbind(int id, Deadline deadline) { (void)send(ldap::unbind_request(id), deadline); }

private:
    std::expected<void, ClientError> send(std::string_view data, Deadline deadline) {
        while (!data.empty()) {
            std::size_t n = 0;
            int want = 0;
            if (ssl_) {
                ERR_clear_error();
                const int r = SSL_write_ex(ssl_.get(), data.data(), data.size(), &n);
                if (r != 1) {
                    const int e = SSL_get_error(ssl_.get(), r);
                    if (e == SSL_ERROR_WANT_READ) want = POLLIN;
                    else if (e == SSL_ERROR_WANT_WRITE) want = POLLOUT;
                    else return std::unexpected(lost(uri_ + ": the connection was lost"));
                }
            } else {
                const ssize_t r = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
                if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                    return std::unexpected(lost(uri_ + ": " + std::strerror(errno)));
                if (r < 0) want = errno == EINTR ? 0 : POLLOUT;
                else n = static_cast<std::size_t>(r);
            }
            if (want != 0 && !wait_for(fd_.get(), static_cast<short>(want), deadline))
                return std::unexpected(lost(uri_ + ": timed out"));
            data.remove_prefix(n);
        }
        return {};
    }

    std::expected<Secret, ClientError> receive(Deadline deadline) {
        char buf[4096];
        std::expected<Secret, ClientError> out = std::unexpected(lost(uri_ + ": timed out"));
        for (;;) {
            const auto size = ldap::message_size(pending_.view(), kMaxResponse);
            if (size && *size == 0) {
                out = std::unexpected(protocol_error(uri_ + " sent something that is not an LDAP message"));
                break;
            }
            if (size && pending_.size() >= *size) {
                out = Secret(pending_.view().substr(0, *size));
                Secret rest(pending_.view().substr(*size));
                pending_ = std::move(rest);
                break;
            }
            std::size_t n = 0;
            int want = 0;
            if (ssl_) {
                ERR_clear_error();
                const int r = SSL_read_ex(ssl_.get(), buf, sizeof buf, &n);
                if (r != 1) {
                    const int e = SSL_get_error(ssl_.get(), r);
                    if (e == SSL_ERROR_WANT_READ) want = POLLIN;
                    else if (e == SSL_ERROR_WANT_WRITE) want = POLLOUT;
                    else {
                        ERR_clear_error();
                        out = std::unexpected(lost(uri_ + ": the connection was closed before the answer"));
                        break;
                    }
                }
            } else {
                const ssize_t r = ::recv(fd_.get(), buf, sizeof buf, 0);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                    out = std::unexpected(lost(uri_ + ": the connection was closed before the answer"));
                    break;
                }
                if (r < 0) want = errno == EINTR ? 0 : POLLIN;
                else n = static_cast<std::size_t>(r);
            }
            if (want != 0 && !wait_for(fd_.get(), static_cast<short>(want), deadline)) break;
            pending_.append(std::string_view(buf, n));
        }
        wipe(buf, sizeof buf);
        return out;
    }

    std::string uri_;
    UniqueFd fd_;
    SslPtr ssl_;
    bool established_ = false;
    Secret pending_;
};

std::expected<SslCtx, ClientError> make_context(const std::string& ca_file) {
    SslCtx ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) return std::unexpected(tls_error("TLS: " + openssl_text()));
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    const int loaded = ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx.get())
                                       : SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr);
    if (loaded != 1)
        return std::unexpected(tls_error("TLS: cannot load the CA certificates" +
                                         (ca_file.empty() ? std::string() : " of " + ca_file) + ": " + openssl_text()));
    return ctx;
}

// Connects to one gateway and binds: a bind answered with an error is
// `connected` (final unless retryable: a 52 passes to the next gateway),
// every other failure is not.
std::expected<Connection, ClientError> open_one(const ClientOptions& o, SSL_CTX* ctx, const std::string& uri,
                                                const Secret& secret, int& next_id) {
    auto ep = parse_gateway_uri(uri);
    if (!ep) return std::unexpected(protocol_error(ep.error().message));
    const Deadline connect_by = SteadyClock::now() + o.timeout;
    auto fd = tcp_connect(uri, *ep, connect_by);
    if (!fd) return std::unexpected(fd.error());
    Connection c(uri, std::move(*fd));
    if (!ep->ldaps) {
        auto r = c.call(ldap::extended_request(next_id, ldap::kStartTlsOid, std::nullopt), next_id,
                        ldap::kExtendedResponse, SteadyClock::now() + o.timeout);
        ++next_id;
        if (!r) return std::unexpected(r.error());
        if (r->result_code != ldap::kSuccess)
            return std::unexpected(tls_error("StartTLS refused by " + uri + ": " + ldap::result_name(r->result_code) +
                                             (r->diagnostic.empty() ? "" : ": " + r->diagnostic)));
        if (!c.drained()) return std::unexpected(protocol_error(uri + " sent data after StartTLS"));
    }
    if (auto t = c.start_tls(ctx, ep->host, SteadyClock::now() + o.timeout); !t) return std::unexpected(t.error());
    const std::string context = "simple bind to " + uri + " as " + o.principal;
    auto r = c.call(ldap::bind_request(next_id, o.principal, secret.view()), next_id, ldap::kBindResponse,
                    SteadyClock::now() + o.timeout);
    ++next_id;
    if (!r) {
        auto e = r.error();
        e.message = context + ": " + e.message;
        return std::unexpected(std::move(e));
    }
    if (r->result_code != ldap::kSuccess)
        return std::unexpected(ClientError{true, ldap::retryable_result(r->result_code), false, r->result_code, uri,
                                           context + ": " + ldap::result_name(r->result_code) +
                                               (r->diagnostic.empty() ? "" : ": " + r->diagnostic),
                                           true});
    return c;
}

}  // namespace

Result<Endpoint> parse_gateway_uri(std::string_view uri) {
    Endpoint ep;
    std::string_view rest;
    if (uri.starts_with("ldaps://")) rest = uri.substr(8);
    else if (uri.starts_with("ldap://")) {
        rest = uri.substr(7);
        ep.ldaps = false;
    } else {
        return fail(Errc::invalid_argument, "unsupported URI " + std::string(uri) + ": use ldaps:// or ldap://");
    }
    if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
        if (slash + 1 != rest.size()) return fail(Errc::invalid_argument, "a gateway URI has no path: " + std::string(uri));
        rest = rest.substr(0, slash);
    }
    std::string_view port;
    if (rest.starts_with('[')) {
        const auto close = rest.find(']');
        if (close == std::string_view::npos) return fail(Errc::invalid_argument, "bad IPv6 address in " + std::string(uri));
        ep.host = std::string(rest.substr(1, close - 1));
        rest.remove_prefix(close + 1);
        if (!rest.empty() && !rest.starts_with(':')) return fail(Errc::invalid_argument, "bad gateway URI " + std::string(uri));
        if (!rest.empty()) port = rest.substr(1);
    } else {
        const auto colon = rest.find(':');
        ep.host = std::string(rest.substr(0, colon));
        if (colon != std::string_view::npos) port = rest.substr(colon + 1);
    }
    if (ep.host.empty()) return fail(Errc::invalid_argument, "no host in gateway URI " + std::string(uri));
    if (port.empty()) port = ep.ldaps ? "636" : "389";
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos || std::stoul(std::string(port)) == 0 ||
        std::stoul(std::string(port)) > 65535)
        return fail(Errc::invalid_argument, "bad port in gateway URI " + std::string(uri));
    ep.port = std::string(port);
    return ep;
}

std::expected<std::string, ClientError> password_modify(const ClientOptions& o, const Secret& secret,
                                                         std::string_view account, const Secret* old_password,
                                                         const Secret& new_password) {
    // A gateway that closes the connection must make a write fail (EPIPE),
    // not kill the process: OpenSSL writes to the socket without MSG_NOSIGNAL.
    struct sigaction old {};
    if (::sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) ::signal(SIGPIPE, SIG_IGN);
    if (o.uris.empty()) return std::unexpected(protocol_error("no gateway URI"));
    auto ctx = make_context(o.ca_file);
    if (!ctx) return std::unexpected(ctx.error());

    int next_id = 1;
    std::optional<Connection> conn;
    std::vector<ClientError> failures;
    for (const auto& uri : o.uris) {
        auto c = open_one(o, ctx->get(), uri, secret, next_id);
        if (c) {
            conn.emplace(std::move(*c));
            break;
        }
        // A refusal (a wrong secret) is final; a gateway that could not
        // check the bind now (52: its store is failing over) passes to the next.
        if (c.error().connected && !c.error().retryable) return std::unexpected(c.error());
        failures.push_back(std::move(c).error());
    }
    if (!conn) {
        // Report the first outage, else the first failure; name every URI tried.
        std::size_t pick = 0;
        for (std::size_t i = 0; i < failures.size(); ++i)
            if (failures[i].retryable) { pick = i; break; }
        ClientError e = failures[pick];
        if (failures.size() > 1) {
            const bool answered = std::any_of(failures.begin(), failures.end(), [](const auto& f) { return f.at_bind; });
            e.message = answered ? "no gateway took the bind: " : "no gateway reachable: ";
            for (std::size_t i = 0; i < failures.size(); ++i) e.message += (i ? "; " : "") + failures[i].message;
        }
        return std::unexpected(std::move(e));
    }

    const Secret value = directory::ber::password_modify_request(account, old_password, &new_password);
    const int id = next_id++;
    const Deadline by = SteadyClock::now() + o.timeout;
    auto r = conn->call(ldap::extended_request(id, ldap::kPasswordModifyOid, value.view()), id, ldap::kExtendedResponse, by);
    if (!r) {
        auto e = r.error();
        e.connected = true;
        e.uri = conn->uri();
        return std::unexpected(std::move(e));
    }
    if (r->result_code != ldap::kSuccess)
        return std::unexpected(ClientError{true, ldap::retryable_result(r->result_code), false, r->result_code, conn->uri(),
                                           r->diagnostic});
    conn->unbind(next_id, SteadyClock::now() + o.timeout);
    return conn->uri();
}

}  // namespace pwsync::notify
