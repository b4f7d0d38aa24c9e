// Sealing of secrets (AES-256-GCM), the master key ring, and slow hashes
// of principal secrets (scrypt).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pwsync/util.h"

namespace pwsync::store::crypto {

inline constexpr std::size_t kKeySize = 32;
inline constexpr std::size_t kNonceSize = 12;
inline constexpr std::size_t kTagSize = 16;
inline constexpr unsigned char kSealFormat = 1;

// A 256-bit key and its id (the first 4 bytes of SHA-256 over a label and
// the key), so a sealed value says which key opens it without revealing it.
class Key {
public:
    static Result<Key> from_bytes(std::string_view bytes);
    static Result<Key> generate();
    Key(const Key&) = delete;
    Key& operator=(const Key&) = delete;
    Key(Key&&) noexcept = default;
    Key& operator=(Key&&) noexcept = default;
    ~Key() = default;

    std::uint32_t id() const noexcept { return id_; }
    const unsigned char* bytes() const noexcept { return reinterpret_cast<const unsigned char*>(bytes_.data()); }
    std::string_view view() const noexcept { return bytes_.view(); }
    // HMAC(key, "pwsync marker key v1"): the key markers are found by
    // (derived once here, not for every marker).
    std::string_view marker_key() const noexcept { return marker_key_.view(); }

private:
    Key() = default;
    Secret bytes_;
    Secret marker_key_;
    std::uint32_t id_ = 0;
};

// The keys a process can open with; `current` seals.
struct KeyRing {
    std::vector<Key> keys;
    std::uint32_t current = 0;
    const Key* find(std::uint32_t id) const noexcept;
};

// Associated data binding a sealed value to where it lives, so a sealed value
// copied into another record (or field) fails to open.
std::string seal_context(std::string_view db, std::string_view record_key, std::string_view field);

// format(1) | key id (4, big endian) | nonce (12) | ciphertext | tag (16)
Result<std::string> seal(const Key& key, std::string_view plaintext, std::string_view context);
Result<Secret> open(const KeyRing& ring, std::string_view sealed, std::string_view context);
// The key id of a sealed value, or an error when it is not one.
Result<std::uint32_t> sealed_key_id(std::string_view sealed);
// "1a2b3c4d": how a key id is shown to admins.
std::string key_id_hex(std::uint32_t id);

Status random_bytes(unsigned char* out, std::size_t n);
// HMAC-SHA256 of `data` under `key` (32 bytes out).
Result<std::string> hmac_sha256(std::string_view key, std::string_view data);

// Slow salted hash of a principal secret.
struct SecretHash {
    std::uint64_t n = 0, r = 0, p = 0;
    std::string salt;
    std::string hash;
};
Result<SecretHash> hash_secret(std::string_view secret);
Result<bool> verify_secret(const SecretHash& stored, std::string_view secret);

}  // namespace pwsync::store::crypto
