// The external ldap adapter's operations against the real slapd: RFC 3062
// Password Modify and a replace of userPassword.
#include <ldap.h>

#include "dc_fixture.h"

namespace pwsync::test {
namespace {

class External : public DirectoryTest {};

TEST_F(External, PasswordModifyAsRootdn) {
    auto u = make_ldap_user("pmroot");
    auto root = open(ldap_root_options());
    Secret pw("Root-Set-Ext-Pw.1");
    auto r = dir::password_modify(root, u.dn, nullptr, &pw);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_FALSE(*r) << "no password was asked for, none should come back";
    EXPECT_TRUE(can_bind_ldap(u.dn, "Root-Set-Ext-Pw.1"));
    EXPECT_FALSE(can_bind_ldap(u.dn, u.password.view()));
}

TEST_F(External, PasswordModifyAsTheUserWithOldPasswordNonAscii) {
    auto u = make_ldap_user("pmuser");
    dir::ConnectOptions o = ldap_root_options();
    o.credentials.name = u.dn;
    o.credentials.password = u.password.clone();
    auto c = open(std::move(o));
    Secret pw("N\xC3\xBC-Ext-\xF0\x9F\x94\x91-Pw.2");
    // No userIdentity: the bound user's own entry.
    auto r = dir::password_modify(c, "", &u.password, &pw);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(can_bind_ldap(u.dn, pw.view()));
}

TEST_F(External, WrongOldPasswordIsPermanentAndDoesNotLeak) {
    auto u = make_ldap_user("pmwrong");
    dir::ConnectOptions o = ldap_root_options();
    o.credentials.name = u.dn;
    o.credentials.password = u.password.clone();
    auto c = open(std::move(o));
    Secret wrong("Wrong-Old-Ext.1"), pw("New-Ext-Pw.3");
    auto r = dir::password_modify(c, u.dn, &wrong, &pw);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().ldap_code, LDAP_UNWILLING_TO_PERFORM) << r.error().message;
    EXPECT_NE(r.error().server_text.find("unwilling to verify old password"), std::string::npos) << r.error().server_text;
    EXPECT_EQ(r.error().verdict, dir::Verdict::permanent);
    expect_no_leak(r.error().message, {"Wrong-Old-Ext.1", "New-Ext-Pw.3", u.password.view()});
    EXPECT_TRUE(can_bind_ldap(u.dn, u.password.view()));
}

TEST_F(External, GeneratedPasswordIsReturned) {
    auto u = make_ldap_user("pmgen");
    auto root = open(ldap_root_options());
    auto r = dir::password_modify(root, u.dn, nullptr, nullptr);
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_TRUE(*r) << "slapd generates a password when none is given";
    EXPECT_GE((*r)->size(), 6u);
    EXPECT_TRUE(can_bind_ldap(u.dn, (*r)->view()));
}

TEST_F(External, ReplaceUserPassword) {
    auto u = make_ldap_user("rpl");
    auto root = open(ldap_root_options());
    dir::Search s;
    s.base = u.dn;
    s.scope = dir::Scope::base;
    s.attributes = {"userPassword"};
    // Hashed here: slapd stores what it gets on a plain modify.
    auto r = dir::replace_user_password(root, u.dn, Secret("Replaced-Ext-Pw.4"), dir::UserPasswordHash::ssha);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(can_bind_ldap(u.dn, "Replaced-Ext-Pw.4"));
    EXPECT_FALSE(can_bind_ldap(u.dn, u.password.view()));
    auto e = root.search(s);
    ASSERT_TRUE(e) << e.error().message;
    ASSERT_EQ(e->size(), 1u);
    const std::string stored = e->front().first("userPassword");
    EXPECT_TRUE(stored.starts_with("{SSHA}")) << "stored in the clear";
    EXPECT_EQ(stored.find("Replaced-Ext-Pw.4"), std::string::npos);
    // As is (for servers that hash themselves): slapd keeps it as sent.
    r = dir::replace_user_password(root, u.dn, Secret("Replaced-Ext-Pw.5"));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(can_bind_ldap(u.dn, "Replaced-Ext-Pw.5"));
    EXPECT_FALSE(can_bind_ldap(u.dn, "Replaced-Ext-Pw.4"));
}

TEST_F(External, StartTlsAndRefusalWithoutIt) {
    auto u = make_ldap_user("pmtls");
    dir::ConnectOptions o = ldap_root_options();
    o.uris = {env("PWSYNC_TEST_LDAP_STARTTLS_URI")};
    auto c = open(std::move(o));
    EXPECT_TRUE(c.tls());
    Secret pw("StartTls-Ext-Pw.5");
    ASSERT_TRUE(dir::password_modify(c, u.dn, nullptr, &pw));
    EXPECT_TRUE(can_bind_ldap(u.dn, pw.view()));

    dir::ConnectOptions plain;
    plain.uris = {env("PWSYNC_TEST_LDAP_STARTTLS_URI")};
    plain.protection = dir::Protection::none;
    auto p = open(std::move(plain));
    Secret never("Never-Plain-Pw.6");
    auto r = dir::password_modify(p, u.dn, nullptr, &never);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().reason, dir::Reason::confidentiality_required);
    auto r2 = dir::replace_user_password(p, u.dn, never);
    ASSERT_FALSE(r2);
    EXPECT_EQ(r2.error().reason, dir::Reason::confidentiality_required);
    EXPECT_TRUE(can_bind_ldap(u.dn, pw.view()));
}

}  // namespace
}  // namespace pwsync::test
