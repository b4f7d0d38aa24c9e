#include "tls_context.h"

#include <openssl/err.h>
#include <openssl/x509.h>

namespace pwsync::gateway {
namespace {

struct BioFree {
    void operator()(BIO* bio) const noexcept { BIO_free(bio); }
};

}  // namespace

std::string tls_error_text(std::string_view fallback) {
    std::string text;
    while (const unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!text.empty()) text += "; ";
        text += buf;
    }
    return text.empty() ? std::string(fallback) : text;
}

Result<TlsContext> TlsContext::load(const std::string& cert_file, const std::string& key_file,
                                    const std::string& client_ca_file) {
    ERR_clear_error();
    TlsContext t;
    t.ctx_.reset(SSL_CTX_new(TLS_server_method()));
    SSL_CTX* ctx = t.ctx_.get();
    if (ctx == nullptr) return fail(Errc::crypto, "cannot create a TLS context: " + tls_error_text("unknown error"));
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
        return fail(Errc::crypto, "cannot require TLS 1.2: " + tls_error_text("unknown error"));
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1)
        return fail(Errc::crypto, "cannot load the listener certificate " + cert_file + ": " + tls_error_text("unreadable"));
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1)
        return fail(Errc::crypto, "cannot load the listener key " + key_file + ": " + tls_error_text("unreadable"));
    if (SSL_CTX_check_private_key(ctx) != 1)
        return fail(Errc::crypto, "the listener key " + key_file + " does not match the certificate " + cert_file);
    // No resumption: every connection shows (and has verified) its certificate.
    // CLEANSE_PLAINTEXT: OpenSSL wipes its copy of decrypted data (passwords).
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_CLEANSE_PLAINTEXT);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    if (!client_ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(ctx, client_ca_file.c_str(), nullptr) != 1)
            return fail(Errc::crypto, "cannot load the client CA " + client_ca_file + ": " + tls_error_text("unreadable"));
        STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(client_ca_file.c_str());
        if (names == nullptr)
            return fail(Errc::crypto, "no CA certificate in " + client_ca_file + ": " + tls_error_text("empty"));
        SSL_CTX_set_client_CA_list(ctx, names);  // takes ownership
        // Request, do not require: a client without a certificate binds simply.
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
        t.client_certs_ = true;
    }
    return t;
}

std::string verified_peer_subject(SSL* ssl) {
    X509* cert = SSL_get0_peer_certificate(ssl);
    if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return {};
    std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
    if (!bio || X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) < 0) return {};
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    if (n <= 0 || data == nullptr) return {};
    return std::string(data, static_cast<std::size_t>(n));
}

}  // namespace pwsync::gateway
