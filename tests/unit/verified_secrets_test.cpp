// The cache of recently verified principal secrets (Engine::authenticate):
// what it accepts without scrypt, and everything it must refuse.
#include <gtest/gtest.h>

#include "verified_secrets.h"

namespace pwsync::gateway {
namespace {

const TimePoint kT0 = from_unix_micros(1'800'000'000'000'000);

Secret secret(std::string_view s) {
    Secret out;
    out.append(s);
    return out;
}

TEST(VerifiedSecretsTest, ARememberedSecretIsKnownUntilItsTimeRunsOut) {
    VerifiedSecrets v(std::chrono::seconds(300), 16);
    EXPECT_FALSE(v.known("dc1", "salt-1", secret("s3cret"), kT0));
    v.remember("dc1", "salt-1", secret("s3cret"), kT0);
    EXPECT_TRUE(v.known("dc1", "salt-1", secret("s3cret"), kT0 + std::chrono::seconds(299)));
    EXPECT_TRUE(v.known("DC1", "salt-1", secret("s3cret"), kT0)) << "principal names are case-insensitive";
    EXPECT_FALSE(v.known("dc1", "salt-1", secret("s3cret"), kT0 + std::chrono::seconds(300)));
    // Expired entries are gone, not revived by a later clock reading.
    EXPECT_FALSE(v.known("dc1", "salt-1", secret("s3cret"), kT0));
}

TEST(VerifiedSecretsTest, AnythingButTheSameSecretOfTheSamePrincipalVersionIsRefused) {
    VerifiedSecrets v(std::chrono::seconds(300), 16);
    v.remember("dc1", "salt-1", secret("s3cret"), kT0);
    EXPECT_FALSE(v.known("dc1", "salt-1", secret("s3cret "), kT0));
    EXPECT_FALSE(v.known("dc1", "salt-1", secret("S3cret"), kT0));
    EXPECT_FALSE(v.known("dc1", "salt-1", secret(""), kT0));
    EXPECT_FALSE(v.known("dc2", "salt-1", secret("s3cret"), kT0));
    // The principal was given a new secret (or deleted and created again).
    EXPECT_FALSE(v.known("dc1", "salt-2", secret("s3cret"), kT0));
    // Parts cannot run into each other: ("dc1", "salt-1" + "s") is not ("dc1", "salt-1") + "s".
    v.remember("dc3", "ab", secret("c"), kT0);
    EXPECT_FALSE(v.known("dc3", "a", secret("bc"), kT0));
}

TEST(VerifiedSecretsTest, ANewSecretReplacesTheOldOne) {
    VerifiedSecrets v(std::chrono::seconds(300), 16);
    v.remember("dc1", "salt-1", secret("old"), kT0);
    v.remember("dc1", "salt-1", secret("new"), kT0);
    EXPECT_TRUE(v.known("dc1", "salt-1", secret("new"), kT0));
    EXPECT_FALSE(v.known("dc1", "salt-1", secret("old"), kT0));
}

TEST(VerifiedSecretsTest, ZeroTtlKeepsNothing) {
    VerifiedSecrets v(std::chrono::seconds(0), 16);
    v.remember("dc1", "salt-1", secret("s3cret"), kT0);
    EXPECT_FALSE(v.known("dc1", "salt-1", secret("s3cret"), kT0));
}

TEST(VerifiedSecretsTest, TheCacheIsBounded) {
    VerifiedSecrets v(std::chrono::seconds(300), 4);
    for (int i = 0; i < 10; ++i) v.remember("p" + std::to_string(i), "v", secret("s"), kT0);
    int known = 0;
    for (int i = 0; i < 10; ++i) known += v.known("p" + std::to_string(i), "v", secret("s"), kT0) ? 1 : 0;
    EXPECT_LE(known, 4);
    EXPECT_TRUE(v.known("p9", "v", secret("s"), kT0)) << "the newest entry stays";
}

}  // namespace
}  // namespace pwsync::gateway
