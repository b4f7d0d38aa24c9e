// Failed-bind throttling on a hand-moved clock.
#include <gtest/gtest.h>

#include "bind_throttle.h"

namespace pwsync::gateway {
namespace {

using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;

class BindThrottleTest : public ::testing::Test {
protected:
    BindThrottleTest() {
        options_.per_principal = {.free_failures = 3, .window = 600s, .base_delay = 1000ms, .max_delay = 8000ms};
        options_.per_peer = {.free_failures = 10, .window = 600s, .base_delay = 500ms, .max_delay = 4000ms};
    }
    ManualClock clock_{from_unix_micros(1'800'000'000'000'000)};
    BindThrottleOptions options_;
};

TEST_F(BindThrottleTest, FreeFailuresThenExponentialCappedDelay) {
    BindThrottle t(options_, clock_);
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(t.admit("cn=a", "10.0.0.1"), ms(0));
        t.failed("cn=a", "10.0.0.1");
    }
    std::vector<ms> waits;
    for (int i = 0; i < 6; ++i) {
        const auto w = t.admit("cn=a", "10.0.0.1");
        ASSERT_TRUE(w);
        waits.push_back(*w);
        clock_.advance(*w);  // the attempt waits, then fails
        t.failed("cn=a", "10.0.0.1");
    }
    EXPECT_EQ(waits, (std::vector<ms>{1000ms, 2000ms, 4000ms, 8000ms, 8000ms, 8000ms}));
}

TEST_F(BindThrottleTest, OtherPrincipalsAndPeersAreNotSlowed) {
    BindThrottle t(options_, clock_);
    for (int i = 0; i < 5; ++i) t.failed("cn=a", "10.0.0.1");
    EXPECT_GT(*t.admit("cn=a", "10.0.0.1"), ms(0));
    EXPECT_GT(*t.admit("cn=a", "10.0.0.2"), ms(0));  // the name is throttled from anywhere
    EXPECT_EQ(t.admit("cn=b", "10.0.0.1"), ms(0));   // the address is not (yet)
}

TEST_F(BindThrottleTest, PeerThrottledAcrossNames) {
    BindThrottle t(options_, clock_);
    for (int i = 0; i < 10; ++i) t.failed("cn=user" + std::to_string(i), "10.0.0.9");
    EXPECT_EQ(t.admit("cn=fresh", "10.0.0.9"), ms(500));
    EXPECT_EQ(t.admit("cn=fresh", "10.0.0.8"), ms(0));
}

TEST_F(BindThrottleTest, ConcurrentAttemptsAreSpacedAndCapped) {
    BindThrottle t(options_, clock_);
    for (int i = 0; i < 3; ++i) t.failed("cn=a", "p");
    EXPECT_EQ(t.admit("cn=a", "p"), ms(1000));
    EXPECT_EQ(t.admit("cn=a", "p"), ms(2000));
    EXPECT_EQ(t.admit("cn=a", "p"), ms(3000));
    for (int i = 0; i < 5; ++i) t.admit("cn=a", "p");
    EXPECT_EQ(t.admit("cn=a", "p"), std::nullopt);  // beyond max_delay: busy
}

TEST_F(BindThrottleTest, SuccessClearsThePrincipalAndTheWindowForgives) {
    BindThrottle t(options_, clock_);
    for (int i = 0; i < 4; ++i) t.failed("cn=a", "p");
    EXPECT_GT(*t.admit("cn=a", "p"), ms(0));
    t.succeeded("cn=a");
    EXPECT_EQ(t.admit("cn=a", "p"), ms(0));

    for (int i = 0; i < 4; ++i) t.failed("cn=b", "q");
    clock_.advance(601s);
    EXPECT_EQ(t.admit("cn=b", "q"), ms(0));
    t.failed("cn=b", "q");
    EXPECT_EQ(t.admit("cn=b", "q"), ms(0));  // counting starts over
}

TEST_F(BindThrottleTest, DnSpellingsShareAKey) {
    BindThrottle t(options_, clock_);
    t.failed("CN=Alice, OU=X", "p");
    t.failed("cn=alice,ou=x", "p");
    t.failed("cn=ALICE ,ou=x", "p");
    EXPECT_GT(*t.admit("Cn=Alice,Ou=X", "other"), ms(0));
}

TEST_F(BindThrottleTest, MemoryIsBounded) {
    options_.max_tracked = 50;
    BindThrottle t(options_, clock_);
    for (int i = 0; i < 1000; ++i) {
        t.failed("cn=spray" + std::to_string(i), "p");
        clock_.advance(1ms);
    }
    EXPECT_LE(t.tracked(), 50U);
    // The sprayer's address stays the most recent key and stays throttled.
    EXPECT_GT(*t.admit("cn=new", "p"), ms(0));
}

}  // namespace
}  // namespace pwsync::gateway
