// LogLimiter: one line a period, the held-back ones counted in the next.
#include <gtest/gtest.h>

#include "log_limiter.h"

namespace pwsync::gateway {
namespace {

TEST(LogLimiter, OneLineAPeriodAndTheRestCounted) {
    using namespace std::chrono_literals;
    std::chrono::steady_clock::time_point t{};
    LogLimiter limit(10s, [&] { return t; });
    EXPECT_EQ(limit.admit("a"), "a");
    t += 1s;
    EXPECT_FALSE(limit.admit("b"));
    t += 8s;
    EXPECT_FALSE(limit.admit("c"));
    t += 1s;  // a period after the last line written
    EXPECT_EQ(limit.admit("d"), "d (2 more like it not logged)");
    t += 10s;
    EXPECT_EQ(limit.admit("e"), "e");  // nothing held back since
}

}  // namespace
}  // namespace pwsync::gateway
