// Encodings the directory client builds itself: unicodePwd, BER values,
// replication metadata. No servers.
#include <gtest/gtest.h>

#include "ber.h"
#include "pwsync/directory.h"
#include "repl_meta.h"

namespace pwsync::directory {
namespace {

std::string bytes(std::initializer_list<int> b) {
    std::string s;
    for (int x : b) s.push_back(static_cast<char>(x));
    return s;
}

std::string utf16(const Secret& s) { return std::string(s.view()); }

TEST(UnicodePwd, AsciiIsQuotedUtf16le) {
    auto v = encode_unicode_pwd("abc");
    ASSERT_TRUE(v) << v.error().message;
    EXPECT_EQ(utf16(*v), bytes({0x22, 0, 'a', 0, 'b', 0, 'c', 0, 0x22, 0}));
}

TEST(UnicodePwd, QuotesInsideThePasswordAreKept) {
    auto v = encode_unicode_pwd("a\"b");
    ASSERT_TRUE(v);
    EXPECT_EQ(utf16(*v), bytes({0x22, 0, 'a', 0, 0x22, 0, 'b', 0, 0x22, 0}));
}

TEST(UnicodePwd, BmpAndSurrogatePairs) {
    // ä (U+00E4), € (U+20AC), 🔑 (U+1F511 = D83D DD11), 𝄞 (U+1D11E = D834 DD1E)
    auto v = encode_unicode_pwd("\xC3\xA4\xE2\x82\xAC\xF0\x9F\x94\x91\xF0\x9D\x84\x9E");
    ASSERT_TRUE(v);
    EXPECT_EQ(utf16(*v), bytes({0x22, 0, 0xE4, 0x00, 0xAC, 0x20, 0x3D, 0xD8, 0x11, 0xDD, 0x34, 0xD8, 0x1E, 0xDD, 0x22, 0}));
}

TEST(UnicodePwd, HighestCodePoint) {
    auto v = encode_unicode_pwd("\xF4\x8F\xBF\xBF");  // U+10FFFF = DBFF DFFF
    ASSERT_TRUE(v);
    EXPECT_EQ(utf16(*v), bytes({0x22, 0, 0xFF, 0xDB, 0xFF, 0xDF, 0x22, 0}));
}

TEST(UnicodePwd, RejectsInvalidUtf8NulAndEmptyWithoutEchoingThePassword) {
    for (std::string_view bad : {std::string_view("Secr\xC3\x28t-1"), std::string_view("Secr\xED\xA0\x80t-1"),
                                 std::string_view("Secr\xC0\xAFt-1"), std::string_view("Secr\xF4\x90\x80\x80t-1"),
                                 std::string_view("Secr\xE2\x82")}) {
        auto v = encode_unicode_pwd(bad);
        ASSERT_FALSE(v) << "accepted invalid UTF-8";
        EXPECT_EQ(v.error().code, Errc::invalid_argument);
        EXPECT_EQ(v.error().message.find("Secr"), std::string::npos) << v.error().message;
    }
    auto nul = encode_unicode_pwd(std::string_view("Secr\0et-1", 9));
    ASSERT_FALSE(nul);
    EXPECT_EQ(nul.error().message.find("Secr"), std::string::npos);
    EXPECT_FALSE(encode_unicode_pwd(""));
}

TEST(Ber, PasswordModifyRequestWithAllFields) {
    Secret old_pw("old"), new_pw("new1");
    const Secret v = ber::password_modify_request("uid=a", &old_pw, &new_pw);
    EXPECT_EQ(std::string(v.view()), bytes({0x30, 0x12, 0x80, 0x05, 'u', 'i', 'd', '=', 'a', 0x81, 0x03, 'o', 'l', 'd', 0x82,
                                            0x04, 'n', 'e', 'w', '1'}));
}

TEST(Ber, PasswordModifyRequestOmitsAbsentFields) {
    Secret new_pw("pw");
    EXPECT_EQ(std::string(ber::password_modify_request("", nullptr, &new_pw).view()), bytes({0x30, 0x04, 0x82, 0x02, 'p', 'w'}));
    EXPECT_EQ(std::string(ber::password_modify_request("u", nullptr, nullptr).view()), bytes({0x30, 0x03, 0x80, 0x01, 'u'}));
}

TEST(Ber, LongFormLengths) {
    Secret long_pw(std::string(200, 'x'));
    const Secret v = ber::password_modify_request("", nullptr, &long_pw);
    // SEQUENCE of 203 bytes (0x81 0xCB), then [2] of 200 bytes (0x81 0xC8).
    ASSERT_EQ(v.size(), 3u + 3u + 200u);
    EXPECT_EQ(std::string(v.view().substr(0, 6)), bytes({0x30, 0x81, 0xCB, 0x82, 0x81, 0xC8}));
    Secret big;
    ber::put_length(big, 0x12345);
    EXPECT_EQ(std::string(big.view()), bytes({0x83, 0x01, 0x23, 0x45}));
}

TEST(Ber, PasswordModifyResponse) {
    bool ok = false;
    auto gen = ber::password_modify_response(bytes({0x30, 0x05, 0x80, 0x03, 'g', 'e', 'n'}), ok);
    EXPECT_TRUE(ok);
    ASSERT_TRUE(gen);
    EXPECT_EQ(gen->view(), "gen");
    EXPECT_FALSE(ber::password_modify_response(bytes({0x30, 0x00}), ok));
    EXPECT_TRUE(ok);
    EXPECT_FALSE(ber::password_modify_response("", ok));
    EXPECT_TRUE(ok);
    EXPECT_FALSE(ber::password_modify_response(bytes({0x30, 0x05, 0x80}), ok));
    EXPECT_FALSE(ok);
}

TEST(Ber, PolicyHintsIsSequenceOfIntegerOne) {
    EXPECT_EQ(ber::policy_hints_value(), bytes({0x30, 0x03, 0x02, 0x01, 0x01}));
}

TEST(Ber, Integers) {
    const auto enc = [](std::int64_t v) {
        Secret s;
        ber::put_integer(s, v);
        return std::string(s.view());
    };
    EXPECT_EQ(enc(0), bytes({0x02, 0x01, 0x00}));
    EXPECT_EQ(enc(127), bytes({0x02, 0x01, 0x7F}));
    EXPECT_EQ(enc(128), bytes({0x02, 0x02, 0x00, 0x80}));
    EXPECT_EQ(enc(-1), bytes({0x02, 0x01, 0xFF}));
    EXPECT_EQ(enc(-128), bytes({0x02, 0x01, 0x80}));
    EXPECT_EQ(enc(1 << 20), bytes({0x02, 0x03, 0x10, 0x00, 0x00}));
    for (std::int64_t v : {0LL, 1LL, -1LL, 255LL, -129LL, 1LL << 40, -(1LL << 40)}) {
        const std::string encoded = enc(v);  // the Reader only views it
        ber::Reader r(encoded);
        std::int64_t back = 0;
        ASSERT_TRUE(r.integer(back));
        EXPECT_EQ(back, v);
        EXPECT_TRUE(r.at_end());
    }
}

TEST(Ber, DirSyncRequest) {
    EXPECT_EQ(ber::dirsync_request(0, 1 << 20, ""),
              bytes({0x30, 0x0A, 0x02, 0x01, 0x00, 0x02, 0x03, 0x10, 0x00, 0x00, 0x04, 0x00}));
    // The incremental-values flag is the sign bit of a 32-bit INTEGER.
    EXPECT_EQ(ber::dirsync_request(0x80000001u, 0, "ck"),
              bytes({0x30, 0x0D, 0x02, 0x04, 0x80, 0x00, 0x00, 0x01, 0x02, 0x01, 0x00, 0x04, 0x02, 'c', 'k'}));
}

TEST(Ber, DirSyncResponse) {
    auto r = ber::dirsync_response(bytes({0x30, 0x0A, 0x02, 0x01, 0x01, 0x02, 0x01, 0x00, 0x04, 0x02, 'x', 'y'}));
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->more);
    EXPECT_EQ(r->cookie, "xy");
    r = ber::dirsync_response(bytes({0x30, 0x08, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x04, 0x00}));
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->more);
    EXPECT_EQ(r->cookie, "");
    EXPECT_FALSE(ber::dirsync_response(bytes({0x30, 0x0A, 0x02, 0x01, 0x01})));           // truncated
    EXPECT_FALSE(ber::dirsync_response(bytes({0x31, 0x03, 0x02, 0x01, 0x01})));           // not a SEQUENCE
    EXPECT_FALSE(ber::dirsync_response(bytes({0x30, 0x03, 0x04, 0x01, 0x01})));           // no INTEGER
    EXPECT_FALSE(ber::dirsync_response(bytes({0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF, 0x00}))); // length past the end
}

std::string le32(std::uint32_t v) {
    std::string s;
    for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
    return s;
}
std::string le64(std::uint64_t v) { return le32(static_cast<std::uint32_t>(v)) + le32(static_cast<std::uint32_t>(v >> 32)); }

TEST(ReplMetadata, ParsesEntries) {
    std::string blob = le32(1) + le32(0) + le32(2) + le32(0);
    for (auto [attid, version, usn] : {std::tuple{kAttidPwdLastSet, 3u, 4100ull}, std::tuple{kAttidName, 1u, 3700ull}}) {
        blob += le32(attid) + le32(version) + le64(0x01D9000000000000ull) + std::string(16, '\x11') + le64(usn - 1) + le64(usn);
    }
    auto m = parse_repl_metadata(blob);
    ASSERT_TRUE(m);
    ASSERT_EQ(m->size(), 2u);
    EXPECT_EQ((*m)[0].attid, kAttidPwdLastSet);
    EXPECT_EQ((*m)[0].version, 3u);
    EXPECT_EQ((*m)[0].local_usn, 4100u);
    EXPECT_EQ((*m)[1].attid, kAttidName);
    EXPECT_EQ((*m)[1].local_usn, 3700u);
    EXPECT_EQ((*m)[0].originating_invocation_id, std::string(16, '\x11'));
    EXPECT_FALSE(parse_repl_metadata(blob.substr(0, blob.size() - 1)));  // count says more than is there
    EXPECT_FALSE(parse_repl_metadata(le32(2) + le32(0) + le32(0) + le32(0)));  // unknown version
    EXPECT_FALSE(parse_repl_metadata(""));
}

TEST(ReplMetadata, ThePasswordsNewestWriteAndItsTime) {
    // pwdLastSet moved last (a bare "must change" flag); the password at 4013.
    std::string blob = le32(1) + le32(0) + le32(4) + le32(0);
    for (auto [attid, secs, usn] : {std::tuple{kAttidUnicodePwd, 13440449248ull, 4013ull},
                                    std::tuple{kAttidNtPwdHistory, 13440449248ull, 4013ull},
                                    std::tuple{kAttidSupplementalCredentials, 13440449000ull, 3990ull},
                                    std::tuple{kAttidPwdLastSet, 13440449251ull, 4015ull}})
        blob += le32(attid) + le32(2) + le64(secs) + std::string(16, '\x11') + le64(usn) + le64(usn);
    auto m = parse_repl_metadata(blob);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->back().originating_time, 13440449251u);
    auto pw = password_meta(*m);
    ASSERT_TRUE(pw);
    EXPECT_EQ(pw->local_usn, 4013u);
    EXPECT_EQ(pw->changed_at, 134404492480000000);  // seconds -> 100 ns units
    // Metadata without any password attribute (not readable): nothing known.
    EXPECT_FALSE(password_meta({{kAttidPwdLastSet, 1, 5, 1}, {kAttidName, 1, 4, 1}}));
}

TEST(ReplMetadata, ThePasswordsOriginatingDc) {
    // unicodePwd written last on DC B (a change made there, replicated
    // here); pwdLastSet's newer write came from DC A and does not count.
    const std::string dc_a = "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10";
    const std::string dc_b = "\xa1\xa2\xa3\xa4\xb1\xb2\xc1\xc2\xd1\xd2\xe1\xe2\xe3\xe4\xe5\xe6";
    std::string blob = le32(1) + le32(0) + le32(3) + le32(0);
    blob += le32(kAttidSupplementalCredentials) + le32(1) + le64(100) + dc_a + le64(10) + le64(3990);
    blob += le32(kAttidUnicodePwd) + le32(2) + le64(200) + dc_b + le64(77) + le64(4013);
    blob += le32(kAttidPwdLastSet) + le32(3) + le64(300) + dc_a + le64(12) + le64(4015);
    auto m = parse_repl_metadata(blob);
    ASSERT_TRUE(m);
    EXPECT_EQ((*m)[0].originating_invocation_id, dc_a);
    EXPECT_EQ((*m)[1].originating_invocation_id, dc_b);
    auto pw = password_meta(*m);
    ASSERT_TRUE(pw);
    EXPECT_EQ(pw->originating_invocation_id, dc_b);
    EXPECT_EQ(format_guid(pw->originating_invocation_id), "{a4a3a2a1-b2b1-c2c1-d1d2-e1e2e3e4e5e6}");
}

TEST(ReplMetadata, DirSyncCookieHighWaterMark) {
    // As Samba 4.17 sends it: "MSDS", version 3, time, reserved, UTD size,
    // then tmp_highest_usn, reserved_usn, highest_usn, invocationId, UTD.
    std::string cookie = "MSDS" + le32(3) + le64(0x01DD802C69A01C80ull) + le64(0) + le32(40) + le64(4012) + le64(0) +
                         le64(4013) + std::string(16, '\x22') + std::string(40, '\0');
    EXPECT_EQ(dirsync_cookie_usn(cookie), std::optional<std::uint64_t>(4013));
    EXPECT_FALSE(dirsync_cookie_usn(""));
    EXPECT_FALSE(dirsync_cookie_usn(cookie.substr(0, 51)));                 // truncated
    EXPECT_FALSE(dirsync_cookie_usn("XXXX" + cookie.substr(4)));            // not that layout
}

TEST(ReplMetadata, DirSyncCookieSourceDcAndTime) {
    const std::string dc = "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10";
    std::string cookie = "MSDS" + le32(3) + le64(0x01DD802C69A01C80ull) + le64(0) + le32(40) + le64(4012) + le64(0) +
                         le64(4013) + dc + std::string(40, '\0');
    auto source = dirsync_cookie_source(cookie);
    ASSERT_TRUE(source);
    EXPECT_EQ(source->invocation_id, dc);
    EXPECT_EQ(source->created, 0x01DD802C69A01C80ll);
    EXPECT_FALSE(dirsync_cookie_source(cookie.substr(0, 67)));             // truncated in the invocationId
    EXPECT_FALSE(dirsync_cookie_source("XXXX" + cookie.substr(4)));        // not that layout
}

}  // namespace
}  // namespace pwsync::directory

namespace pwsync::directory {
namespace {

TEST(Ssha, SaltedSha1InBase64) {
    const Secret a = ssha_hash(Secret("Pw-1"));
    const Secret b = ssha_hash(Secret("Pw-1"));
    ASSERT_TRUE(a.view().starts_with("{SSHA}"));
    EXPECT_EQ(a.size(), 6u + 40u);  // base64 of 20 digest + 8 salt bytes
    EXPECT_NE(a.view(), b.view()) << "no salt";
    EXPECT_EQ(a.view().find("Pw-1"), std::string::npos);
}

}  // namespace
}  // namespace pwsync::directory
