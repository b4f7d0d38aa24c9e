// The [directory] section and the bind password file. No servers, except
// `pwsync check` against a loopback port nothing listens on.
#include <gtest/gtest.h>

#include "helpers.h"
#include "pki.h"
#include "pwsync/directory.h"

namespace pwsync::directory {
namespace {

using Section = std::vector<std::pair<std::string, std::string>>;

TEST(Settings, ParsesEveryKey) {
    test::TempDir dir;
    const auto pki = test::make_test_pki(dir.path());
    auto s = parse_settings({{"uri", "ldaps://dc1.example ldap://dc2.example"},
                             {"base", "DC=example,DC=com"},
                             {"domain", "EXAMPLE"},
                             {"bind", "gssapi"},
                             {"keytab", "/k"},
                             {"principal", "svc@EXAMPLE.COM"},
                             {"krb5-config", "/etc/k5.conf"},
                             {"ca", pki.ca_cert},
                             {"insecure-skip-verify", "no"},
                             {"sasl-seal", "yes"},
                             {"timeout", "7"},
                             {"watch", "usn"},
                             {"poll-interval", "3"},
                             {"dirsync-flags", "1"}});
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(s->uris, (std::vector<std::string>{"ldaps://dc1.example", "ldap://dc2.example"}));
    EXPECT_EQ(s->bind, BindMethod::gssapi);
    EXPECT_TRUE(s->sasl_seal);
    EXPECT_FALSE(s->insecure_skip_verify);
    EXPECT_EQ(s->timeout, std::chrono::seconds(7));
    EXPECT_EQ(s->watch, WatchMode::usn);
    EXPECT_EQ(s->poll_interval, std::chrono::seconds(3));
    EXPECT_EQ(s->dirsync_flags, 1u);
    auto o = connect_options(*s);
    ASSERT_TRUE(o) << o.error().message;
    EXPECT_EQ(o->protection, Protection::sasl_seal);
    EXPECT_EQ(o->credentials.keytab, "/k");
    EXPECT_EQ(o->op_timeout, std::chrono::seconds(7));
    EXPECT_EQ(domain_of(*s).netbios, "EXAMPLE");
}

// Found by the bad-configuration test: a CA file with no certificate passed
// pwsyncd --check-config, and every connection failed later.
TEST(Settings, RefusesACaFileWithoutCertificates) {
    test::TempDir dir;
    const std::string garbage = dir.path() + "/garbage.pem";
    test::write_file(garbage, "not a certificate\n");
    for (const std::string& ca : {garbage, dir.path() + "/missing.pem"}) {
        auto s = parse_settings({{"uri", "ldaps://dc"}, {"bind-dn", "CN=x"}, {"bind-password-file", dir / "p"}, {"ca", ca}});
        ASSERT_TRUE(s) << s.error().message;
        auto o = connect_options(*s);
        ASSERT_FALSE(o);
        EXPECT_NE(o.error().message.find(ca), std::string::npos) << o.error().message;
    }
}

TEST(Settings, RejectsMistakes) {
    const Section base = {{"uri", "ldaps://dc"}, {"bind-dn", "CN=x"}, {"bind-password-file", "/p"}};
    ASSERT_TRUE(parse_settings(base));
    const auto with = [&](std::string k, std::string v) {
        Section s = base;
        s.emplace_back(std::move(k), std::move(v));
        return parse_settings(s);
    };
    EXPECT_FALSE(with("bind-dnn", "typo"));
    EXPECT_FALSE(with("bind", "kerberos"));
    EXPECT_FALSE(with("insecure-skip-verify", "maybe"));
    EXPECT_FALSE(with("timeout", "0"));
    EXPECT_FALSE(with("watch", "poll"));
    EXPECT_FALSE(with("sasl-seal", "yes"));  // needs gssapi
    EXPECT_FALSE(parse_settings({{"uri", "http://dc"}, {"bind-dn", "x"}, {"bind-password-file", "/p"}}));
    EXPECT_FALSE(parse_settings({{"uri", "ldaps://dc"}}));                // simple without a DN
    EXPECT_FALSE(parse_settings({{"uri", "ldaps://dc"}, {"bind", "gssapi"}}));  // no keytab
    EXPECT_FALSE(parse_settings({{"bind-dn", "x"}, {"bind-password-file", "/p"}}));  // no uri
}

TEST(Settings, PasswordFileMustBePrivate) {
    test::TempDir d;
    test::write_file(d / "pw", "Secret-Pw.1\n", 0600);
    auto s = read_secret_file(d / "pw");
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(s->view(), "Secret-Pw.1");
    for (unsigned mode : {0640u, 0604u, 0660u}) {
        test::write_file(d / "pw", "Secret-Pw.1\n", mode);
        auto r = read_secret_file(d / "pw");
        ASSERT_FALSE(r) << std::oct << mode;
        EXPECT_EQ(r.error().code, Errc::permission);
        EXPECT_EQ(r.error().message.find("Secret-Pw"), std::string::npos);
    }
    test::write_file(d / "empty", "\n", 0600);
    EXPECT_FALSE(read_secret_file(d / "empty"));
    EXPECT_FALSE(read_secret_file(d / "missing"));
    EXPECT_FALSE(read_secret_file(d.path()));  // a folder
}

TEST(CheckCommand, ReportsEveryCheckWhenTheDirectoryIsUnreachable) {
    test::TempDir d;
    test::write_file(d / "pw", "Secret-Pw.1", 0600);
    test::write_file(d / "conf", "[directory]\nuri = ldaps://127.0.0.1:1\nbind-dn = CN=svc\nbind-password-file = " +
                                     (d / "pw") + "\n", 0644);
    auto r = test::run({test::program("pwsync"), "check", "--user", "alice", "--config", d / "conf"}, {},
                       {"PWSYNC_CONFIG=", "PWSYNC_STORE="});
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.out.find("OK  config: "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("FAIL connect: "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("retryable"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("FAIL bind: not tried"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("FAIL user alice: not tried"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("FAIL dirsync: not tried"), std::string::npos) << r.out;
    EXPECT_EQ((r.out + r.err).find("Secret-Pw.1"), std::string::npos);

    test::write_file(d / "conf", "store = /x\n[log]\nlevel = info\n", 0644);
    r = test::run({test::program("pwsync"), "check", "--config", d / "conf"}, {}, {"PWSYNC_CONFIG=", "PWSYNC_STORE="});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("FAIL config: "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("no [directory] section"), std::string::npos) << r.out;
}

// Several domains: one [directory NAME] each, read from a real file.
class Directories : public ::testing::Test {
protected:
    Result<std::vector<Settings>> parse(const std::string& text) {
        test::write_file(dir_ / "conf", text, 0644);
        PWSYNC_ASSIGN(auto entries, read_ini(dir_ / "conf"));
        return parse_directories(entries);
    }
    static std::string section(const std::string& name, const std::string& domain, const std::string& base,
                               const std::string& extra = {}) {
        return "[directory " + name + "]\nuri = ldaps://dc." + name + "\nbase = " + base + "\ndomain = " + domain +
               "\nbind-dn = CN=svc\nbind-password-file = /p\n" + extra;
    }
    test::TempDir dir_;
};

TEST_F(Directories, OneSectionIsAsBeforeAndSeveralAreNamed) {
    auto one = parse("[directory]\nuri = ldaps://dc\nbind-dn = CN=svc\nbind-password-file = /p\n");
    ASSERT_TRUE(one) << one.error().message;
    ASSERT_EQ(one->size(), 1u);
    EXPECT_EQ(section_label(one->front()), "[directory]");
    EXPECT_TRUE(parse("[log]\nlevel = info\n")->empty());
    auto two = parse(section("example.com", "EXAMPLE", "DC=example,DC=com", "capture-principals = DC1 dc2\n") +
                     section("other", "OTHER", "DC=other,DC=example", "upn-suffixes = Other.Test\n"));
    ASSERT_TRUE(two) << two.error().message;
    ASSERT_EQ(two->size(), 2u);
    EXPECT_EQ((*two)[0].name, "example.com");  // a dot in the name: the section is not cut there
    EXPECT_EQ((*two)[0].capture_principals, (std::vector<std::string>{"dc1", "dc2"}));
    EXPECT_EQ((*two)[1].upn_suffixes, (std::vector<std::string>{"other.test"}));
}

TEST_F(Directories, SeveralMustEachSayTheirDomainAndClaimNothingTwice) {
    const auto error = [&](const std::string& text) {
        auto r = parse(text);
        return r ? std::string("(parsed)") : r.error().message;
    };
    const std::string ex = section("ex", "EXAMPLE", "DC=example,DC=com");
    EXPECT_NE(error("[directory]\nuri = ldaps://dc\nbind-dn = CN=svc\nbind-password-file = /p\n" + ex).find("name each section"),
              std::string::npos);
    EXPECT_NE(error(ex + "[directory b]\nuri = ldaps://b\nbase = DC=b\nbind-dn = x\nbind-password-file = /p\n").find("[directory b]: domain ="),
              std::string::npos);
    EXPECT_NE(error(ex + section("b", "example", "DC=b,DC=com")).find("both claim the domain 'example'"), std::string::npos);
    EXPECT_NE(error(ex + section("b", "B", "DC=b,DC=com", "upn-suffixes = example.com\n")).find("the UPN suffix"),
              std::string::npos);
    EXPECT_NE(error(section("a", "A", "DC=a", "capture-principals = dc1\n") + section("b", "B", "DC=b", "capture-principals = DC1\n"))
                  .find("capture principal 'dc1'"),
              std::string::npos);
    EXPECT_NE(error(ex + "[directory ex2]\nuri = ldaps://x\nnonsense = 1\n").find("[directory ex2] unknown setting 'nonsense'"),
              std::string::npos);
}

TEST_F(Directories, ANameSaysItsDomainByNetbiosUpnSuffixOrDn) {
    auto dirs = parse(section("ex", "EXAMPLE", "DC=example,DC=com") +
                      section("other", "OTHER", "DC=other,DC=example", "upn-suffixes = corp.test\n"));
    ASSERT_TRUE(dirs) << dirs.error().message;
    EXPECT_EQ(directory_of(*dirs, "example\\alice"), 0u);
    EXPECT_EQ(directory_of(*dirs, "OTHER\\alice"), 1u);
    EXPECT_EQ(directory_of(*dirs, "other.example\\alice"), 1u);  // the DNS domain
    EXPECT_EQ(directory_of(*dirs, "alice@Example.com"), 0u);
    EXPECT_EQ(directory_of(*dirs, "alice@corp.test"), 1u);
    EXPECT_EQ(directory_of(*dirs, "CN=alice,CN=Users,DC=other, DC=example"), 1u);
    EXPECT_EQ(directory_of(*dirs, "CN=alice,CN=Users,DC=example,DC=com"), 0u);
    // Says nothing, or names no configured domain.
    EXPECT_FALSE(directory_of(*dirs, "alice"));
    EXPECT_FALSE(directory_of(*dirs, "{a11ce000-0000-0000-0000-000000000001}"));
    EXPECT_FALSE(directory_of(*dirs, "THIRD\\alice"));
    EXPECT_FALSE(directory_of(*dirs, "alice@example.org"));
    EXPECT_FALSE(directory_of(*dirs, "CN=x,DC=com"));  // above a naming context, not in it
}

TEST_F(Directories, AChildDomainsDnIsTheChilds) {
    auto dirs = parse(section("ex", "EXAMPLE", "DC=example,DC=com") + section("emea", "EMEA", "DC=emea,DC=example,DC=com"));
    ASSERT_TRUE(dirs) << dirs.error().message;
    EXPECT_EQ(directory_of(*dirs, "CN=alice,CN=Users,DC=emea,DC=example,DC=com"), 1u);
    EXPECT_EQ(directory_of(*dirs, "CN=alice,CN=Users,DC=example,DC=com"), 0u);
    EXPECT_EQ(directory_of(*dirs, "alice@emea.example.com"), 1u);
}

}  // namespace
}  // namespace pwsync::directory
