// Account resolution against the real Samba DC: every name form, disabled
// accounts, renames, paged searches.
#include <set>

#include "dc_fixture.h"

namespace pwsync::test {
namespace {

class Resolve : public DirectoryTest {};

TEST_F(Resolve, EveryNameFormGivesTheSameAccount) {
    auto u = make_user("names");
    auto c = open(svc_simple_options());
    const auto d = domain();
    const std::string names[] = {u.sam,
                                 env("PWSYNC_TEST_DC_DOMAIN") + "\\" + u.sam,
                                 ascii_lower(env("PWSYNC_TEST_DC_DOMAIN")) + "\\" + u.sam,
                                 env("PWSYNC_TEST_DC_DNS_DOMAIN") + "\\" + u.sam,
                                 u.upn,
                                 u.dn,
                                 ascii_lower(u.dn),
                                 u.guid,
                                 u.guid.substr(1, 36)};
    for (const auto& n : names) {
        auto a = dir::resolve_account(c, d, n);
        ASSERT_TRUE(a) << n << ": " << a.error().message;
        EXPECT_EQ(a->guid, u.guid) << n;
        EXPECT_EQ(ascii_lower(a->dn), ascii_lower(u.dn)) << n;
        EXPECT_EQ(a->sam, u.sam) << n;
        EXPECT_EQ(a->upn, u.upn) << n;
        EXPECT_TRUE(a->enabled) << n;
        EXPECT_GT(a->pwd_last_set, 0) << n;
    }
    // The GUID's text form is canonical: {8-4-4-4-12} lower-case hex.
    ASSERT_EQ(u.guid.size(), 38u);
    EXPECT_EQ(u.guid.front(), '{');
    EXPECT_EQ(u.guid.find_first_of("ABCDEF"), std::string::npos);
}

TEST_F(Resolve, GuidMatchesTheDirectorysOwnByteOrder) {
    // <GUID=...> in a DN is AD's own parser of the string form: if our
    // byte order were wrong, this base search would find nothing.
    auto u = make_user("guid");
    auto c = open(svc_simple_options());
    dir::Search s;
    s.base = "<GUID=" + u.guid.substr(1, 36) + ">";
    s.scope = dir::Scope::base;
    s.attributes = {"sAMAccountName"};
    auto r = c.search(s);
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->size(), 1u);
    EXPECT_EQ(r->front().first("sAMAccountName"), u.sam);
}

// What pwsync sends, <GUID=...> as a search base and as the DN of a
// password reset, is AD's own syntax: ldap-utils take the same DN.
TEST_F(Resolve, LdapUtilsTakeTheGuidDnForASearchAndAReset) {
    auto u = make_user("guidutils");
    const auto dn = dir::guid_dn(u.guid);
    ASSERT_TRUE(dn);
    const std::vector<std::string> tls = {"LDAPTLS_CACERT=" + env("PWSYNC_TEST_CA"), "LDAPTLS_REQCERT=demand"};
    auto found = run({"/usr/bin/ldapsearch", "-x", "-LLL", "-o", "nettimeout=10", "-H", env("PWSYNC_TEST_DC_URI"), "-D",
                      env("PWSYNC_TEST_SVC_DN"), "-y", env("PWSYNC_TEST_SVC_PASSWORD_FILE"), "-b", *dn, "-s", "base",
                      "(objectClass=user)", "sAMAccountName"},
                     {}, tls);
    ASSERT_EQ(found.exit_code, 0) << found.err;
    EXPECT_NE(found.out.find("sAMAccountName: " + u.sam), std::string::npos) << found.out;
    // unicodePwd: the quoted password in UTF-16LE, base64 in the LDIF (on
    // stdin, never argv).
    const std::string password = "Gu1d-Reset-" + unique_name("p");
    auto utf16 = dir::encode_unicode_pwd(password);
    ASSERT_TRUE(utf16) << utf16.error().message;
    auto b64 = run({"/usr/bin/base64", "-w0"}, std::string(utf16->view()));
    ASSERT_EQ(b64.exit_code, 0) << b64.err;
    auto reset = run({"/usr/bin/ldapmodify", "-x", "-o", "nettimeout=10", "-H", env("PWSYNC_TEST_DC_URI"), "-D",
                      env("PWSYNC_TEST_DC_ADMIN_DN"), "-y", env("PWSYNC_TEST_DC_ADMIN_PASSWORD_FILE")},
                     "dn: " + *dn + "\nchangetype: modify\nreplace: unicodePwd\nunicodePwd:: " + b64.out + "\n-\n", tls);
    ASSERT_EQ(reset.exit_code, 0) << reset.err;
    EXPECT_EQ((found.out + found.err + reset.out + reset.err).find(password), std::string::npos) << "the password was echoed";
    // The account's own bind takes the new password.
    auto o = svc_simple_options();
    o.credentials.name = u.dn;
    o.credentials.password = Secret(password);
    auto bound = dir::Connection::open(std::move(o));
    EXPECT_TRUE(bound) << (bound ? std::string() : bound.error().message);
    // A GUID no object has: the search says so, with LDAP's own code (32).
    auto none = run({"/usr/bin/ldapsearch", "-x", "-LLL", "-o", "nettimeout=10", "-H", env("PWSYNC_TEST_DC_URI"), "-D",
                     env("PWSYNC_TEST_SVC_DN"), "-y", env("PWSYNC_TEST_SVC_PASSWORD_FILE"), "-b",
                     *dir::guid_dn("{00000000-0000-0000-0000-000000000001}"), "-s", "base", "(objectClass=*)"},
                    {}, tls);
    EXPECT_EQ(none.exit_code, 32) << none.out << none.err;
}

// The engine's question for every post-commit capture: the account's state
// and whether it is privileged, in one base search of <GUID=...>.
TEST_F(Resolve, ReadByGuidGivesStateAndPrivilegeInOneSearch) {
    auto u = make_user("byguid");
    auto c = open(svc_simple_options());
    auto a = dir::read_account_by_guid(c, u.guid);
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ(a->first.guid, u.guid);
    EXPECT_EQ(a->first.sam, u.sam);
    EXPECT_EQ(ascii_lower(a->first.dn), ascii_lower(u.dn));
    EXPECT_TRUE(a->first.enabled);
    EXPECT_GT(a->first.pwd_last_set, 0);
    EXPECT_EQ(a->second, "") << "an ordinary user is not privileged";
    // The bare form names the same account; a renamed one is still found.
    ASSERT_TRUE(dir::read_account_by_guid(c, u.guid.substr(1, 36)));
    const std::string new_name = unique_name("byguidren");
    const std::string new_dn = "CN=" + new_name + ",CN=Users," + env("PWSYNC_TEST_DC_BASE");
    ASSERT_TRUE(admin().rename(u.dn, "CN=" + new_name));
    cleanup_dc_.push_back(new_dn);
    // Made a Domain Admin: the same read says so (tokenGroups, nested groups included).
    ASSERT_TRUE(admin().modify("CN=Domain Admins,CN=Users," + env("PWSYNC_TEST_DC_BASE"), {{dir::Mod::add, "member", {new_dn}}}));
    auto now = dir::read_account_by_guid(c, u.guid);
    ASSERT_TRUE(now) << now.error().message;
    EXPECT_EQ(ascii_lower(now->first.dn), ascii_lower(new_dn));
    EXPECT_NE(now->second.find("Domain Admins"), std::string::npos) << now->second;
    // No such account, and a malformed GUID, are errors that say so.
    auto none = dir::read_account_by_guid(c, "{00000000-0000-0000-0000-000000000001}");
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().reason, dir::Reason::no_such_object) << none.error().message;
    auto bad = dir::read_account_by_guid(c, "not-a-guid");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().reason, dir::Reason::invalid_request);
}

TEST_F(Resolve, ImplicitUpnWithoutTheAttribute) {
    auto u = make_user("noupn");
    ASSERT_TRUE(admin().modify(u.dn, {{dir::Mod::remove, "userPrincipalName", {}}}));
    auto c = open(svc_simple_options());
    auto a = dir::resolve_account(c, domain(), u.sam + "@" + env("PWSYNC_TEST_DC_DNS_DOMAIN"));
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ(a->guid, u.guid);
    EXPECT_EQ(a->upn, "");
}

TEST_F(Resolve, DisabledAccount) {
    auto c = open(svc_simple_options());
    auto a = dir::resolve_account(c, domain(), env("PWSYNC_TEST_DC_DISABLED_USER"));
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_FALSE(a->enabled);
    EXPECT_EQ(a->user_account_control & 2u, 2u);
    auto u = make_user("dis");
    ASSERT_TRUE(admin().modify(u.dn, {{dir::Mod::replace, "userAccountControl", {"514"}}}));
    a = dir::resolve_account(c, domain(), u.sam);
    ASSERT_TRUE(a);
    EXPECT_FALSE(a->enabled);
}

TEST_F(Resolve, UnknownNamesArePermanentNotFound) {
    auto c = open(svc_simple_options());
    const auto d = domain();
    const std::string nobody = unique_name("nobody");
    for (const std::string& n : {nobody, env("PWSYNC_TEST_DC_DOMAIN") + "\\" + nobody, nobody + "@elsewhere.example",
                                 "CN=" + nobody + ",CN=Users," + env("PWSYNC_TEST_DC_BASE"),
                                 std::string("{00000000-0000-0000-0000-000000000001}"), "OTHERDOM\\" + env("PWSYNC_TEST_SVC_USER")}) {
        auto a = dir::resolve_account(c, d, n);
        ASSERT_FALSE(a) << n << " resolved";
        EXPECT_EQ(a.error().reason, dir::Reason::no_such_object) << n << ": " << a.error().message;
        EXPECT_EQ(a.error().code, Errc::not_found);
        EXPECT_FALSE(a.error().retryable());
    }
    // Filter metacharacters are escaped, not interpreted.
    auto star = dir::resolve_account(c, d, "a*");
    ASSERT_FALSE(star);
    EXPECT_EQ(star.error().reason, dir::Reason::invalid_request);
    auto upn_star = dir::resolve_account(c, d, "*@" + env("PWSYNC_TEST_DC_DNS_DOMAIN"));
    ASSERT_FALSE(upn_star) << "'*@domain' matched an account";
    auto paren = dir::resolve_account(c, d, "x)(sAMAccountName=" + env("PWSYNC_TEST_SVC_USER"));
    ASSERT_FALSE(paren);
}

TEST_F(Resolve, RenameKeepsTheObjectGuid) {
    auto u = make_user("ren");
    auto c = open(svc_simple_options());
    const std::string new_name = unique_name("renamed");
    const std::string new_dn = "CN=" + new_name + ",CN=Users," + env("PWSYNC_TEST_DC_BASE");
    ASSERT_TRUE(admin().rename(u.dn, "CN=" + new_name));
    cleanup_dc_.push_back(new_dn);
    ASSERT_TRUE(admin().modify(new_dn, {{dir::Mod::replace, "sAMAccountName", {new_name}},
                                        {dir::Mod::replace, "userPrincipalName", {new_name + "@" + env("PWSYNC_TEST_DC_DNS_DOMAIN")}}}));
    for (const std::string& n : {new_name, new_dn, new_name + "@" + env("PWSYNC_TEST_DC_DNS_DOMAIN"), u.guid}) {
        auto a = dir::resolve_account(c, domain(), n);
        ASSERT_TRUE(a) << n << ": " << a.error().message;
        EXPECT_EQ(a->guid, u.guid) << n;
        EXPECT_EQ(ascii_lower(a->dn), ascii_lower(new_dn));
        EXPECT_EQ(a->sam, new_name);
    }
    auto old = dir::resolve_account(c, domain(), u.sam);
    ASSERT_FALSE(old);
    EXPECT_EQ(old.error().reason, dir::Reason::no_such_object);
}

TEST_F(Resolve, PagedSearchReturnsEverything) {
    for (int i = 0; i < 5; ++i) make_user("page");
    auto c = open(svc_simple_options());
    dir::Search s;
    s.base = "CN=Users," + env("PWSYNC_TEST_DC_BASE");
    s.scope = dir::Scope::one_level;
    s.filter = "(objectClass=user)";
    s.attributes = {"objectGUID"};
    auto all = c.search(s);
    ASSERT_TRUE(all) << all.error().message;
    ASSERT_GE(all->size(), 9u);
    std::set<std::string> seen;
    std::size_t visits = 0;
    auto r = c.search_paged(s, [&](dir::Entry&& e) -> Status {
        seen.insert(e.first("objectGUID"));
        ++visits;
        return {};
    }, 2);  // pages of two: several round trips
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(visits, all->size());
    EXPECT_EQ(seen.size(), all->size());
    // A visitor's error stops the search and comes back.
    std::size_t stopped_after = 0;
    auto stop = c.search_paged(s, [&](dir::Entry&&) -> Status {
        if (++stopped_after == 3) return fail(Errc::conflict, "enough");
        return {};
    }, 2);
    ASSERT_FALSE(stop);
    EXPECT_EQ(stop.error().code, Errc::conflict);
    EXPECT_EQ(stopped_after, 3u);
}

}  // namespace
}  // namespace pwsync::test
