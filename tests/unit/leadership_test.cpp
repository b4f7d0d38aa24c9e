// The gateway's right to act as the active one, on its own (injected)
// monotonic clock. LMDB grants the lease to whoever asks (one process), so
// what is tested here is the right's arithmetic; the lease between
// gateways is tested on PostgreSQL (store_pg_test, tests/integration/ha_*).
#include <gtest/gtest.h>

#include "helpers.h"
#include "leadership.h"

namespace pwsync::gateway {
namespace {

TEST(LeaseTimings, FailoverFitsTheTimeout) {
    for (auto ft : {std::chrono::seconds(3), std::chrono::seconds(15), std::chrono::seconds(300)}) {
        const auto t = lease_timings(ft);
        // A dead holder's lease runs out, a standby's next heartbeat takes it, it settles.
        EXPECT_LE(t.ttl + t.renew_every + t.settle, std::chrono::milliseconds(ft));
        EXPECT_GT(t.margin, std::chrono::milliseconds(0));
        EXPECT_LT(t.renew_every, t.ttl - t.margin);  // renewed before the right runs out
    }
}

TEST(Leadership, TheRightEndsTtlMinusMarginAfterTheHeartbeatWasSent) {
    test::TempDir dir;
    store::Options o;
    o.uri = "lmdb:" + (dir / "store") + "?map_size=67108864";
    auto s = store::Store::init(o);
    ASSERT_TRUE(s) << s.error().message;
    SteadyTime now{std::chrono::seconds(1000)};
    LeadershipOptions lo;
    lo.failover_timeout = std::chrono::seconds(15);
    lo.now = [&] { return now; };
    Leadership l(*s, {"inst", "gw", "host", 1}, lo);
    const auto t = l.timings();
    EXPECT_FALSE(l.fence());
    EXPECT_FALSE(l.may_deliver());
    const SteadyTime sent = now;
    const SteadyTime next = l.beat(true);
    EXPECT_EQ(next, sent + t.renew_every);
    auto f = l.fence();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->until, sent + t.ttl - t.margin);
    EXPECT_EQ(f->instance, "inst");
    EXPECT_TRUE(l.may_deliver());  // a first term follows nobody: no settling
    EXPECT_TRUE(l.state().active);
    // No heartbeat answered since: the right runs out on its own.
    now = sent + t.ttl - t.margin;
    EXPECT_FALSE(l.fence());
    EXPECT_FALSE(l.may_deliver());
    EXPECT_FALSE(l.state().active);
    // A renewal moves the end on; asking for nothing (stopping) ends it.
    l.beat(true);
    ASSERT_TRUE(l.fence());
    EXPECT_EQ(l.fence()->until, now + t.ttl - t.margin);
    l.beat(false);
    EXPECT_FALSE(l.fence());
}

}  // namespace
}  // namespace pwsync::gateway
