// Shared by the directory integration tests: the test environment's
// settings, connections to the real Samba DC and slapd, and throw-away
// accounts (each test makes its own, so tests do not depend on each other).
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "helpers.h"
#include "pwsync/directory.h"

namespace pwsync::test {

namespace dir = pwsync::directory;

// An account made for one test on the DC or in slapd.
struct TestUser {
    std::string sam;
    std::string dn;
    std::string upn;
    std::string guid;
    Secret password;
};

class DirectoryTest : public ::testing::Test {
protected:
    void SetUp() override;
    void TearDown() override;

    const std::string& env(const std::string& name);

    // The DC as the domain admin / as the service account (simple or GSSAPI).
    dir::ConnectOptions admin_options();
    dir::ConnectOptions svc_simple_options();
    dir::ConnectOptions svc_gssapi_options();
    dir::ConnectOptions user_options(const TestUser& u);  // simple bind by UPN
    dir::Connection& admin();                             // opened once per test
    dir::Domain domain();

    // An enabled DC user with a password (deleted again after the test).
    TestUser make_user(std::string_view tag);
    // A unique short name: tag + pid + counter (sAMAccountName max 20).
    std::string unique_name(std::string_view tag);
    // True when the account can bind with the password (over ldaps).
    bool can_bind(const std::string& name, std::string_view password);

    // slapd: options as rootdn, and a fresh inetOrgPerson.
    dir::ConnectOptions ldap_root_options();
    TestUser make_ldap_user(std::string_view tag);
    bool can_bind_ldap(const std::string& dn, std::string_view password);

    // Opens or fails the test.
    dir::Connection open(dir::ConnectOptions o);

    std::map<std::string, std::string> env_;
    std::optional<dir::Connection> admin_;
    std::vector<std::string> cleanup_dc_;
    std::vector<std::string> cleanup_ldap_;
};

// Asserts that an error message holds none of the given passwords (also not
// as UTF-16LE).
void expect_no_leak(const std::string& text, std::initializer_list<std::string_view> passwords);

}  // namespace pwsync::test
