#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <limits>
#include <string>

#include "helpers.h"
#include "pwsync/util.h"

namespace pwsync {
namespace {

TEST(Util, ConstantTimeEqual) {
    EXPECT_TRUE(constant_time_equal("secret", "secret"));
    EXPECT_FALSE(constant_time_equal("secret", "secreT"));
    EXPECT_FALSE(constant_time_equal("secret", "secret2"));
    EXPECT_FALSE(constant_time_equal("", "x"));
    EXPECT_TRUE(constant_time_equal("", ""));
}

TEST(Util, SecretIsMoveOnlyAndClears) {
    Secret s("hunter2hunter2");
    Secret t = std::move(s);
    EXPECT_EQ(t.view(), "hunter2hunter2");
    Secret u = t.clone();
    t.clear();
    EXPECT_TRUE(t.empty());
    EXPECT_EQ(u.view(), "hunter2hunter2");
}

TEST(Util, Iso8601RoundTrip) {
    auto t = parse_iso8601("2026-11-24T21:49:59Z");
    ASSERT_TRUE(t);
    EXPECT_EQ(format_iso8601(*t), "2026-11-24T21:49:59Z");
    EXPECT_EQ(format_iso8601(*parse_iso8601("2026-11-24")), "2026-11-24T00:00:00Z");
    EXPECT_EQ(format_iso8601(*parse_iso8601("2026-11-24T10:30")), "2026-11-24T10:30:00Z");
    EXPECT_FALSE(parse_iso8601("yesterday"));
    EXPECT_FALSE(parse_iso8601("2026-13-01"));
    EXPECT_FALSE(parse_iso8601("2026-11-24T10:30:00+02:00"));
}

TEST(Util, Utf8Validation) {
    EXPECT_TRUE(valid_utf8("plain"));
    EXPECT_TRUE(valid_utf8("P\xC3\xA4ssw\xC3\xB6rd \xE2\x82\xAC \xF0\x9F\x94\x91"));
    EXPECT_FALSE(valid_utf8("\xC0\xAF"));          // overlong
    EXPECT_FALSE(valid_utf8("\xED\xA0\x80"));      // surrogate
    EXPECT_FALSE(valid_utf8("\xE2\x82"));          // truncated
}

TEST(Util, ManualClockMovesOnlyWhenTold) {
    ManualClock c(from_unix_micros(1'000'000));
    EXPECT_EQ(to_unix_micros(c.now()), 1'000'000);
    c.advance(std::chrono::seconds(2));
    EXPECT_EQ(to_unix_micros(c.now()), 3'000'000);
}

// Found by the store_record fuzzer: a stored time past ±292 years overflowed.
TEST(Util, FromUnixMicrosSaturatesOutOfRangeTimes) {
    const std::int64_t huge = 12'460'069'115'004'928;
    EXPECT_EQ(from_unix_micros(huge), from_unix_micros(std::numeric_limits<std::int64_t>::max()));
    EXPECT_EQ(from_unix_micros(-huge), from_unix_micros(std::numeric_limits<std::int64_t>::min()));
    EXPECT_GT(from_unix_micros(huge), from_unix_micros(1'764'020'000'000'000));
    EXPECT_LT(from_unix_micros(-huge), from_unix_micros(-1'764'020'000'000'000));
    const std::int64_t stable = to_unix_micros(from_unix_micros(huge));
    EXPECT_EQ(to_unix_micros(from_unix_micros(stable)), stable);
}

TEST(Util, FiletimeCountsFrom1601) {
    // 2026-11-24T21:49:59Z as AD writes it in pwdLastSet.
    const auto t = *parse_iso8601("2026-11-24T21:49:59Z");
    EXPECT_EQ(to_filetime(t), 134400305990000000);
    EXPECT_EQ(from_filetime(134400305990000000), t);
    EXPECT_EQ(to_filetime(from_unix_micros(0)), 116444736000000000);
    EXPECT_EQ(from_filetime(std::numeric_limits<std::int64_t>::min()), from_unix_micros(std::numeric_limits<std::int64_t>::min()));
}

TEST(Util, PathExistsSeesFilesAndFolders) {
    test::TempDir tmp;
    const std::string dir = tmp / "d", file = tmp / "f", link = tmp / "l";
    EXPECT_TRUE(path_exists(tmp.path()));
    EXPECT_FALSE(path_exists(dir));
    ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
    EXPECT_TRUE(path_exists(dir));
    EXPECT_FALSE(path_exists(file));
    std::ofstream(file) << "x";
    EXPECT_TRUE(path_exists(file));
    ASSERT_EQ(::unlink(file.c_str()), 0);
    EXPECT_FALSE(path_exists(file));
    ASSERT_EQ(::rmdir(dir.c_str()), 0);
    EXPECT_FALSE(path_exists(dir));
    // Links are followed: one to nothing is not there.
    ASSERT_EQ(::symlink(file.c_str(), link.c_str()), 0);
    EXPECT_FALSE(path_exists(link));
}

}  // namespace
}  // namespace pwsync
