#include "crypto.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <pthread.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

namespace pwsync::store::crypto {
namespace {

std::string openssl_error(std::string_view what) {
    std::string msg(what);
    const unsigned long e = ERR_get_error();
    if (e != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        msg += ": ";
        msg += buf;
    }
    ERR_clear_error();
    return msg;
}

struct CipherCtx {
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    CipherCtx() = default;
    CipherCtx(const CipherCtx&) = delete;
    CipherCtx& operator=(const CipherCtx&) = delete;
    ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
};

void put_be32(std::string& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

std::uint32_t get_be32(std::string_view in) {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(in[static_cast<std::size_t>(i)]);
    return v;
}

const unsigned char* uc(const char* p) { return reinterpret_cast<const unsigned char*>(p); }

// OpenSSL 3 looks an algorithm named by EVP_sha256() or EVP_aes_256_gcm() up
// in its providers at every init (locks and property queries: a sixth of the
// capture path's CPU in the core benchmark); fetched once here instead.
// Never freed: they live as long as the process.
const EVP_MD* sha256() {
    static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return md;
}
const EVP_CIPHER* aes_256_gcm() {
    static EVP_CIPHER* const c = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
    return c;
}

struct DigestCtx {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    DigestCtx() = default;
    DigestCtx(const DigestCtx&) = delete;
    DigestCtx& operator=(const DigestCtx&) = delete;
    ~DigestCtx() { EVP_MD_CTX_free(ctx); }
    // SHA-256 of the parts, into out (32 bytes).
    bool sha256_of(std::initializer_list<std::string_view> parts, unsigned char* out) {
        if (ctx == nullptr || sha256() == nullptr || EVP_DigestInit_ex2(ctx, sha256(), nullptr) != 1) return false;
        for (auto part : parts)
            if (EVP_DigestUpdate(ctx, part.data(), part.size()) != 1) return false;
        return EVP_DigestFinal_ex(ctx, out, nullptr) == 1;
    }
};

// scrypt cost: 16 MiB of memory per hash, about 40 ms on one core here.
constexpr std::uint64_t kScryptN = 1u << 14, kScryptR = 8, kScryptP = 1;
constexpr std::size_t kSaltSize = 16, kHashSize = 32;

// scrypt's 16 MiB buffers, once per concurrent verification: without a
// bound, 16 clients binding at once make the daemon's memory jump by
// 256 MiB. At most one per CPU runs; the others wait (binds are rare: a
// client binds once per connection).
std::mutex& scrypt_mutex() {
    static std::mutex m;
    return m;
}
std::condition_variable& scrypt_cv() {
    static std::condition_variable cv;
    return cv;
}

// RAII slot of the gate.
class ScryptSlot {
public:
    ScryptSlot() {
        std::unique_lock l(scrypt_mutex());
        scrypt_cv().wait(l, [] { return in_use() < limit(); });
        ++in_use();
    }
    ~ScryptSlot() {
        {
            std::lock_guard l(scrypt_mutex());
            --in_use();
        }
        scrypt_cv().notify_one();
    }
    ScryptSlot(const ScryptSlot&) = delete;
    ScryptSlot& operator=(const ScryptSlot&) = delete;

private:
    static unsigned& in_use() {
        static unsigned n = 0;
        return n;
    }
    static unsigned limit() {
        static const unsigned l = std::max(1u, std::thread::hardware_concurrency());
        return l;
    }
};

}  // namespace

Status random_bytes(unsigned char* out, std::size_t n) {
    if (RAND_bytes(out, static_cast<int>(n)) != 1) return fail(Errc::crypto, openssl_error("random generator failed"));
    return {};
}

namespace {
// A seal's nonce, taken from random bytes drawn 42 nonces at a time: one
// RAND_bytes() per nonce took its locks, parameter lookups and fork check
// at every seal (6 % of the core benchmark's CPU, inside the writer's turn).
// The nonces stay uniformly random, as before. A pool per thread needs no
// lock. A forked child must never use the pool it inherited (its parent
// may hand out the same nonces): each fork bumps a generation, and a new
// pid also counts (a pid alone can repeat: wrapped, or in a new namespace).
std::atomic<std::uint64_t> fork_generation{0};

Status next_nonce(unsigned char* out) {
    static std::once_flag registered;
    std::call_once(registered, [] { ::pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1); }); });
    struct Pool {
        unsigned char bytes[kNonceSize * 42];
        std::size_t used = sizeof bytes;
        pid_t pid = 0;
        std::uint64_t generation = 0;
    };
    thread_local Pool pool;
    const std::uint64_t generation = fork_generation.load();
    if (pool.used + kNonceSize > sizeof pool.bytes || pool.pid != ::getpid() || pool.generation != generation) {
        pool.used = sizeof pool.bytes;  // nothing of the old pool is used, even if the refill fails
        PWSYNC_TRY(random_bytes(pool.bytes, sizeof pool.bytes));
        pool.used = 0;
        pool.pid = ::getpid();
        pool.generation = generation;
    }
    std::copy_n(pool.bytes + pool.used, kNonceSize, out);
    OPENSSL_cleanse(pool.bytes + pool.used, kNonceSize);  // handed out once only
    pool.used += kNonceSize;
    return {};
}
}  // namespace

// HMAC (RFC 2104) over the prefetched SHA-256: OpenSSL's one-shot HMAC()
// fetches both the MAC and the digest on every call.
Result<std::string> hmac_sha256(std::string_view key, std::string_view data) {
    constexpr std::size_t kBlock = 64, kDigest = SHA256_DIGEST_LENGTH;
    DigestCtx d;
    unsigned char k[kBlock] = {}, pad[kBlock], inner[kDigest];
    std::string out(kDigest, '\0');
    const auto view = [](const unsigned char* p, std::size_t n) { return std::string_view(reinterpret_cast<const char*>(p), n); };
    bool ok = true;
    if (key.size() > kBlock) ok = d.sha256_of({key}, k);  // a long key is hashed first
    else std::copy(key.begin(), key.end(), reinterpret_cast<char*>(k));
    for (std::size_t i = 0; i < kBlock; ++i) pad[i] = static_cast<unsigned char>(k[i] ^ 0x36);
    ok = ok && d.sha256_of({view(pad, kBlock), data}, inner);
    for (std::size_t i = 0; i < kBlock; ++i) pad[i] = static_cast<unsigned char>(k[i] ^ 0x5c);
    ok = ok && d.sha256_of({view(pad, kBlock), view(inner, kDigest)}, reinterpret_cast<unsigned char*>(out.data()));
    wipe(k, sizeof k);
    wipe(pad, sizeof pad);
    wipe(inner, sizeof inner);
    if (!ok) return fail(Errc::crypto, openssl_error("HMAC failed"));
    return out;
}

Result<Key> Key::from_bytes(std::string_view bytes) {
    if (bytes.size() != kKeySize)
        return fail(Errc::crypto, "a master key is " + std::to_string(kKeySize) + " bytes, this one has " +
                                      std::to_string(bytes.size()));
    Key k;
    k.bytes_ = Secret(bytes);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    static constexpr std::string_view label = "pwsync master key id";
    const bool ok = DigestCtx().sha256_of({label, bytes}, digest);
    if (!ok) return fail(Errc::crypto, openssl_error("cannot compute the key id"));
    k.id_ = get_be32(std::string_view(reinterpret_cast<const char*>(digest), 4));
    wipe(digest, sizeof digest);
    PWSYNC_ASSIGN(std::string marker, hmac_sha256(bytes, "pwsync marker key v1"));
    k.marker_key_ = Secret(marker);
    wipe(marker.data(), marker.size());
    return k;
}

Result<Key> Key::generate() {
    Secret raw;
    raw.resize(kKeySize);
    if (auto st = random_bytes(reinterpret_cast<unsigned char*>(raw.data()), raw.size()); !st)
        return std::unexpected(st.error());
    return from_bytes(raw.view());
}

const Key* KeyRing::find(std::uint32_t id) const noexcept {
    for (const auto& k : keys)
        if (k.id() == id) return &k;
    return nullptr;
}

std::string seal_context(std::string_view db, std::string_view record_key, std::string_view field) {
    std::string ctx = "pwsync-seal-v1";
    for (auto part : {db, record_key, field}) {
        ctx.push_back('\0');
        ctx.append(std::to_string(part.size()));
        ctx.push_back(':');
        ctx.append(part);
    }
    return ctx;
}

Result<std::string> seal(const Key& key, std::string_view plaintext, std::string_view context) {
    std::string out;
    out.reserve(1 + 4 + kNonceSize + plaintext.size() + kTagSize);
    out.push_back(static_cast<char>(kSealFormat));
    put_be32(out, key.id());
    unsigned char nonce[kNonceSize];
    if (auto st = next_nonce(nonce); !st) return std::unexpected(st.error());
    out.append(reinterpret_cast<const char*>(nonce), sizeof nonce);

    int len = 0;
    const std::size_t ct_at = out.size();
    out.resize(ct_at + plaintext.size() + kTagSize);
    auto* ct = reinterpret_cast<unsigned char*>(out.data() + ct_at);
    // A context per value, freed (and so cleansed) at once: one kept keyed
    // across values held the last block of a password in its buffers
    // (OpenSSL 3.5; gateway_e2e's memory scan found it).
    CipherCtx ctx;
    EVP_CIPHER_CTX* c = ctx.ctx;
    if (c == nullptr || EVP_EncryptInit_ex(c, aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, kNonceSize, nullptr) != 1 ||
        EVP_EncryptInit_ex(c, nullptr, nullptr, key.bytes(), nonce) != 1 ||
        EVP_EncryptUpdate(c, nullptr, &len, uc(context.data()), static_cast<int>(context.size())) != 1 ||
        EVP_EncryptUpdate(c, ct, &len, uc(plaintext.data()), static_cast<int>(plaintext.size())) != 1 ||
        EVP_EncryptFinal_ex(c, ct + len, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, kTagSize, ct + plaintext.size()) != 1)
        return fail(Errc::crypto, openssl_error("sealing failed"));
    return out;
}

std::string key_id_hex(std::uint32_t id) {
    std::string be;
    put_be32(be, id);
    return hex_encode(be);
}

Result<std::uint32_t> sealed_key_id(std::string_view sealed) {
    if (sealed.size() < 1 + 4 + kNonceSize + kTagSize || static_cast<unsigned char>(sealed[0]) != kSealFormat)
        return fail(Errc::corrupt, "not a sealed value");
    return get_be32(sealed.substr(1, 4));
}

Result<Secret> open(const KeyRing& ring, std::string_view sealed, std::string_view context) {
    auto id = sealed_key_id(sealed);
    if (!id) return std::unexpected(id.error());
    const Key* key = ring.find(*id);
    if (key == nullptr)
        return fail(Errc::crypto, "secret is sealed with key " + key_id_hex(*id) +
                                      ", which is not in the key file (wrong master key?)");
    const auto* nonce = uc(sealed.data() + 5);
    const std::string_view body = sealed.substr(5 + kNonceSize);
    const std::size_t ct_len = body.size() - kTagSize;
    Secret plain;
    plain.resize(ct_len);
    int len = 0;
    // The tag is passed in a copy because the API wants a non-const pointer.
    unsigned char tag[kTagSize];
    std::copy(body.end() - kTagSize, body.end(), reinterpret_cast<char*>(tag));
    CipherCtx ctx;  // per value, as in seal()
    EVP_CIPHER_CTX* c = ctx.ctx;
    const bool ok =
        c != nullptr && EVP_DecryptInit_ex(c, aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, kNonceSize, nullptr) == 1 &&
        EVP_DecryptInit_ex(c, nullptr, nullptr, key->bytes(), nonce) == 1 &&
        EVP_DecryptUpdate(c, nullptr, &len, uc(context.data()), static_cast<int>(context.size())) == 1 &&
        EVP_DecryptUpdate(c, reinterpret_cast<unsigned char*>(plain.data()), &len, uc(body.data()),
                          static_cast<int>(ct_len)) == 1 &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, kTagSize, tag) == 1 &&
        EVP_DecryptFinal_ex(c, reinterpret_cast<unsigned char*>(plain.data()) + len, &len) == 1;
    ERR_clear_error();
    if (!ok)
        return fail(Errc::corrupt, "a sealed secret failed its integrity check (tampered, or moved from another record)");
    return plain;
}

Result<SecretHash> hash_secret(std::string_view secret) {
    SecretHash h{kScryptN, kScryptR, kScryptP, std::string(kSaltSize, '\0'), std::string(kHashSize, '\0')};
    if (auto st = random_bytes(reinterpret_cast<unsigned char*>(h.salt.data()), h.salt.size()); !st)
        return std::unexpected(st.error());
    if (EVP_PBE_scrypt(secret.data(), secret.size(), uc(h.salt.data()), h.salt.size(), h.n, h.r, h.p,
                       0, reinterpret_cast<unsigned char*>(h.hash.data()), h.hash.size()) != 1)
        return fail(Errc::crypto, openssl_error("scrypt failed"));
    return h;
}

Result<bool> verify_secret(const SecretHash& stored, std::string_view secret) {
    // Bounds keep a corrupt record from asking for gigabytes of memory.
    if (stored.hash.size() != kHashSize || stored.salt.empty() || stored.n < 2 || stored.n > (1u << 20) ||
        stored.r == 0 || stored.r > 32 || stored.p == 0 || stored.p > 16)
        return fail(Errc::corrupt, "principal secret hash has invalid parameters");
    Secret out;
    out.resize(kHashSize);
    ScryptSlot slot;
    if (EVP_PBE_scrypt(secret.data(), secret.size(), uc(stored.salt.data()), stored.salt.size(), stored.n,
                       stored.r, stored.p, std::uint64_t{1} << 30, reinterpret_cast<unsigned char*>(out.data()),
                       out.size()) != 1)
        return fail(Errc::crypto, openssl_error("scrypt failed"));
    return constant_time_equal(out.view(), stored.hash);
}

}  // namespace pwsync::store::crypto
