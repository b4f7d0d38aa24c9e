// userIdentity forms of Password Modify: plain names, DNs, RFC 4513 authzIds,
// and the malformed ones (no servers).
#include <gtest/gtest.h>

#include "user_identity.h"

namespace pwsync::gateway {
namespace {

constexpr const char* kTemplate = "uid=%s,ou=people,dc=ext,dc=example";

store::Adapter ldap_adapter(std::map<std::string, std::string> properties) {
    store::Adapter a;
    a.name = "ext-ldap";
    a.type = "ldap";
    a.properties = std::move(properties);
    return a;
}

// "id" on success, "no mapping: message" (or "refused: ...") on refusal.
std::string outcome(const IdentityResult<std::string>& r) {
    if (r) return *r;
    return std::string(r.error().outcome == ChangeOutcome::no_mapping ? "no mapping" : "refused") + ": " + r.error().message;
}

TEST(Dn, ParsesTypesValuesAndEscapes) {
    auto dn = parse_dn("UID=o\\2Cbrien + CN=Carol , 2.5.4.11=People,domainComponent=ext");
    ASSERT_TRUE(dn) << dn.error().message;
    ASSERT_EQ(dn->rdns.size(), 3u);
    ASSERT_EQ(dn->rdns[0].size(), 2u);  // sorted by type
    EXPECT_EQ(dn->rdns[0][0].type, "cn");
    EXPECT_EQ(dn->rdns[0][0].value, "Carol");
    EXPECT_EQ(dn->rdns[0][1].type, "uid");
    EXPECT_EQ(dn->rdns[0][1].value, "o,brien");
    EXPECT_EQ(dn->rdns[1][0].type, "ou");
    EXPECT_EQ(dn->rdns[2][0].type, "dc");
    EXPECT_EQ(parse_dn("uid=o\\,brien,dc=ext")->rdns[0][0].value, "o,brien");
}

TEST(Dn, RefusesMalformed) {
    for (const char* bad : {"", "uid", "uid=carol01,ou=people,dc=ext,dc=", "=carol01", "uid=carol01,,dc=ext",
                            "uid=#04024869,dc=ext", "uid=a\\zz,dc=ext"})
        EXPECT_FALSE(parse_dn(bad)) << bad;
    EXPECT_FALSE(parse_dn(std::string_view("uid=a\0b", 7)));
}

TEST(Dn, ComparesAsDirectoriesDo) {
    EXPECT_TRUE(same_value("uid", "Carol01", "carol01"));
    EXPECT_TRUE(same_value("cn", "Carol  Smith ", "carol smith"));
    EXPECT_FALSE(same_value("userpassword", "Secret", "secret"));  // not a case-ignoring attribute
    const auto a = *parse_dn("uid=carol01,ou=people,dc=ext,dc=example");
    const auto b = *parse_dn("UID=CAROL01,OU=People,  DC=Ext,DC=Example");
    const auto base = *parse_dn("ou=PEOPLE,dc=ext,dc=example");
    EXPECT_TRUE(same_rdn(a.rdns[0], b.rdns[0]));
    EXPECT_TRUE(is_under(a, base));
    EXPECT_TRUE(is_under(b, base));
    EXPECT_TRUE(is_under(base, base));
    EXPECT_FALSE(is_under(base, a));
    EXPECT_FALSE(is_under(*parse_dn("uid=carol01,ou=people,dc=other,dc=example"), base));
}

TEST(UserIdentity, AuthzIdsAndPlainNames) {
    auto name = parse_user_identity("carol01");
    ASSERT_TRUE(name);
    EXPECT_FALSE(name->is_dn);
    EXPECT_EQ(name->value, "carol01");
    EXPECT_EQ(parse_user_identity("u:carol01")->value, "carol01");
    EXPECT_EQ(parse_user_identity("U:carol01")->value, "carol01");
    // u: is a name even when it has '='.
    EXPECT_FALSE(parse_user_identity("u:a=b")->is_dn);
    EXPECT_EQ(parse_user_identity("u:a=b")->value, "a=b");
    EXPECT_FALSE(parse_user_identity("TEST\\bob")->is_dn);
    auto dn = parse_user_identity("dn:uid=carol01,dc=ext");
    ASSERT_TRUE(dn);
    EXPECT_TRUE(dn->is_dn);
    EXPECT_EQ(dn->value, "uid=carol01,dc=ext");
    EXPECT_TRUE(parse_user_identity("uid=carol01,dc=ext")->is_dn);
}

TEST(UserIdentity, MalformedIsAProtocolError) {
    for (const char* bad : {"u:", "dn:", "dn:carol01", "dn:uid=carol01,dc=", "uid=carol01,ou=people,dc=ext,dc="}) {
        auto r = parse_user_identity(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error().outcome, ChangeOutcome::malformed) << bad;
        EXPECT_NE(r.error().message.find(bad), std::string::npos) << r.error().message;
    }
    EXPECT_NE(parse_user_identity("uid=x,dc=").error().message.find("not a valid DN"), std::string::npos);
    EXPECT_NE(parse_user_identity("uid=x,dc=").error().message.find("u:NAME"), std::string::npos);
    EXPECT_EQ(parse_user_identity(std::string_view("u:a\0b", 5)).error().outcome, ChangeOutcome::malformed);
}

TEST(ExternalUserId, DnTemplateForms) {
    const auto a = ldap_adapter({{"dn-template", kTemplate}});
    for (const char* id : {"carol01", "u:carol01", "uid=carol01,ou=people,dc=ext,dc=example",
                           "dn:uid=carol01,ou=people,dc=ext,dc=example", "UID=carol01 , OU=People,DC=Ext, DC=EXAMPLE",
                           "0.9.2342.19200300.100.1.1=carol01,ou=people,dc=ext,dc=example",
                           "uid=carol01,ou=people,dc=ext,dc=example"})
        EXPECT_EQ(outcome(external_user_id(id, a)), "carol01") << id;
    // The value as sent (the store's lookup ignores case), unescaped.
    EXPECT_EQ(outcome(external_user_id("uid=CAROL01,ou=people,dc=ext,dc=example", a)), "CAROL01");
    EXPECT_EQ(outcome(external_user_id("uid=o\\2Cbrien,ou=people,dc=ext,dc=example", a)), "o,brien");
    EXPECT_EQ(outcome(external_user_id("uid=o\\,brien,ou=people,dc=ext,dc=example", a)), "o,brien");
}

TEST(ExternalUserId, DnTemplateRefusals) {
    const auto a = ldap_adapter({{"dn-template", kTemplate}});
    EXPECT_EQ(outcome(external_user_id("uid=carol01,ou=people,dc=other,dc=example", a)),
              "no mapping: DN 'uid=carol01,ou=people,dc=other,dc=example' is not under the adapter's base 'ou=people,dc=ext,dc=example'");
    EXPECT_EQ(outcome(external_user_id("dn:uid=carol01,dc=example", a)),
              "no mapping: DN 'uid=carol01,dc=example' is not under the adapter's base 'ou=people,dc=ext,dc=example'");
    const std::string misfit = "does not fit the adapter's dn-template '" + std::string(kTemplate) + "'";
    for (const char* dn : {"cn=carol01,ou=people,dc=ext,dc=example", "uid=carol01,ou=sub,ou=people,dc=ext,dc=example",
                           "ou=people,dc=ext,dc=example", "uid=carol01+cn=x,ou=people,dc=ext,dc=example"}) {
        auto r = external_user_id(dn, a);
        ASSERT_FALSE(r) << dn;
        EXPECT_EQ(r.error().outcome, ChangeOutcome::no_mapping) << dn;
        EXPECT_NE(r.error().message.find(misfit), std::string::npos) << r.error().message;
    }
    EXPECT_EQ(external_user_id("uid=carol01,ou=people,dc=ext,dc=", a).error().outcome, ChangeOutcome::malformed);
    // A template a DN cannot be matched against.
    for (const char* templ : {"uid=%s,ou=%s,dc=ext", "ou=people,dc=ext", "not a dn %s"}) {
        auto r = external_user_id("uid=carol01,ou=people,dc=ext", ldap_adapter({{"dn-template", templ}}));
        ASSERT_FALSE(r) << templ;
        EXPECT_EQ(r.error().outcome, ChangeOutcome::refused) << templ;
        EXPECT_NE(r.error().message.find("send the user id"), std::string::npos);
    }
}

TEST(ExternalUserId, DnTemplateWithFixedTextAroundTheId) {
    const auto a = ldap_adapter({{"dn-template", "cn=%s-adm,ou=Admins,dc=ext"}});
    EXPECT_EQ(outcome(external_user_id("CN=carol-ADM,ou=admins,dc=ext", a)), "carol");
    EXPECT_FALSE(external_user_id("cn=carol,ou=admins,dc=ext", a));
    EXPECT_FALSE(external_user_id("cn=-adm,ou=admins,dc=ext", a));  // no id at all
}

TEST(ExternalUserId, BaseAndFilter) {
    const auto a = ldap_adapter({{"base", "ou=people,dc=ext,dc=example"}, {"filter", "(&(objectClass=posixAccount)(uid=%s))"}});
    EXPECT_EQ(outcome(external_user_id("carol01", a)), "carol01");
    EXPECT_EQ(outcome(external_user_id("uid=carol01,ou=people,dc=ext,dc=example", a)), "carol01");
    EXPECT_EQ(outcome(external_user_id("dn:UID=carol01,ou=staff,ou=People,dc=ext,dc=example", a)), "carol01");  // subtree
    EXPECT_EQ(outcome(external_user_id("uid=carol01,ou=people,dc=other", a)),
              "no mapping: DN 'uid=carol01,ou=people,dc=other' is not under the adapter's base 'ou=people,dc=ext,dc=example'");
    auto by_cn = external_user_id("cn=Carol,ou=people,dc=ext,dc=example", a);
    ASSERT_FALSE(by_cn);
    EXPECT_EQ(by_cn.error().outcome, ChangeOutcome::no_mapping);
    EXPECT_NE(by_cn.error().message.find("does not name its entry by 'uid'"), std::string::npos) << by_cn.error().message;
    EXPECT_EQ(external_user_id("ou=people,dc=ext,dc=example", a).error().outcome, ChangeOutcome::no_mapping);
    // A filter whose id is not a plain equality of one attribute.
    for (const char* f : {"(|(uid=%s)(mail=%s))", "(cn~=%s)", "(cn=*%s*)"}) {
        auto r = external_user_id("uid=carol01,ou=people,dc=ext,dc=example",
                                  ldap_adapter({{"base", "ou=people,dc=ext,dc=example"}, {"filter", f}}));
        ASSERT_FALSE(r) << f;
        EXPECT_EQ(r.error().outcome, ChangeOutcome::refused) << f;
    }
}

TEST(ExternalUserId, AdaptersWithoutDns) {
    for (const char* type : {"exec", "http", "null"}) {
        store::Adapter a;
        a.name = "mainframe";
        a.type = type;
        EXPECT_EQ(outcome(external_user_id("CAROL01", a)), "CAROL01");
        EXPECT_EQ(outcome(external_user_id("u:CAROL01", a)), "CAROL01");
        EXPECT_EQ(outcome(external_user_id("u:a=b", a)), "a=b");
        auto r = external_user_id("uid=carol01,ou=people,dc=ext,dc=example", a);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().outcome, ChangeOutcome::refused);
        EXPECT_NE(r.error().message.find("has no DNs for its users"), std::string::npos) << r.error().message;
    }
}

TEST(WindowsAccount, NamesPassThroughAndDnsAreResolved) {
    std::vector<std::string> asked;
    const AccountOfDn resolve = [&](std::string_view dn) -> Result<std::string> {
        asked.emplace_back(dn);
        std::string squeezed = ascii_lower(dn);  // AD compares DNs its own way; this fake drops spaces
        std::erase(squeezed, ' ');
        if (squeezed == "cn=bob,cn=users,dc=test,dc=example") return std::string("bob");
        if (dn.starts_with("CN=down")) return fail(Errc::unavailable, "Can't contact LDAP server");
        return fail(Errc::not_found, "no such object");
    };
    for (const char* name : {"bob", "TEST\\bob", "bob@test.example", "{6f8b2a41-1c2d-4e5f-8a9b-0c1d2e3f4a5b}"}) {
        EXPECT_EQ(outcome(windows_account(name, resolve)), name);
        EXPECT_EQ(outcome(windows_account("u:" + std::string(name), resolve)), name);
    }
    EXPECT_TRUE(asked.empty());  // names never cost a directory search
    EXPECT_EQ(outcome(windows_account("CN=bob,CN=Users,DC=test,DC=example", resolve)), "bob");
    EXPECT_EQ(outcome(windows_account("dn:cn=BOB, cn=users,dc=test,dc=example", resolve)), "bob");
    EXPECT_EQ(asked.size(), 2u);
    EXPECT_EQ(outcome(windows_account("CN=nobody,CN=Users,DC=test,DC=example", resolve)),
              "no mapping: the DN 'CN=nobody,CN=Users,DC=test,DC=example' names no Windows account: no such object");
    EXPECT_EQ(windows_account("CN=down,DC=test", resolve).error().outcome, ChangeOutcome::unavailable);
    EXPECT_EQ(windows_account("CN=bob,CN=Users,DC=", resolve).error().outcome, ChangeOutcome::malformed);
    EXPECT_EQ(windows_account("dn:", resolve).error().outcome, ChangeOutcome::malformed);
    EXPECT_EQ(asked.size(), 4u);  // malformed ones never reach the directory
    // Without a directory, a DN is looked up as sent.
    EXPECT_EQ(outcome(windows_account("dn:CN=bob,DC=test", nullptr)), "CN=bob,DC=test");
}

}  // namespace
// One spelling per DN: what the store keeps for an account (AD's DN,
// lower-cased) is found whatever case and spacing a sender used.
TEST(UserIdentity, CanonicalDnIsTheLowerCasedDirectorySpelling) {
    auto a = parse_dn("cn=alice, cn=users ,  DC=Test,dc=EXAMPLE");
    ASSERT_TRUE(a);
    EXPECT_EQ(canonical_dn(*a), "cn=alice,cn=users,dc=test,dc=example");
    auto b = parse_dn("CN=Smith\\, John,OU=People,DC=test,DC=example");
    ASSERT_TRUE(b);
    EXPECT_EQ(canonical_dn(*b), "cn=smith\\, john,ou=people,dc=test,dc=example");
    auto c = parse_dn("2.5.4.3=Bob,DC=test");
    ASSERT_TRUE(c);
    EXPECT_EQ(canonical_dn(*c), "cn=bob,dc=test");
}

}  // namespace pwsync::gateway
