#include "tls_probe.h"

#include <ldap.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <fcntl.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "pwsync/handles.h"

namespace pwsync::directory {
namespace {

// A TCP connection within the timeout, or none.
UniqueFd tcp_connect(const std::string& host, int port, std::chrono::milliseconds timeout) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0) return {};
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned(res, &::freeaddrinfo);
    for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
        UniqueFd owner(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
        if (!owner) continue;
        const int fd = owner.get();
        int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            pollfd p{fd, POLLOUT, 0};
            int err = 0;
            socklen_t len = sizeof err;
            if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1 &&
                ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
                rc = 0;
        }
        if (rc == 0) {
            ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
            timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
            ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
            return owner;
        }
    }
    return {};
}

// Sends an LDAP StartTLS request and reads the (whole, small) response.
bool start_tls(int fd) {
    static const char oid[] = "1.3.6.1.4.1.1466.20037";
    std::string req = {0x30, 0x1d, 0x02, 0x01, 0x01, 0x77, 0x18, static_cast<char>(0x80), 0x16};
    req += oid;
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return false;
    unsigned char buf[512];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    // resultCode is the first element of the ExtendedResponse: 0 = success.
    return n > 10 && std::memchr(buf, 0x0a, static_cast<std::size_t>(n)) != nullptr;
}

}  // namespace

TlsProbe probe_tls(const std::string& uri, const std::string& ca_file, std::chrono::milliseconds timeout) {
    TlsProbe p;
    LDAPURLDesc* lud = nullptr;
    if (ldap_url_parse(uri.c_str(), &lud) != LDAP_URL_SUCCESS || lud == nullptr) return p;
    const bool ldaps = std::strcmp(lud->lud_scheme, "ldaps") == 0;
    const std::string host = lud->lud_host != nullptr ? lud->lud_host : "";
    const int port = lud->lud_port != 0 ? lud->lud_port : ldaps ? 636 : 389;
    ldap_free_urldesc(lud);

    const UniqueFd fd = tcp_connect(host, port, timeout);
    if (!fd) return p;
    p.reachable = true;
    if (!ldaps && !start_tls(fd.get())) {
        p.detail = "the server did not accept StartTLS";
        return p;
    }
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()), &SSL_CTX_free);
    if (!ctx) return p;
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    if (ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx.get()) != 1
                        : SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1) {
        p.detail = "cannot load the CA certificates from " + (ca_file.empty() ? std::string("the system store") : ca_file);
        ERR_clear_error();
        return p;
    }
    std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), &SSL_free);
    SSL_set_fd(ssl.get(), fd.get());
    SSL_set_tlsext_host_name(ssl.get(), host.c_str());
    SSL_set_hostflags(ssl.get(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    // A literal address is checked against the IP SANs, a name against DNS.
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), host.c_str()) != 1) SSL_set1_host(ssl.get(), host.c_str());
    ERR_clear_error();
    const int rc = SSL_connect(ssl.get());
    if (rc == 1) {
        p.handshake_ok = true;
        SSL_shutdown(ssl.get());
        return p;
    }
    const long verify = SSL_get_verify_result(ssl.get());
    const int kind = SSL_get_error(ssl.get(), rc);
    const unsigned long e = ERR_peek_error();
    if (verify != X509_V_OK) {
        p.rejected = true;
        p.detail = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
    } else if (kind == SSL_ERROR_SSL && ERR_GET_REASON(e) != SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        // A handshake the two sides cannot agree on (versions, ciphers).
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        p.rejected = true;
        p.detail = std::string("TLS handshake failed: ") + buf;
    }
    // Else the peer went away mid-handshake: nothing conclusive.
    ERR_clear_error();
    return p;
}

}  // namespace pwsync::directory
