// The portable half of the Windows capture: spool records, the sealed change,
// the retry schedule, the Password Modify request and the agent's config.
#include <gtest/gtest.h>

#include <lber.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "agent_config.h"
#include "ber.h"
#include "retry.h"
#include "spool_record.h"

using namespace pwsync::win;

namespace {

Bytes utf16(std::string_view ascii) {
    Bytes b;
    for (char c : ascii) b.push_back(static_cast<std::uint8_t>(c)), b.push_back(0);
    return b;
}

// Stands in for DPAPI: XOR with a per-instance key, plus a tag so that a
// blob sealed by another "machine" is refused.
class FakeSealer final : public Sealer {
public:
    explicit FakeSealer(std::uint8_t key) : key_(key) {}
    std::expected<Bytes, std::string> seal(const SecretBytes& plain) override {
        Bytes out{key_};
        for (auto b : plain.bytes()) out.push_back(b ^ key_);
        return out;
    }
    std::expected<SecretBytes, std::string> unseal(const Bytes& sealed) override {
        if (sealed.empty() || sealed[0] != key_) return std::unexpected(std::string("sealed by another key"));
        SecretBytes out;
        for (std::size_t i = 1; i < sealed.size(); ++i) {
            const std::uint8_t b = sealed[i] ^ key_;
            out.append(&b, 1);
        }
        return out;
    }

private:
    std::uint8_t key_;
};

bool contains(const Bytes& hay, const Bytes& needle) {
    return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

Bytes round_trip_file(FakeSealer& s, std::string_view account, std::string_view password) {
    const Bytes a = utf16(account), p = utf16(password);
    const SecretBytes plain = encode_change(a.data(), a.size(), p.data(), p.size());
    auto sealed = s.seal(plain);
    EXPECT_TRUE(sealed.has_value());
    return encode_record({1700000000, *sealed});
}

}  // namespace

TEST(SpoolRecord, RoundTripThroughTheSealer) {
    FakeSealer s(0x5A);
    const Bytes file = round_trip_file(s, "alice", "Wonder-Land.2024x");
    auto r = decode_record(file.data(), file.size());
    ASSERT_TRUE(r.has_value()) << r.error();
    EXPECT_EQ(r->created, 1700000000U);
    auto plain = s.unseal(r->sealed);
    ASSERT_TRUE(plain.has_value());
    auto c = decode_change(*plain);
    ASSERT_TRUE(c.has_value()) << c.error();
    EXPECT_EQ(c->account, utf16("alice"));
    EXPECT_EQ(c->password.bytes(), utf16("Wonder-Land.2024x"));
}

TEST(SpoolRecord, NeverHoldsThePasswordInClear) {
    FakeSealer s(0x5A);
    const Bytes file = round_trip_file(s, "alice", "Wonder-Land.2024x");
    EXPECT_FALSE(contains(file, utf16("Wonder-Land.2024x")));
    const std::string ascii = "Wonder-Land.2024x";
    EXPECT_FALSE(contains(file, Bytes(ascii.begin(), ascii.end())));
}

TEST(SpoolRecord, EveryDamageIsDetectedWithAReason) {
    FakeSealer s(0x11);
    const Bytes good = round_trip_file(s, "bob", "Blue-Ocean.77z");
    // Any single flipped byte, any truncation, and trailing junk.
    for (std::size_t i = 0; i < good.size(); ++i) {
        Bytes bad = good;
        bad[i] ^= 0x40;
        auto r = decode_record(bad.data(), bad.size());
        EXPECT_FALSE(r.has_value()) << "flip at " << i;
        if (!r) {
            EXPECT_FALSE(r.error().empty());
        }
    }
    for (std::size_t n = 0; n < good.size(); ++n) EXPECT_FALSE(decode_record(good.data(), n).has_value()) << n;
    Bytes longer = good;
    longer.push_back(0);
    EXPECT_FALSE(decode_record(longer.data(), longer.size()).has_value());
}

TEST(SpoolRecord, UnknownVersionIsNamed) {
    FakeSealer s(0x11);
    Bytes f = round_trip_file(s, "bob", "x1");
    f[4] = 9;
    const auto crc = crc32(f.data(), f.size() - 4);
    for (int i = 0; i < 4; ++i) f[f.size() - 4 + i] = static_cast<std::uint8_t>(crc >> (8 * i));
    auto r = decode_record(f.data(), f.size());
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().find("version 9"), std::string::npos) << r.error();
}

TEST(SpoolRecord, AnotherKeyCannotUnseal) {
    FakeSealer a(0x11), b(0x22);
    const Bytes f = round_trip_file(a, "carol", "Purple-Rain.31w");
    auto r = decode_record(f.data(), f.size());
    ASSERT_TRUE(r.has_value());
    EXPECT_FALSE(b.unseal(r->sealed).has_value());
}

TEST(SpoolRecord, BadChangesAreRefused) {
    const Bytes a = utf16("dave");
    SecretBytes odd = encode_change(a.data(), a.size(), a.data(), 3);
    EXPECT_FALSE(decode_change(odd).has_value());
    SecretBytes none = encode_change(a.data(), 0, a.data(), 2);
    EXPECT_FALSE(decode_change(none).has_value());
    SecretBytes cut = encode_change(a.data(), a.size(), a.data(), a.size());
    cut.bytes().pop_back();
    EXPECT_FALSE(decode_change(cut).has_value());
}

TEST(SpoolNames, SortInCaptureOrder) {
    std::map<std::string, int> order;
    order[entry_name(0x01D9000000000001ULL, 7, 400)] = 2;
    order[entry_name(0x01D9000000000000ULL, 9, 400)] = 1;
    order[entry_name(0x01D9000000000001ULL, 8, 100)] = 3;
    int expect = 1;
    for (const auto& [name, n] : order) {
        EXPECT_TRUE(is_entry_name(name)) << name;
        EXPECT_EQ(n, expect++);
    }
    EXPECT_FALSE(is_entry_name("01d9000000000001-00000007-00000190.tmp"));
    EXPECT_FALSE(is_entry_name("x1d9000000000001-00000007-00000190.pws"));
    EXPECT_FALSE(is_entry_name("short.pws"));
}

TEST(Utf16, ToUtf8) {
    const std::uint8_t euro_g_clef[] = {'a', 0, 0xAC, 0x20, 0x34, 0xD8, 0x1E, 0xDD};  // a € 𝄞
    SecretBytes out;
    ASSERT_TRUE(utf16le_to_utf8(euro_g_clef, sizeof euro_g_clef, out));
    const Bytes want{'a', 0xE2, 0x82, 0xAC, 0xF0, 0x9D, 0x84, 0x9E};
    EXPECT_EQ(out.bytes(), want);
    const std::uint8_t lone[] = {0x34, 0xD8, 'a', 0};
    EXPECT_FALSE(utf16le_to_utf8(lone, sizeof lone, out));
    EXPECT_FALSE(utf16le_to_utf8(lone, 3, out));
}

TEST(Retry, BackoffDoublesUpToTheCap) {
    Backoff b(500, 4000);
    EXPECT_EQ(b.delay_ms(0), 0U);
    EXPECT_EQ(b.delay_ms(1), 500U);
    EXPECT_EQ(b.delay_ms(2), 1000U);
    EXPECT_EQ(b.delay_ms(4), 4000U);
    EXPECT_EQ(b.delay_ms(400), 4000U);
}

TEST(Retry, StateFollowsTheInjectedClock) {
    RetryState st(Backoff(1000, 60000));
    EXPECT_TRUE(st.due(0));
    st.failed(10000);
    EXPECT_FALSE(st.due(10999));
    EXPECT_EQ(st.wait_ms(10400), 600U);
    EXPECT_TRUE(st.due(11000));
    st.failed(11000);
    EXPECT_EQ(st.wait_ms(11000), 2000U);
    st.succeeded();
    EXPECT_TRUE(st.due(11000));
    EXPECT_EQ(st.failures(), 0U);
}

TEST(Retry, AgeLimitOnlyWhenConfigured) {
    EXPECT_FALSE(too_old(100, 100000000, 0));
    EXPECT_FALSE(too_old(100, 200, 100));
    EXPECT_TRUE(too_old(100, 201, 100));
    EXPECT_FALSE(too_old(300, 200, 10));  // clock went back: keep it
}

// What wldap32 sends must be what an LDAP server decodes: check with lber.
TEST(PasswordModify, LberDecodesTheRequest) {
    for (std::size_t len : {std::size_t{12}, std::size_t{200}, std::size_t{70000}}) {
        const std::string pw(len, 'p');
        SecretBytes p;
        p.append(reinterpret_cast<const std::uint8_t*>(pw.data()), pw.size());
        const SecretBytes req = encode_password_modify("alice", p);
        berval bv{static_cast<ber_len_t>(req.size()), reinterpret_cast<char*>(const_cast<std::uint8_t*>(req.data()))};
        BerElement* ber = ber_init(&bv);
        ASSERT_NE(ber, nullptr);
        berval user{}, newpw{};
        ber_tag_t t = ber_scanf(ber, "{");
        ASSERT_NE(t, LBER_ERROR);
        ASSERT_EQ(ber_peek_tag(ber, &bv.bv_len), 0x80U);
        ASSERT_NE(ber_scanf(ber, "m", &user), LBER_ERROR);
        ASSERT_EQ(ber_peek_tag(ber, &bv.bv_len), 0x82U);
        ASSERT_NE(ber_scanf(ber, "m", &newpw), LBER_ERROR);
        EXPECT_EQ(std::string(user.bv_val, user.bv_len), "alice");
        EXPECT_EQ(std::string(newpw.bv_val, newpw.bv_len), pw);
        ber_free(ber, 1);
    }
}

TEST(AgentConfig, RoundTrip) {
    AgentConfig c;
    c.gateways = {"ldaps://gw1.example:1636", "ldaps://gw2.example"};
    c.principal = "dc-win1";
    c.ca = "C:\\ProgramData\\pwsync\\ca.pem";
    c.max_age = 86400;
    c.pinned = false;
    auto back = parse_agent_config(format_agent_config(c));
    ASSERT_TRUE(back.has_value()) << back.error();
    EXPECT_EQ(back->gateways, c.gateways);
    EXPECT_EQ(back->principal, c.principal);
    EXPECT_EQ(back->ca, c.ca);
    EXPECT_EQ(back->timeout, 5U);
    EXPECT_EQ(back->max_age, 86400U);
    EXPECT_FALSE(back->pinned);
    EXPECT_TRUE(parse_agent_config("gateway = ldaps://gw\nprincipal = p\nca = c\n")->pinned);
}

TEST(AgentConfig, RefusesWhatWouldSendInClearOrIsIncomplete) {
    EXPECT_FALSE(parse_agent_config("gateway = ldap://gw:389\nprincipal = p\nca = c\n").has_value());
    EXPECT_FALSE(parse_agent_config("gateway = ldaps://gw\nca = c\n").has_value());
    EXPECT_FALSE(parse_agent_config("gateway = ldaps://gw\nprincipal = p\nca = c\nsecret = x\n").has_value());
    EXPECT_FALSE(parse_agent_config("gateway = ldaps://gw:0\nprincipal = p\nca = c\n").has_value());
    auto u = parse_gateway_uri("ldaps://127.0.0.1:1636");
    ASSERT_TRUE(u.has_value());
    EXPECT_EQ(u->host, "127.0.0.1");
    EXPECT_EQ(u->port, 1636);
    EXPECT_EQ(parse_gateway_uri("ldaps://dc.example/")->port, 636);
}
