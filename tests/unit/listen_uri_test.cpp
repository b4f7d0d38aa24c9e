#include <gtest/gtest.h>

#include "listen_uri.h"

namespace pwsync::gateway {
namespace {

TEST(ListenUri, Forms) {
    auto u = parse_listen_uri("ldaps://127.0.0.1:1636");
    ASSERT_TRUE(u);
    EXPECT_TRUE(u->ldaps);
    EXPECT_EQ(u->host, "127.0.0.1");
    EXPECT_EQ(u->port, 1636);
    u = parse_listen_uri("ldap://0.0.0.0:1389/");
    ASSERT_TRUE(u);
    EXPECT_FALSE(u->ldaps);
    EXPECT_EQ(u->port, 1389);
    u = parse_listen_uri("LDAPS://[::1]:0");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->host, "::1");
    EXPECT_EQ(u->port, 0);
    u = parse_listen_uri("ldaps://localhost");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->port, 636);
    u = parse_listen_uri("ldap://[::]");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->host, "::");
    EXPECT_EQ(u->port, 389);
}

TEST(ListenUri, Refusals) {
    for (const char* bad : {"http://x:1", "ldaps://", "ldaps://:1636", "ldaps://::1:1636", "ldaps://[::1", "ldaps://x:",
                            "ldaps://x:65536", "ldaps://x:12a", "ldaps://[::1]x", "ldaps://a b:1"})
        EXPECT_FALSE(parse_listen_uri(bad)) << bad;
}

}  // namespace
}  // namespace pwsync::gateway
