// Account names, filter escaping and objectGUID strings. No servers.
#include <gtest/gtest.h>

#include "pwsync/directory.h"

namespace pwsync::directory {
namespace {

TEST(Guid, FormatsInAdByteOrder) {
    std::string b;
    for (int i = 1; i <= 16; ++i) b.push_back(static_cast<char>(i));
    EXPECT_EQ(format_guid(b), "{04030201-0605-0807-090a-0b0c0d0e0f10}");
    EXPECT_EQ(format_guid("short"), "");
}

TEST(Guid, ParsesWithAndWithoutBracesAnyCase) {
    std::string b;
    for (int i = 1; i <= 16; ++i) b.push_back(static_cast<char>(i * 15));
    const std::string text = format_guid(b);
    EXPECT_EQ(parse_guid(text), b);
    EXPECT_EQ(parse_guid(text.substr(1, 36)), b);
    std::string upper = text;
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(parse_guid(upper), b);
    EXPECT_FALSE(parse_guid("{04030201-0605-0807-090a-0b0c0d0e0f1}"));
    EXPECT_FALSE(parse_guid("04030201-0605-0807-090a-0b0c0d0e0f1g"));
    EXPECT_FALSE(parse_guid("0403020106050807090a0b0c0d0e0f10"));
    EXPECT_FALSE(parse_guid("{04030201-0605-0807-090a-0b0c0d0e0f10"));
}

TEST(Guid, ItsDnIsTheGuidInTextOrderWithoutBraces) {
    EXPECT_EQ(guid_dn("{0403020A-0605-0807-090a-0b0c0d0e0f10}"), "<GUID=0403020a-0605-0807-090a-0b0c0d0e0f10>");
    EXPECT_EQ(guid_dn("0403020a-0605-0807-090a-0b0c0d0e0f10"), "<GUID=0403020a-0605-0807-090a-0b0c0d0e0f10>");
    EXPECT_FALSE(guid_dn("CN=alice,CN=Users,DC=example,DC=test"));
    EXPECT_FALSE(guid_dn("<GUID=0403020a-0605-0807-090a-0b0c0d0e0f10>"));  // already a DN: not a GUID
    EXPECT_FALSE(guid_dn(""));
}

TEST(Filter, EscapesRfc4515Specials) {
    EXPECT_EQ(escape_filter_value(std::string_view("a*b(c)d\\e\0f", 11)), "a\\2ab\\28c\\29d\\5ce\\00f");
    EXPECT_EQ(escape_filter_value("J\xC3\xBCrgen"), "J\xC3\xBCrgen");  // UTF-8 passes as is
    EXPECT_EQ(escape_filter_value("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
    EXPECT_EQ(escape_filter_bytes(std::string("\x00\xff\x10", 3)), "\\00\\ff\\10");
}

// The one test of "names no domain" the engine, the daemon and the CLI share:
// a bare GUID (no braces) says which account it is, as a UPN, DN or DOMAIN\sam do.
TEST(AccountNames, OnlyABareSamIsBare) {
    EXPECT_TRUE(is_bare_sam("alice"));
    EXPECT_TRUE(is_bare_sam("svc-backup$"));
    for (const char* named : {"TEST\\alice", "alice@test.example", "CN=alice,CN=Users,DC=test,DC=example",
                              "{9c065ad4-36e9-42d8-86dd-050af9e59276}", "9c065ad4-36e9-42d8-86dd-050af9e59276", ""})
        EXPECT_FALSE(is_bare_sam(named)) << named;
}

TEST(AccountNames, EveryForm) {
    auto sam = parse_account_name("alice");
    ASSERT_TRUE(sam);
    EXPECT_EQ(sam->kind, NameKind::sam);
    EXPECT_EQ(sam->value, "alice");

    auto dom = parse_account_name("TEST\\alice");
    ASSERT_TRUE(dom);
    EXPECT_EQ(dom->kind, NameKind::domain_sam);
    EXPECT_EQ(dom->domain, "TEST");
    EXPECT_EQ(dom->value, "alice");

    auto upn = parse_account_name("alice@test.example");
    ASSERT_TRUE(upn);
    EXPECT_EQ(upn->kind, NameKind::upn);
    EXPECT_EQ(upn->domain, "test.example");
    EXPECT_EQ(upn->value, "alice@test.example");

    auto dn = parse_account_name("CN=Smith\\, John,CN=Users,DC=test,DC=example");
    ASSERT_TRUE(dn);
    EXPECT_EQ(dn->kind, NameKind::dn);
    EXPECT_EQ(dn->value, "CN=Smith\\, John,CN=Users,DC=test,DC=example");

    auto guid = parse_account_name("{04030201-0605-0807-090a-0b0c0d0e0f10}");
    ASSERT_TRUE(guid);
    EXPECT_EQ(guid->kind, NameKind::guid);
    EXPECT_EQ(guid->value.size(), 16u);
    EXPECT_EQ(guid->value[0], '\x01');
    auto bare = parse_account_name("04030201-0605-0807-090a-0b0c0d0e0f10");
    ASSERT_TRUE(bare);
    EXPECT_EQ(bare->kind, NameKind::guid);
    EXPECT_EQ(bare->value, guid->value);
}

TEST(AccountNames, RejectsMalformed) {
    for (std::string_view bad : {std::string_view(""), std::string_view("\\alice"), std::string_view("TEST\\"),
                                 std::string_view("A\\B\\c"), std::string_view("x@"), std::string_view("@realm"),
                                 std::string_view("CN="), std::string_view("{not-a-guid}"), std::string_view("a*b"), std::string_view("a<b"),
                                 std::string_view("CN=,DC=x"), std::string_view("..."), std::string_view("al\0ce", 5)}) {
        auto r = parse_account_name(bad);
        EXPECT_FALSE(r) << "accepted '" << bad << "'";
        if (!r) {
            EXPECT_EQ(r.error().code, Errc::invalid_argument);
        }
    }
}

}  // namespace
}  // namespace pwsync::directory
