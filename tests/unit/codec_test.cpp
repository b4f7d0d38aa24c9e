#include <gtest/gtest.h>

#include "codec.h"

namespace pwsync::store::codec {
namespace {

TEST(Codec, RoundTripAndUnknownTagsSkipped) {
    const std::string rec = Encoder(1).str(1, "name").u64(2, 300).boolean(3, true).str(99, "from the future").take();
    std::string name;
    std::uint64_t n = 0;
    bool b = false;
    int seen = 0;
    auto st = decode(rec, 1, "test", [&](std::uint32_t tag, std::string_view v) -> Status {
        ++seen;
        if (tag == 1) name = v;
        if (tag == 2) n = *as_u64(v);
        if (tag == 3) b = *as_bool(v);
        return {};
    });
    ASSERT_TRUE(st) << st.error().message;
    EXPECT_EQ(seen, 4);
    EXPECT_EQ(name, "name");
    EXPECT_EQ(n, 300u);
    EXPECT_TRUE(b);
}

TEST(Codec, NewerFormatIsAVersionError) {
    const std::string rec = Encoder(2).str(1, "x").take();
    auto st = decode(rec, 1, "application", [](std::uint32_t, std::string_view) -> Status { return {}; });
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, Errc::version);
    EXPECT_NE(st.error().message.find("newer"), std::string::npos);
}

TEST(Codec, TruncatedRecordIsCorrupt) {
    std::string rec = Encoder(1).str(1, "abcdef").take();
    rec.pop_back();
    auto st = decode(rec, 1, "test", [](std::uint32_t, std::string_view) -> Status { return {}; });
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, Errc::corrupt);
    EXPECT_FALSE(decode("", 1, "test", [](std::uint32_t, std::string_view) -> Status { return {}; }));
}

TEST(Codec, VarintLimits) {
    for (std::uint64_t v : {0ull, 1ull, 127ull, 128ull, 0xffffffffull, ~0ull}) {
        std::string s;
        put_varint(s, v);
        auto back = as_u64(s);
        ASSERT_TRUE(back);
        EXPECT_EQ(*back, v);
    }
    EXPECT_FALSE(as_u64(std::string(11, '\xff')));  // longer than 64 bits
    EXPECT_FALSE(as_u64(""));
    EXPECT_FALSE(as_bool(std::string(1, '\x02')));
}

}  // namespace
}  // namespace pwsync::store::codec
