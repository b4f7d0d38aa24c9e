// The listener's OpenSSL server context: TLS 1.2 at least, the server's
// certificate and key, and optionally a CA to request and verify client
// certificates with (not required: a client without one can still bind).
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "pwsync/util.h"

namespace pwsync::gateway {

struct SslCtxFree {
    void operator()(SSL_CTX* ctx) const noexcept { SSL_CTX_free(ctx); }
};
struct SslFree {
    void operator()(SSL* ssl) const noexcept { SSL_free(ssl); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;

class TlsContext {
public:
    static Result<TlsContext> load(const std::string& cert_file, const std::string& key_file,
                                   const std::string& client_ca_file);
    SSL_CTX* get() const noexcept { return ctx_.get(); }
    bool requests_client_certs() const noexcept { return client_certs_; }

private:
    std::unique_ptr<SSL_CTX, SslCtxFree> ctx_;
    bool client_certs_ = false;
};

// The text of OpenSSL's error queue of this thread (emptied), or `fallback`.
std::string tls_error_text(std::string_view fallback);

// The RFC 2253 subject of the peer's certificate when it was presented and
// verified, else an empty string.
std::string verified_peer_subject(SSL* ssl);

}  // namespace pwsync::gateway
