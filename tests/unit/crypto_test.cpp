#include <sys/wait.h>
#include <unistd.h>

#include <set>

#include <gtest/gtest.h>

#include "crypto.h"

namespace pwsync::store::crypto {
namespace {

using namespace std::string_view_literals;

KeyRing ring_of(Key k) {
    KeyRing r;
    r.current = k.id();
    r.keys.push_back(std::move(k));
    return r;
}

TEST(Crypto, SealOpenRoundTrip) {
    auto ring = ring_of(*Key::generate());
    const auto ctx = seal_context("mappings", "racf\0alice"sv, "credential");
    auto sealed = seal(ring.keys[0], "P\xC3\xA4ssw0rd!", ctx);
    ASSERT_TRUE(sealed);
    EXPECT_EQ(sealed->find("ssw0rd"), std::string::npos);
    EXPECT_EQ(sealed->size(), 1 + 4 + kNonceSize + 10 + kTagSize);
    EXPECT_EQ(*sealed_key_id(*sealed), ring.current);
    auto opened = open(ring, *sealed, ctx);
    ASSERT_TRUE(opened) << opened.error().message;
    EXPECT_EQ(opened->view(), "P\xC3\xA4ssw0rd!");
    // Random nonces: sealing twice differs.
    EXPECT_NE(*seal(ring.keys[0], "x", ctx), *seal(ring.keys[0], "x", ctx));
}

std::string nonce_of(std::string_view sealed) { return std::string(sealed.substr(1 + 4, kNonceSize)); }

// Nonces come from a pool drawn in one go: across several refills, none
// repeats, and a forked child (which inherits the pool) never takes the
// nonce its parent takes next.
TEST(Crypto, NoncesNeverRepeatAcrossPoolsOrAFork) {
    auto ring = ring_of(*Key::generate());
    std::set<std::string> seen;
    for (int i = 0; i < 500; ++i) {
        auto sealed = seal(ring.keys[0], "x", "c");
        ASSERT_TRUE(sealed);
        EXPECT_TRUE(seen.insert(nonce_of(*sealed)).second) << "nonce " << i << " repeats";
    }
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        auto sealed = seal(ring.keys[0], "x", "c");
        if (!sealed) _exit(2);
        const std::string n = nonce_of(*sealed);
        _exit(::write(fds[1], n.data(), n.size()) == static_cast<ssize_t>(n.size()) ? 0 : 1);
    }
    ::close(fds[1]);
    std::string from_child(kNonceSize, '\0');
    EXPECT_EQ(::read(fds[0], from_child.data(), from_child.size()), static_cast<ssize_t>(kNonceSize));
    ::close(fds[0]);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    auto mine = seal(ring.keys[0], "x", "c");
    ASSERT_TRUE(mine);
    EXPECT_NE(nonce_of(*mine), from_child) << "the child reused its parent's nonce";
    EXPECT_FALSE(seen.contains(from_child));
}

// RFC 4231's test cases 1, 2 and 6 (a key longer than the block is hashed
// first): the store's own HMAC must give what HMAC-SHA-256 gives, or every
// marker and index key written before would no longer be found.
TEST(Crypto, HmacSha256MatchesRfc4231) {
    const auto hex = [](const Result<std::string>& r) { return r ? hex_encode(*r) : "error: " + r.error().message; };
    EXPECT_EQ(hex(hmac_sha256(std::string(20, '\x0b'), "Hi There")),
              "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    EXPECT_EQ(hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    EXPECT_EQ(hex(hmac_sha256(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First")),
              "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    EXPECT_EQ(hex(hmac_sha256("", "")), "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

// Each thread keeps one keyed context per direction: values sealed under
// two keys in turn, and a failed open between good ones, must each open
// with their own key and never with the other's.
TEST(Crypto, AlternatingKeysAndAFailedOpenKeepEachValueItsKey) {
    KeyRing ring;
    ring.keys.push_back(*Key::generate());
    ring.keys.push_back(*Key::generate());
    ring.current = ring.keys[0].id();
    const auto ctx = seal_context("jobs", "7", "password");
    std::vector<std::string> sealed;
    for (int i = 0; i < 6; ++i) sealed.push_back(*seal(ring.keys[static_cast<std::size_t>(i % 2)], "value " + std::to_string(i), ctx));
    for (int i = 0; i < 6; ++i) {
        EXPECT_EQ(*sealed_key_id(sealed[static_cast<std::size_t>(i)]), ring.keys[static_cast<std::size_t>(i % 2)].id());
        std::string bad = sealed[static_cast<std::size_t>(i)];
        bad.back() = static_cast<char>(bad.back() ^ 1);
        EXPECT_FALSE(open(ring, bad, ctx));
        auto opened = open(ring, sealed[static_cast<std::size_t>(i)], ctx);
        ASSERT_TRUE(opened) << i << ": " << opened.error().message;
        EXPECT_EQ(opened->view(), "value " + std::to_string(i));
    }
    // A key ring without the other key cannot open its values.
    KeyRing only_first;
    only_first.keys.push_back(*Key::from_bytes(ring.keys[0].view()));
    only_first.current = only_first.keys[0].id();
    EXPECT_TRUE(open(only_first, sealed[0], ctx));
    EXPECT_FALSE(open(only_first, sealed[1], ctx));
}

TEST(Crypto, TamperedCiphertextFails) {
    auto ring = ring_of(*Key::generate());
    const auto ctx = seal_context("a", "b", "c");
    auto sealed = *seal(ring.keys[0], "secret value", ctx);
    for (std::size_t i = 5; i < sealed.size(); ++i) {  // every byte after the key id
        std::string bad = sealed;
        bad[i] = static_cast<char>(bad[i] ^ 0x01);
        auto r = open(ring, bad, ctx);
        ASSERT_FALSE(r) << "byte " << i;
        EXPECT_EQ(r.error().code, Errc::corrupt);
    }
}

TEST(Crypto, WrongKeyFails) {
    auto a = ring_of(*Key::generate());
    auto b = ring_of(*Key::generate());
    auto sealed = *seal(a.keys[0], "secret", "ctx");
    auto r = open(b, sealed, "ctx");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::crypto);
    EXPECT_NE(r.error().message.find("not in the key file"), std::string::npos);
}

TEST(Crypto, ValueMovedToAnotherRecordFails) {
    auto ring = ring_of(*Key::generate());
    auto sealed = *seal(ring.keys[0], "alice's password", seal_context("mappings", "racf\0alice"sv, "credential"));
    EXPECT_FALSE(open(ring, sealed, seal_context("mappings", "racf\0bob"sv, "credential")));
    EXPECT_FALSE(open(ring, sealed, seal_context("adapters", "racf\0alice"sv, "credential")));
    EXPECT_TRUE(open(ring, sealed, seal_context("mappings", "racf\0alice"sv, "credential")));
}

TEST(Crypto, ContextIsUnambiguous) {
    EXPECT_NE(seal_context("ab", "c", "d"), seal_context("a", "bc", "d"));
}

TEST(Crypto, KeyIdIsStableAndKeySizeChecked) {
    const std::string raw(32, 'k');
    EXPECT_EQ(Key::from_bytes(raw)->id(), Key::from_bytes(raw)->id());
    EXPECT_FALSE(Key::from_bytes(std::string(31, 'k')));
    EXPECT_EQ(key_id_hex(0x01abcdefu), "01abcdef");
}

TEST(Crypto, SecretHashVerifies) {
    auto h = hash_secret("principal-secret-1");
    ASSERT_TRUE(h);
    EXPECT_EQ(h->hash.size(), 32u);
    EXPECT_EQ(h->hash.find("principal"), std::string::npos);
    EXPECT_TRUE(*verify_secret(*h, "principal-secret-1"));
    EXPECT_FALSE(*verify_secret(*h, "principal-secret-2"));
    auto h2 = hash_secret("principal-secret-1");
    EXPECT_NE(h->salt, h2->salt);
    EXPECT_NE(h->hash, h2->hash);
    SecretHash absurd = *h;
    absurd.n = std::uint64_t{1} << 40;  // a corrupt record must not allocate terabytes
    EXPECT_FALSE(verify_secret(absurd, "x"));
}

}  // namespace
}  // namespace pwsync::store::crypto
