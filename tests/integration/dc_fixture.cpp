#include "dc_fixture.h"

#include <unistd.h>

#include <atomic>

namespace pwsync::test {

void DirectoryTest::SetUp() {
    env_ = testenv();
    ASSERT_FALSE(env_.empty()) << "the test environment is not running";
}

void DirectoryTest::TearDown() {
    if (!cleanup_dc_.empty()) {
        auto& a = admin();
        for (const auto& dn : cleanup_dc_) (void)a.remove(dn);
    }
    if (!cleanup_ldap_.empty()) {
        auto root = dir::Connection::open(ldap_root_options());
        if (root)
            for (const auto& dn : cleanup_ldap_) (void)root->remove(dn);
    }
}

const std::string& DirectoryTest::env(const std::string& name) {
    static const std::string empty;
    const auto it = env_.find(name);
    if (it == env_.end()) {
        ADD_FAILURE() << name << " is not in env.sh";
        return empty;
    }
    return it->second;
}

dir::ConnectOptions DirectoryTest::admin_options() {
    dir::ConnectOptions o;
    o.uris = {env("PWSYNC_TEST_DC_URI")};
    o.ca_file = env("PWSYNC_TEST_CA");
    o.credentials.method = dir::BindMethod::simple;
    o.credentials.name = env("PWSYNC_TEST_DC_ADMIN_DN");
    o.credentials.password = Secret(env("PWSYNC_TEST_DC_ADMIN_PASSWORD"));
    return o;
}

dir::ConnectOptions DirectoryTest::svc_simple_options() {
    dir::ConnectOptions o = admin_options();
    o.credentials.name = env("PWSYNC_TEST_SVC_DN");
    o.credentials.password = Secret(env("PWSYNC_TEST_SVC_PASSWORD"));
    return o;
}

dir::ConnectOptions DirectoryTest::svc_gssapi_options() {
    dir::ConnectOptions o;
    o.uris = {env("PWSYNC_TEST_DC_URI")};
    o.ca_file = env("PWSYNC_TEST_CA");
    o.credentials.method = dir::BindMethod::gssapi;
    o.credentials.name = env("PWSYNC_TEST_SVC_PRINCIPAL");
    o.credentials.keytab = env("PWSYNC_TEST_KEYTAB");
    o.credentials.krb5_config = env("PWSYNC_TEST_KRB5_CONF");
    return o;
}

dir::ConnectOptions DirectoryTest::user_options(const TestUser& u) {
    dir::ConnectOptions o = admin_options();
    o.credentials.name = u.upn;
    o.credentials.password = u.password.clone();
    return o;
}

dir::Connection DirectoryTest::open(dir::ConnectOptions o) {
    auto c = dir::Connection::open(std::move(o));
    if (!c) {
        ADD_FAILURE() << "cannot connect: " << c.error().message;
        throw std::runtime_error("no connection");
    }
    return std::move(*c);
}

dir::Connection& DirectoryTest::admin() {
    if (!admin_) admin_.emplace(open(admin_options()));
    return *admin_;
}

dir::Domain DirectoryTest::domain() {
    return dir::Domain{env("PWSYNC_TEST_DC_BASE"), env("PWSYNC_TEST_DC_DOMAIN"), env("PWSYNC_TEST_DC_DNS_DOMAIN")};
}

std::string DirectoryTest::unique_name(std::string_view tag) {
    static std::atomic<int> counter{0};
    return std::string(tag.substr(0, 8)) + std::to_string(::getpid() % 100000) + "x" + std::to_string(counter++);
}

TestUser DirectoryTest::make_user(std::string_view tag) {
    TestUser u;
    u.sam = unique_name(tag);
    u.dn = "CN=" + u.sam + ",CN=Users," + env("PWSYNC_TEST_DC_BASE");
    u.upn = u.sam + "@" + env("PWSYNC_TEST_DC_DNS_DOMAIN");
    u.password = Secret("Init-" + u.sam + "-Pw.1");
    auto& a = admin();
    auto r = a.add(u.dn, {{dir::Mod::add, "objectClass", {"user"}},
                          {dir::Mod::add, "sAMAccountName", {u.sam}},
                          {dir::Mod::add, "userPrincipalName", {u.upn}}});
    EXPECT_TRUE(r) << r.error().message;
    cleanup_dc_.push_back(u.dn);
    auto p = dir::reset_password(a, u.dn, u.password, {.policy_hints = false});
    EXPECT_TRUE(p) << p.error().message;
    auto e = a.modify(u.dn, {{dir::Mod::replace, "userAccountControl", {"512"}}});
    EXPECT_TRUE(e) << e.error().message;
    auto acc = dir::resolve_account(a, domain(), u.dn);
    EXPECT_TRUE(acc) << acc.error().message;
    if (acc) u.guid = acc->guid;
    return u;
}

bool DirectoryTest::can_bind(const std::string& name, std::string_view password) {
    dir::ConnectOptions o = admin_options();
    o.credentials.name = name;
    o.credentials.password = Secret(password);
    auto c = dir::Connection::open(std::move(o));
    if (!c) {
        EXPECT_EQ(c.error().reason, dir::Reason::invalid_credentials) << c.error().message;
    }
    return c.has_value();
}

dir::ConnectOptions DirectoryTest::ldap_root_options() {
    dir::ConnectOptions o;
    o.uris = {env("PWSYNC_TEST_LDAP_URI")};
    o.ca_file = env("PWSYNC_TEST_CA");
    o.credentials.method = dir::BindMethod::simple;
    o.credentials.name = env("PWSYNC_TEST_LDAP_ROOTDN");
    o.credentials.password = Secret(env("PWSYNC_TEST_LDAP_ROOTPW"));
    return o;
}

TestUser DirectoryTest::make_ldap_user(std::string_view tag) {
    TestUser u;
    u.sam = unique_name(tag);
    u.dn = "uid=" + u.sam + "," + env("PWSYNC_TEST_LDAP_PEOPLE");
    u.password = Secret("Init-" + u.sam + "-Ext.1");
    auto root = open(ldap_root_options());
    auto r = root.add(u.dn, {{dir::Mod::add, "objectClass", {"inetOrgPerson"}},
                             {dir::Mod::add, "uid", {u.sam}},
                             {dir::Mod::add, "cn", {u.sam}},
                             {dir::Mod::add, "sn", {u.sam}}});
    EXPECT_TRUE(r) << r.error().message;
    cleanup_ldap_.push_back(u.dn);
    auto p = dir::replace_user_password(root, u.dn, u.password);
    EXPECT_TRUE(p) << p.error().message;
    return u;
}

bool DirectoryTest::can_bind_ldap(const std::string& dn, std::string_view password) {
    dir::ConnectOptions o = ldap_root_options();
    o.credentials.name = dn;
    o.credentials.password = Secret(password);
    auto c = dir::Connection::open(std::move(o));
    if (!c) {
        EXPECT_EQ(c.error().reason, dir::Reason::invalid_credentials) << c.error().message;
    }
    return c.has_value();
}

void expect_no_leak(const std::string& text, std::initializer_list<std::string_view> passwords) {
    for (auto p : passwords) {
        EXPECT_EQ(text.find(p), std::string::npos) << "password leaked into: " << text;
        std::string utf16;
        for (char ch : p) utf16 += std::string{ch, '\0'};
        EXPECT_EQ(text.find(utf16), std::string::npos) << "password (UTF-16) leaked into: " << text;
    }
}

}  // namespace pwsync::test
