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

}  // namespace
}  // namespace pwsync::directory
