#include "verified_secrets.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <algorithm>
#include <memory>

namespace pwsync::gateway {

VerifiedSecrets::VerifiedSecrets(std::chrono::seconds ttl, std::size_t max_entries)
    : ttl_(ttl), max_entries_(max_entries) {
    // Without randomness no entry is ever made (ttl 0): binds stay slow, never wrong.
    if (RAND_bytes(key_, sizeof key_) != 1) ttl_ = std::chrono::seconds(0);
}

VerifiedSecrets::~VerifiedSecrets() { OPENSSL_cleanse(key_, sizeof key_); }

std::string VerifiedSecrets::mac(std::string_view principal, std::string_view version, const Secret& secret) const {
    // lower(name) \0 size(version) : version secret: names hold no \0 and the
    // version's size is given, so two different inputs cannot run together.
    std::string head = ascii_lower(principal);
    head.push_back('\0');
    head += std::to_string(version.size());
    head.push_back(':');
    head += version;
    std::unique_ptr<EVP_MAC, decltype(&EVP_MAC_free)> hmac(EVP_MAC_fetch(nullptr, "HMAC", nullptr), &EVP_MAC_free);
    if (!hmac) return {};
    std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)> c(EVP_MAC_CTX_new(hmac.get()), &EVP_MAC_CTX_free);
    if (!c) return {};
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0), OSSL_PARAM_construct_end()};
    unsigned char out[EVP_MAX_MD_SIZE];
    std::size_t n = 0;
    if (EVP_MAC_init(c.get(), key_, sizeof key_, params) != 1 ||
        EVP_MAC_update(c.get(), reinterpret_cast<const unsigned char*>(head.data()), head.size()) != 1 ||
        EVP_MAC_update(c.get(), reinterpret_cast<const unsigned char*>(secret.data()), secret.size()) != 1 ||
        EVP_MAC_final(c.get(), out, &n, sizeof out) != 1)
        return {};
    return std::string(reinterpret_cast<const char*>(out), n);
}

bool VerifiedSecrets::known(std::string_view principal, std::string_view version, const Secret& secret, TimePoint now) {
    if (ttl_.count() <= 0) return false;
    const std::string m = mac(principal, version, secret);
    if (m.empty()) return false;
    std::lock_guard lock(mutex_);
    auto it = entries_.find(ascii_lower(principal));
    if (it == entries_.end()) return false;
    if (it->second.expires <= now) {
        entries_.erase(it);
        return false;
    }
    return constant_time_equal(it->second.mac, m);
}

void VerifiedSecrets::remember(std::string_view principal, std::string_view version, const Secret& secret, TimePoint now) {
    if (ttl_.count() <= 0) return;
    std::string m = mac(principal, version, secret);
    if (m.empty()) return;
    std::lock_guard lock(mutex_);
    if (entries_.size() >= max_entries_ && !entries_.contains(ascii_lower(principal))) {
        std::erase_if(entries_, [&](const auto& e) { return e.second.expires <= now; });
        if (entries_.size() >= max_entries_) entries_.erase(entries_.begin());
    }
    entries_[ascii_lower(principal)] = {std::move(m), now + ttl_};
}

}  // namespace pwsync::gateway
