#include "ldap_raw_client.h"

#include <arpa/inet.h>
#include <lber.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

namespace pwsync::test {
namespace {

struct BerFree {
    void operator()(BerElement* b) const noexcept { ber_free(b, 1); }
};
using BerPtr = std::unique_ptr<BerElement, BerFree>;

std::string flatten(BerElement* ber) {
    berval bv{};
    if (ber_flatten2(ber, &bv, 0) != 0) return {};
    return std::string(bv.bv_val, bv.bv_len);
}

ber_len_t len(std::string_view s) { return static_cast<ber_len_t>(s.size()); }

}  // namespace

std::string bind_request(int id, std::string_view dn, std::string_view password) {
    BerPtr ber(ber_alloc_t(LBER_USE_DER));
    ber_printf(ber.get(), "{it{ioto}}", id, ber_tag_t{0x60}, 3, dn.data(), len(dn), ber_tag_t{0x80}, password.data(),
               len(password));
    return flatten(ber.get());
}

std::string sasl_bind_request(int id, std::string_view mechanism, std::optional<std::string_view> credentials) {
    BerPtr ber(ber_alloc_t(LBER_USE_DER));
    ber_printf(ber.get(), "{it{iot{o", id, ber_tag_t{0x60}, 3, "", ber_len_t{0}, ber_tag_t{0xa3}, mechanism.data(),
               len(mechanism));
    if (credentials) ber_printf(ber.get(), "o", credentials->data(), len(*credentials));
    ber_printf(ber.get(), "}}}");
    return flatten(ber.get());
}

std::string extended_request(int id, std::string_view oid, std::optional<std::string_view> value) {
    BerPtr ber(ber_alloc_t(LBER_USE_DER));
    ber_printf(ber.get(), "{it{to", id, ber_tag_t{0x77}, ber_tag_t{0x80}, oid.data(), len(oid));
    if (value) ber_printf(ber.get(), "to", ber_tag_t{0x81}, value->data(), len(*value));
    ber_printf(ber.get(), "}}");
    return flatten(ber.get());
}

std::string password_modify_value(std::optional<std::string_view> user, std::optional<std::string_view> old_pw,
                                  std::optional<std::string_view> new_pw) {
    BerPtr ber(ber_alloc_t(LBER_USE_DER));
    ber_printf(ber.get(), "{");
    if (user) ber_printf(ber.get(), "to", ber_tag_t{0x80}, user->data(), len(*user));
    if (old_pw) ber_printf(ber.get(), "to", ber_tag_t{0x81}, old_pw->data(), len(*old_pw));
    if (new_pw) ber_printf(ber.get(), "to", ber_tag_t{0x82}, new_pw->data(), len(*new_pw));
    ber_printf(ber.get(), "}");
    return flatten(ber.get());
}

std::string unbind_request(int id) {
    BerPtr ber(ber_alloc_t(LBER_USE_DER));
    ber_printf(ber.get(), "{itn}", id, ber_tag_t{0x42});
    return flatten(ber.get());
}

std::string search_request(int id) {
    BerPtr ber(ber_alloc_t(LBER_USE_DER));
    // base "", scope base, derefAliases never, no limits, typesOnly false,
    // filter (objectClass=*) as a present filter [7], no attributes.
    ber_printf(ber.get(), "{it{oeeiibts{}}}", id, ber_tag_t{0x63}, "", ber_len_t{0}, 0, 0, 0, 0, 0, ber_tag_t{0x87},
               "objectClass");
    return flatten(ber.get());
}

std::unique_ptr<RawClient> RawClient::connect(const std::string& host, std::uint16_t port) {
    std::unique_ptr<RawClient> c(new RawClient());
    const bool v6 = host.find(':') != std::string::npos;
    c->fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd_ < 0) return nullptr;
    timeval tv{5, 0};
    ::setsockopt(c->fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(c->fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int rc;
    if (v6) {
        sockaddr_in6 a{};
        a.sin6_family = AF_INET6;
        a.sin6_port = htons(port);
        ::inet_pton(AF_INET6, host.c_str(), &a.sin6_addr);
        rc = ::connect(c->fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    } else {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        ::inet_pton(AF_INET, host.c_str(), &a.sin_addr);
        rc = ::connect(c->fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
    if (rc != 0) return nullptr;
    return c;
}

RawClient::~RawClient() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
}

bool RawClient::start_tls(const std::string& ca_file, const std::string& cert, const std::string& key) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (ctx_ == nullptr || SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr) != 1) return false;
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    if (!cert.empty() && (SSL_CTX_use_certificate_file(ctx_, cert.c_str(), SSL_FILETYPE_PEM) != 1 ||
                          SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM) != 1))
        return false;
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    if (SSL_connect(ssl_) != 1) return false;
    // TLS 1.3 sends the server's verdict on a client certificate after the
    // handshake: a short read makes a refusal visible here.
    return true;
}

bool RawClient::send(std::string_view bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
        const long n = ssl_ != nullptr ? SSL_write(ssl_, bytes.data() + sent, static_cast<int>(bytes.size() - sent))
                                       : ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) return false;
        sent += static_cast<std::size_t>(n);
    }
    return true;
}

bool RawClient::read_exact(char* data, std::size_t size) {
    std::size_t got = 0;
    while (got < size) {
        const long n = ssl_ != nullptr ? SSL_read(ssl_, data + got, static_cast<int>(size - got))
                                       : ::recv(fd_, data + got, size - got, 0);
        if (n <= 0) return false;
        got += static_cast<std::size_t>(n);
    }
    return true;
}

std::optional<LdapResponse> RawClient::receive() {
    std::string msg(2, '\0');
    if (!read_exact(msg.data(), 2) || static_cast<unsigned char>(msg[0]) != 0x30) return std::nullopt;
    std::size_t body = static_cast<unsigned char>(msg[1]);
    if (body & 0x80) {
        const std::size_t n = body & 0x7f;
        if (n == 0 || n > 4) return std::nullopt;
        msg.resize(2 + n);
        if (!read_exact(msg.data() + 2, n)) return std::nullopt;
        body = 0;
        for (std::size_t i = 0; i < n; ++i) body = (body << 8) | static_cast<unsigned char>(msg[2 + i]);
    }
    const std::size_t head = msg.size();
    msg.resize(head + body);
    if (!read_exact(msg.data() + head, body)) return std::nullopt;

    berval bv{msg.size(), msg.data()};
    BerPtr ber(ber_init(&bv));
    if (!ber) return std::nullopt;
    LdapResponse r;
    ber_int_t id = 0, code = 0;
    if (ber_scanf(ber.get(), "{i", &id) == LBER_ERROR) return std::nullopt;
    ber_len_t l = 0;
    r.op = ber_peek_tag(ber.get(), &l);
    berval matched{}, text{};
    if (ber_scanf(ber.get(), "{eoo", &code, &matched, &text) == LBER_ERROR) return std::nullopt;
    r.message_id = id;
    r.code = code;
    r.message.assign(text.bv_val, text.bv_len);
    ber_memfree(matched.bv_val);
    ber_memfree(text.bv_val);
    for (;;) {
        const ber_tag_t t = ber_peek_tag(ber.get(), &l);
        if (t != 0x8a && t != 0x8b) break;
        berval v{};
        if (ber_scanf(ber.get(), "o", &v) == LBER_ERROR) return std::nullopt;
        (t == 0x8a ? r.name : r.value) = std::string(v.bv_val, v.bv_len);
        ber_memfree(v.bv_val);
    }
    return r;
}

bool RawClient::closed_within(double seconds) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    char buf[512];
    while (std::chrono::steady_clock::now() < until) {
        if (ssl_ == nullptr || SSL_pending(ssl_) == 0) {
            pollfd p{fd_, POLLIN, 0};
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
            if (::poll(&p, 1, static_cast<int>(std::max<long>(left.count(), 1))) <= 0) continue;
        }
        const long n = ssl_ != nullptr ? SSL_read(ssl_, buf, sizeof buf) : ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) return true;
    }
    return false;
}

}  // namespace pwsync::test
