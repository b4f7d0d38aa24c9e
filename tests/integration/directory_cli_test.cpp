// `pwsync check` and `pwsync mapping resolve` run as programs against the
// real Samba DC.
#include <sys/stat.h>

#include "dc_fixture.h"

namespace pwsync::test {
namespace {

class CliCheck : public DirectoryTest {
protected:
    void SetUp() override {
        DirectoryTest::SetUp();
        write_file(dir_ / "svc.pw", env("PWSYNC_TEST_SVC_PASSWORD") + "\n", 0600);
    }
    std::string config(const std::string& directory_section) {
        const std::string path = dir_ / "pwsyncd.conf";
        write_file(path, "store = " + (dir_ / "store") + "\n\n[directory]\n" + directory_section + "\n[log]\nlevel = info\n", 0644);
        return path;
    }
    std::string simple_section(const std::string& password_file) {
        return "uri = ldaps://127.0.0.3 " + env("PWSYNC_TEST_DC_URI") + "\nbase = " + env("PWSYNC_TEST_DC_BASE") +
               "\ndomain = " + env("PWSYNC_TEST_DC_DOMAIN") + "\nbind = simple\nbind-dn = " + env("PWSYNC_TEST_SVC_DN") +
               "\nbind-password-file = " + password_file + "\nca = " + env("PWSYNC_TEST_CA") + "\n";
    }
    RunResult pwsync(std::vector<std::string> args, const std::string& conf) {
        args.insert(args.begin(), program("pwsync"));
        args.push_back("--config");
        args.push_back(conf);
        return run(args, {}, {"PWSYNC_STORE=", "PWSYNC_CONFIG="});
    }
    static std::vector<std::string> lines(const std::string& out) {
        std::vector<std::string> v;
        std::size_t pos = 0;
        for (auto nl = out.find('\n'); nl != std::string::npos; pos = nl + 1, nl = out.find('\n', pos)) v.push_back(out.substr(pos, nl - pos));
        return v;
    }
    TempDir dir_;
};

TEST_F(CliCheck, GreenAgainstTheDcWithSimpleBind) {
    auto r = pwsync({"check", "--user", env("PWSYNC_TEST_DC_DOMAIN") + "\\" + env("PWSYNC_TEST_DC_DISABLED_USER")},
                    config(simple_section(dir_ / "svc.pw")));
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    const auto l = lines(r.out);
    ASSERT_EQ(l.size(), 6u) << r.out;
    for (const auto& line : l) EXPECT_TRUE(line.starts_with("OK  ")) << line;
    EXPECT_TRUE(l[1].find(env("PWSYNC_TEST_DC_URI")) != std::string::npos) << l[1];  // failed over from 127.0.0.3
    EXPECT_NE(r.out.find("certificate verified"), std::string::npos);
    EXPECT_NE(r.out.find("(disabled)"), std::string::npos);
    EXPECT_NE(r.out.find("dirsync: allowed"), std::string::npos);
    expect_no_leak(r.out + r.err, {env("PWSYNC_TEST_SVC_PASSWORD")});
}

TEST_F(CliCheck, GreenWithGssapi) {
    const std::string section = "uri = " + env("PWSYNC_TEST_DC_URI") + "\nbase = " + env("PWSYNC_TEST_DC_BASE") +
                                "\ndomain = " + env("PWSYNC_TEST_DC_DOMAIN") + "\nbind = gssapi\nkeytab = " +
                                env("PWSYNC_TEST_KEYTAB") + "\nprincipal = " + env("PWSYNC_TEST_SVC_PRINCIPAL") +
                                "\nkrb5-config = " + env("PWSYNC_TEST_KRB5_CONF") + "\nca = " + env("PWSYNC_TEST_CA") + "\n";
    auto r = pwsync({"check", "--user", "alice@" + env("PWSYNC_TEST_DC_DNS_DOMAIN")}, config(section));
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(r.out.find("FAIL"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("OK  bind: gssapi as " + env("PWSYNC_TEST_SVC_PRINCIPAL")), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("OK  user alice@"), std::string::npos) << r.out;
}

TEST_F(CliCheck, WrongPasswordFailsClearly) {
    const std::string wrong = "Wrong-Svc-Pw.9";
    write_file(dir_ / "wrong.pw", wrong, 0600);
    auto r = pwsync({"check", "--user", "alice"}, config(simple_section(dir_ / "wrong.pw")));
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    const auto l = lines(r.out);
    ASSERT_GE(l.size(), 3u) << r.out;
    EXPECT_TRUE(l[0].starts_with("OK  config")) << l[0];
    EXPECT_TRUE(l[1].starts_with("OK  connect")) << l[1];
    EXPECT_TRUE(l[2].starts_with("FAIL bind: ")) << l[2];
    EXPECT_NE(l[2].find("invalid credentials"), std::string::npos) << l[2];
    EXPECT_NE(r.out.find("FAIL user alice: not tried"), std::string::npos) << r.out;
    EXPECT_NE(r.err.find("check"), std::string::npos) << r.err;
    expect_no_leak(r.out + r.err, {wrong});
}

TEST_F(CliCheck, PasswordFileMustBePrivate) {
    ::chmod((dir_ / "svc.pw").c_str(), 0644);
    auto r = pwsync({"check"}, config(simple_section(dir_ / "svc.pw")));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(r.out.starts_with("FAIL config: ")) << r.out;
    EXPECT_NE(r.out.find("0644"), std::string::npos) << r.out;
    expect_no_leak(r.out + r.err, {env("PWSYNC_TEST_SVC_PASSWORD")});
}

TEST_F(CliCheck, InsecureSkipVerifyIsLoud) {
    auto r = pwsync({"check"}, config(simple_section(dir_ / "svc.pw") + "insecure-skip-verify = yes\n"));
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.err.find("WARNING"), std::string::npos) << r.err;
    EXPECT_NE(r.out.find("certificate NOT verified"), std::string::npos) << r.out;
}

TEST_F(CliCheck, UnknownUserAndBadSettings) {
    auto r = pwsync({"check", "--user", "no-such-user-x"}, config(simple_section(dir_ / "svc.pw")));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("FAIL user no-such-user-x: "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("OK  dirsync"), std::string::npos) << r.out;
    r = pwsync({"check"}, config(simple_section(dir_ / "svc.pw") + "bind-dnn = typo\n"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("unknown setting 'bind-dnn'"), std::string::npos) << r.out;
}

TEST_F(CliCheck, MappingResolveStoresObjectGuids) {
    const std::string conf = config(simple_section(dir_ / "svc.pw"));
    const auto store = [&](std::vector<std::string> a) {
        auto r = pwsync(a, conf);
        EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
        return r;
    };
    // Created with no [directory] at hand: not resolved at creation.
    const std::string store_only = dir_ / "store-only.conf";
    write_file(store_only, "store = " + (dir_ / "store") + "\n", 0644);
    const auto offline = [&](std::vector<std::string> a) {
        auto r = pwsync(a, store_only);
        EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    };
    store({"init"});
    store({"app", "create", "RACF"});
    store({"app", "create", "HR"});
    auto u = make_user("map");
    offline({"mapping", "create", "--app", "RACF", "--windows", env("PWSYNC_TEST_DC_DOMAIN") + "\\" + u.sam, "--external", "U1"});
    offline({"mapping", "create", "--app", "RACF", "--windows", u.upn, "--external", "U2"});
    offline({"mapping", "create", "--app", "RACF", "--windows", "nobody-here", "--external", "U3"});
    offline({"mapping", "create", "--app", "HR", "--windows", u.sam, "--external", "U4"});

    auto r = pwsync({"mapping", "resolve", "--app", "RACF"}, conf);
    EXPECT_EQ(r.exit_code, 1) << "an unresolved mapping must show in the exit code\n" << r.out << r.err;
    EXPECT_NE(r.out.find("unresolved nobody-here in RACF: "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("2 resolved, 1 unresolved"), std::string::npos) << r.out;
    auto show = store({"mapping", "show", "--app", "RACF", "--windows", u.upn, "--json"});
    EXPECT_NE(show.out.find(u.guid), std::string::npos) << show.out;
    auto hr = store({"mapping", "show", "--app", "HR", "--windows", u.sam, "--json"});
    // The store now knows the account by all its names: its mapping in HR,
    // made with the sam, is resolved with it.
    EXPECT_NE(hr.out.find(u.guid), std::string::npos) << hr.out;
    r = pwsync({"mapping", "resolve", "--app", "HR"}, conf);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    hr = store({"mapping", "show", "--app", "HR", "--windows", u.sam, "--json"});
    EXPECT_NE(hr.out.find(u.guid), std::string::npos) << hr.out;
}

// `mapping create` and `mapping import` resolve the account at once when the
// configuration has a [directory]; an unreachable directory leaves it for
// pwsyncd, and the mapping is created all the same.
TEST_F(CliCheck, MappingCreateResolvesTheAccountAtOnce) {
    const std::string conf = config(simple_section(dir_ / "svc.pw"));
    const auto store = [&](std::vector<std::string> a, const std::string& with) {
        auto r = pwsync(a, with);
        EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
        return r;
    };
    store({"init"}, conf);
    store({"app", "create", "RACF"}, conf);
    auto u = make_user("mapnow");
    store({"mapping", "create", "--app", "RACF", "--windows", u.upn, "--external", "U1"}, conf);
    auto show = store({"mapping", "show", "--app", "RACF", "--windows", u.upn, "--json"}, conf);
    EXPECT_NE(show.out.find(u.guid), std::string::npos) << show.out;
    write_file(dir_ / "import.csv", "windows,external\n" + env("PWSYNC_TEST_DC_DOMAIN") + "\\" + u.sam + ",U2\n", 0644);
    store({"mapping", "import", "--app", "RACF", dir_ / "import.csv"}, conf);
    show = store({"mapping", "show", "--app", "RACF", "--windows", env("PWSYNC_TEST_DC_DOMAIN") + "\\" + u.sam, "--json"}, conf);
    EXPECT_NE(show.out.find(u.guid), std::string::npos) << show.out;
    // Known to the store now: a new mapping by another name needs no directory.
    const std::string store_only = dir_ / "store-only.conf";
    write_file(store_only, "store = " + (dir_ / "store") + "\n", 0644);
    store({"mapping", "create", "--app", "RACF", "--windows", u.sam, "--external", "U4"}, store_only);
    show = store({"mapping", "show", "--app", "RACF", "--windows", u.sam, "--json"}, conf);
    EXPECT_NE(show.out.find(u.guid), std::string::npos) << show.out;
    auto r = pwsync({"mapping", "resolve"}, conf);
    EXPECT_NE(r.out.find("nothing to resolve"), std::string::npos) << r.out;

    // The directory unreachable: created, unresolved, and said so.
    const std::string down = dir_ / "down.conf";
    write_file(down, "store = " + (dir_ / "store") + "\n\n[directory]\nuri = ldaps://127.0.0.3\nbase = " + env("PWSYNC_TEST_DC_BASE") +
                         "\nbind = simple\nbind-dn = " + env("PWSYNC_TEST_SVC_DN") + "\nbind-password-file = " +
                         (dir_ / "svc.pw") + "\nca = " + env("PWSYNC_TEST_CA") + "\n", 0644);
    auto v = make_user("mapdown");
    r = store({"mapping", "create", "--app", "RACF", "--windows", v.sam, "--external", "U3"}, down);
    EXPECT_NE(r.err.find("unresolved until pwsyncd resolves"), std::string::npos) << r.err;
    show = store({"mapping", "show", "--app", "RACF", "--windows", v.sam, "--json"}, conf);
    EXPECT_NE(show.out.find("\"object_guid\": null"), std::string::npos) << show.out;
    expect_no_leak(r.out + r.err, {env("PWSYNC_TEST_SVC_PASSWORD")});
}

}  // namespace
}  // namespace pwsync::test
