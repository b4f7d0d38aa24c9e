// The pwsync CLI run as a program against a temporary store.
#include <filesystem>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "cli_fixture.h"
#include "helpers.h"
#include "notify.h"
#include "pwsync/store.h"

namespace pwsync::cli::testing {
namespace {

TEST_F(Cli, InitCreatesAPrivateStoreOnce) {
    struct stat st {};
    ASSERT_EQ(::stat((store() + "/master.key").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(::stat(store().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    EXPECT_NE(failing({"init"}, 1).find("already exists"), std::string::npos);
}

TEST_F(Cli, HelpVersionAndUsageErrors) {
    EXPECT_NE(ok({"--help"}).find("mapping set-credentials"), std::string::npos);
    EXPECT_NE(ok({"--version"}).find("pwsync "), std::string::npos);
    EXPECT_NE(ok({"adapter", "create", "--help"}).find("--sync-to-adapter"), std::string::npos);
    EXPECT_EQ(pw({}).exit_code, 2);
    failing({"nonsense"}, 2);
    failing({"app", "frobnicate"}, 2);
    failing({"app", "create"}, 2);
    failing({"app", "create", "X", "--no-such-option"}, 2);
    failing({"sync", "enable", "sideways"}, 2);
    failing({"adapter", "create", "a", "--type", "carrier-pigeon"}, 2);
    failing({"adapter", "create", "a", "--type", "ldap", "--property", "noequals"}, 2);
    failing({"adapter", "create", "a", "--type", "ldap", "--retry-count", "many"}, 2);
    failing({"audit", "--since", "last tuesday"}, 2);
    failing({"audit", "--since", "2999-01-01"}, 2);
}

TEST_F(Cli, SyncSwitches) {
    auto s = js({"sync", "show"});
    EXPECT_EQ(s, json({{"windows", false}, {"partial", false}, {"full", false}}));
    ok({"sync", "enable", "windows"});
    ok({"sync", "enable", "full"});
    ok({"sync", "disable", "full"});
    s = js({"sync", "show"});
    EXPECT_TRUE(s["windows"]);
    EXPECT_FALSE(s["full"]);
}

TEST_F(Cli, ApplicationsLifecycle) {
    ok({"app", "create", "RACF", "--description", "Mainframe", "--disabled"});
    auto a = js({"app", "show", "racf"});
    EXPECT_EQ(a["name"], "RACF");
    EXPECT_EQ(a["description"], "Mainframe");
    EXPECT_FALSE(a["enabled"]);
    EXPECT_EQ(a["mappings"], 0);
    ok({"app", "update", "RACF", "--enabled", "--contact", "ops"});
    a = js({"app", "show", "RACF"});
    EXPECT_TRUE(a["enabled"]);
    EXPECT_EQ(a["contact"], "ops");
    EXPECT_EQ(a["description"], "Mainframe");  // untouched
    EXPECT_EQ(js({"app", "list"}).size(), 1u);
    failing({"app", "create", "racf"}, 1);
    failing({"app", "update", "RACF", "--enabled", "--disabled"}, 2);
    ok({"app", "delete", "RACF"});
    EXPECT_TRUE(js({"app", "list"}).empty());
    EXPECT_NE(failing({"app", "show", "RACF"}, 1).find("does not exist"), std::string::npos);
}

// --allow-privileged: off by default, set and cleared, every change audited;
// temporary-passwords takes send or hold only.
TEST_F(Cli, AllowPrivilegedAndTemporaryPasswords) {
    ok({"app", "create", "LINUX"});
    EXPECT_FALSE(js({"app", "show", "LINUX"})["allow_privileged"]);
    ok({"app", "create", "ADMINS", "--allow-privileged"});
    EXPECT_TRUE(js({"app", "show", "ADMINS"})["allow_privileged"]);
    ok({"app", "update", "LINUX", "--allow-privileged"});
    EXPECT_TRUE(js({"app", "show", "LINUX"})["allow_privileged"]);
    EXPECT_NE(ok({"app", "show", "LINUX"}).find("privileged:  allowed"), std::string::npos);
    ok({"app", "update", "LINUX", "--allow-privileged=no"});
    EXPECT_FALSE(js({"app", "show", "LINUX"})["allow_privileged"]);
    ok({"app", "update", "LINUX", "--contact", "ops"});
    EXPECT_FALSE(js({"app", "show", "LINUX"})["allow_privileged"]);  // untouched
    failing({"app", "update", "LINUX", "--allow-privileged=maybe"}, 2);
    const auto audit = ok({"audit"});
    EXPECT_NE(audit.find("privileged accounts allowed"), std::string::npos);
    EXPECT_NE(audit.find("privileged accounts refused"), std::string::npos);
    ok({"adapter", "create", "hold", "--type", "exec", "--property", "program=/bin/true", "--property",
        "temporary-passwords=hold"});
    EXPECT_NE(failing({"adapter", "update", "hold", "--property", "temporary-passwords=later"}, 1)
                  .find("temporary-passwords: expected send or hold"),
              std::string::npos);
    EXPECT_EQ(js({"adapter", "show", "hold"})["properties"]["temporary-passwords"], "hold");
}

TEST_F(Cli, AdaptersFlagsPropertiesAndSecrets) {
    ok({"adapter", "create", "ldap1", "--type", "ldap", "--property", "uri=ldaps://ext", "--secret-property",
        "bind-password", "--sync-to-adapter", "--no-verify-old-password", "--retry-count", "7"},
       "Adapter-Bind-Secret\n");
    auto a = js({"adapter", "show", "ldap1"});
    EXPECT_FALSE(a["enabled"]);
    EXPECT_TRUE(a["sync_to_adapter"]);
    EXPECT_FALSE(a["verify_old_password"]);
    EXPECT_FALSE(a["allow_mapping_conflicts"]);
    EXPECT_EQ(a["retry_count"], 7);
    EXPECT_EQ(a["properties"]["uri"], "ldaps://ext");
    EXPECT_EQ(a["secret_properties"], json::array({"bind-password"}));
    EXPECT_EQ(ok({"adapter", "show", "ldap1"}).find("Adapter-Bind-Secret"), std::string::npos);
    // A secret may not be given as a plain property (it would sit in argv).
    failing({"adapter", "update", "ldap1", "--property", "bind-password=oops"}, 2);
    ok({"adapter", "update", "ldap1", "--sync-to-adapter=no", "--sync-from-adapter", "--timeout", "5"});
    ok({"adapter", "enable", "ldap1"});
    a = js({"adapter", "show", "ldap1"});
    EXPECT_TRUE(a["enabled"]);
    EXPECT_FALSE(a["sync_to_adapter"]);
    EXPECT_TRUE(a["sync_from_adapter"]);
    EXPECT_EQ(a["timeout"], 5);
    ok({"adapter", "disable", "ldap1"});
    EXPECT_FALSE(js({"adapter", "list"})[0]["enabled"]);
    EXPECT_TRUE(test::files_containing(store(), "Adapter-Bind-Secret").empty());
    ok({"adapter", "delete", "ldap1"});
    EXPECT_TRUE(js({"adapter", "list"}).empty());
}

// A setting the adapter type cannot use is refused when it is set, not
// found later as a dead letter; nothing is stored.
TEST_F(Cli, AdapterSettingsAreValidatedByTheirType) {
    EXPECT_NE(failing({"adapter", "create", "bad-ldap", "--type", "ldap", "--property", "uri=ldaps//no-colon"}, 1)
                  .find("uri 'ldaps//no-colon'"),
              std::string::npos);
    EXPECT_NE(failing({"adapter", "create", "bad-exec", "--type", "exec", "--property", "program=bin/passwd"}, 1)
                  .find("absolute path"),
              std::string::npos);
    EXPECT_NE(failing({"adapter", "create", "bad-http", "--type", "http", "--property", "url=http://plain.example"}, 1)
                  .find("https://"),
              std::string::npos);
    EXPECT_TRUE(js({"adapter", "list"}).empty());
    ok({"adapter", "create", "ext", "--type", "ldap", "--property", "uri=ldaps://ext ldap://ext2:1389"});
    EXPECT_NE(failing({"adapter", "update", "ext", "--property", "method=bogus"}, 1).find("method"), std::string::npos);
    EXPECT_NE(failing({"adapter", "update", "ext", "--property", "uri=ftp://ext"}, 1).find("uri"), std::string::npos);
    EXPECT_EQ(js({"adapter", "show", "ext"})["properties"]["uri"], "ldaps://ext ldap://ext2:1389");
}

TEST_F(Cli, EssoRulesGiveClearErrors) {
    setup_racf();
    ok({"adapter", "create", "ldap2", "--type", "exec", "--property", "program=/bin/true"});
    EXPECT_NE(failing({"adapter", "add-app", "ldap2", "RACF"}, 1).find("already belongs to adapter 'ldap1'"),
              std::string::npos);
    EXPECT_NE(failing({"adapter", "delete", "ldap1"}, 1).find("RACF"), std::string::npos);
    ok({"group", "create", "mainframes", "--description", "z/OS"});
    ok({"group", "add", "mainframes", "ldap2"});
    failing({"group", "add", "mainframes", "ldap2", "extra"}, 2);
    auto groups = js({"group", "list"});
    ASSERT_EQ(groups.size(), 1u);
    EXPECT_EQ(groups[0]["adapters"], json::array({"ldap2"}));
    EXPECT_NE(failing({"adapter", "delete", "ldap2"}, 1).find("group"), std::string::npos);
    EXPECT_NE(failing({"group", "delete", "mainframes"}, 1).find("ldap2"), std::string::npos);
    ok({"group", "remove", "mainframes", "ldap2"});
    ok({"group", "delete", "mainframes"});
    ok({"adapter", "delete", "ldap2"});
    // Mapping conflict within one adapter.
    ok({"app", "create", "LINUX"});
    ok({"adapter", "add-app", "ldap1", "LINUX"});
    EXPECT_NE(failing({"mapping", "create", "--app", "LINUX", "--windows", "TEST\\bob", "--external", "alice"}, 1)
                  .find("does not allow mapping conflicts"),
              std::string::npos);
    ok({"adapter", "update", "ldap1", "--allow-mapping-conflicts"});
    ok({"mapping", "create", "--app", "LINUX", "--windows", "TEST\\bob", "--external", "alice"});
    ok({"adapter", "remove-app", "LINUX"});
    EXPECT_TRUE(js({"app", "show", "LINUX"})["adapter"].is_null());
}

TEST_F(Cli, CredentialSetRevealedAndNeverInTheStoreFiles) {
    setup_racf();
    const std::string password = "Zebra-Quartz-\xC3\xA9t\xC3\xA9-2026!";
    ok({"mapping", "set-credentials", "--app", "RACF", "--windows", "TEST\\alice"}, password + "\n");
    auto m = js({"mapping", "show", "--app", "RACF", "--windows", "test\\ALICE"});
    EXPECT_TRUE(m["has_credential"]);
    EXPECT_FALSE(m.contains("password"));
    auto revealed = js({"mapping", "show", "--app", "RACF", "--windows", "TEST\\alice", "--reveal"});
    EXPECT_EQ(revealed["password"], password);
    EXPECT_NE(ok({"mapping", "show", "--app", "RACF", "--windows", "TEST\\alice", "--reveal"}).find(password),
              std::string::npos);
    EXPECT_TRUE(test::files_containing(store(), password).empty());
    EXPECT_TRUE(test::files_containing(store(), "Zebra-Quartz").empty());
    // The audit says it was revealed and never holds the password.
    const std::string audit = ok({"audit", "--json"});
    EXPECT_EQ(audit.find("Zebra"), std::string::npos);
    auto records = json::parse(audit);
    int reveals = 0;
    for (const auto& r : records) reveals += r["action"] == "mapping.reveal";
    EXPECT_EQ(reveals, 2);
    // From a file too.
    test::write_file(dir_ / "pw.txt", "From-A-File-123\n");
    ok({"mapping", "set-credentials", "--app", "RACF", "--windows", "TEST\\alice", "--password-file", dir_ / "pw.txt"});
    EXPECT_EQ(js({"mapping", "show", "--app", "RACF", "--windows", "TEST\\alice", "--reveal"})["password"], "From-A-File-123");
    failing({"mapping", "set-credentials", "--app", "RACF", "--windows", "TEST\\alice"}, 1, "");
    failing({"mapping", "set-credentials", "--app", "RACF", "--windows", "TEST\\nobody"}, 1, "x");
}

TEST_F(Cli, MappingListFiltersEnableDisableDelete) {
    setup_racf();
    ok({"mapping", "create", "--app", "RACF", "--windows", "bob@test.example", "--external", "BOB", "--disabled"});
    auto all = js({"mapping", "list"});
    ASSERT_EQ(all.size(), 2u);
    auto bob = js({"mapping", "list", "--windows", "BOB@test.example"});
    ASSERT_EQ(bob.size(), 1u);
    EXPECT_FALSE(bob[0]["enabled"]);
    EXPECT_EQ(js({"mapping", "list", "--external", "alice"}).size(), 1u);
    EXPECT_TRUE(js({"mapping", "list", "--app", "NOAPP"}).empty());
    ok({"mapping", "enable", "--app", "RACF", "--windows", "bob@test.example"});
    EXPECT_TRUE(js({"mapping", "show", "--app", "RACF", "--windows", "bob@test.example"})["enabled"]);
    ok({"mapping", "disable", "--app", "RACF", "--windows", "TEST\\alice"});
    ok({"mapping", "delete", "--app", "RACF", "--windows", "bob@test.example"});
    EXPECT_EQ(js({"mapping", "list"}).size(), 1u);
    failing({"mapping", "delete", "--app", "RACF"}, 2);
    ok({"store", "verify"});
}

TEST_F(Cli, MappingImportIsAllOrNothing) {
    ok({"app", "create", "RACF"});
    test::write_file(dir_ / "good.csv", "windows,external\n# comment\nTEST\\u1,U1\n\"TEST\\u2\",\"U,2\"\nu3@test.example,U3\n");
    EXPECT_NE(ok({"mapping", "import", "--app", "RACF", dir_ / "good.csv"}).find("imported 3"), std::string::npos);
    EXPECT_EQ(js({"mapping", "list", "--external", "U,2"}).size(), 1u);
    test::write_file(dir_ / "bad.csv", "TEST\\u4,U4\nTEST\\u5,U1\n");  // U1 already mapped: conflict on line 2
    EXPECT_NE(failing({"mapping", "import", "--app", "RACF", dir_ / "bad.csv"}, 1).find("line 2"), std::string::npos);
    EXPECT_EQ(js({"mapping", "list"}).size(), 3u);  // u4 was not imported
    test::write_file(dir_ / "malformed.csv", "TEST\\u6,U6,extra\n");
    EXPECT_NE(failing({"mapping", "import", "--app", "RACF", dir_ / "malformed.csv"}, 1).find("line 1"), std::string::npos);
    failing({"mapping", "import", "--app", "RACF", dir_ / "missing.csv"}, 1);
}

TEST_F(Cli, PrincipalsSecretsFromStdinOnly) {
    ok({"adapter", "create", "ldap1", "--type", "ldap"});
    ok({"principal", "create", "dc1", "--kind", "windows", "--capture", "pre-commit"}, "Principal-Secret-1\n");
    ok({"principal", "create", "agent", "--kind", "adapter", "--adapter", "ldap1"}, "Principal-Secret-2");
    failing({"principal", "create", "x", "--kind", "robot"}, 2, "Principal-Secret-3");
    failing({"principal", "create", "x", "--kind", "windows"}, 1, "Principal-Secret-3");
    failing({"principal", "create", "x", "--kind", "adapter", "--adapter", "ldap1"}, 1, "short");
    auto list = js({"principal", "list"});
    ASSERT_EQ(list.size(), 2u);
    EXPECT_EQ(list[0]["name"], "agent");
    EXPECT_EQ(list[0]["adapter"], "ldap1");
    EXPECT_EQ(list[1]["capture"], "pre-commit");
    EXPECT_TRUE(test::files_containing(store(), "Principal-Secret").empty());
    EXPECT_EQ(ok({"audit"}).find("Principal-Secret"), std::string::npos);
    ok({"principal", "delete", "agent"});
    EXPECT_EQ(js({"principal", "list"}).size(), 1u);
}

TEST_F(Cli, KeyRotateBackupVerifyAndPermissions) {
    setup_racf();
    ok({"mapping", "set-credentials", "--app", "RACF", "--windows", "TEST\\alice"}, "Rotate-Me-123");
    const std::string before = test::read_file(store() + "/master.key");
    ok({"key", "rotate"});
    EXPECT_NE(test::read_file(store() + "/master.key"), before);
    EXPECT_EQ(js({"mapping", "show", "--app", "RACF", "--windows", "TEST\\alice", "--reveal"})["password"], "Rotate-Me-123");
    auto v = js({"store", "verify"});
    EXPECT_TRUE(v["ok"]);
    EXPECT_EQ(v["secrets"], 2);
    ok({"store", "backup", dir_ / "backup"});
    EXPECT_TRUE(test::files_containing(dir_ / "backup", "Rotate-Me").empty());
    EXPECT_GT(test::read_file(dir_ / "backup/data.mdb").size(), 0u);
    failing({"store", "backup", dir_ / "backup"}, 1);
    ::chmod((store() + "/master.key").c_str(), 0644);
    EXPECT_NE(failing({"app", "list"}, 1).find("chmod 600"), std::string::npos);
    ::chmod((store() + "/master.key").c_str(), 0600);
}

TEST_F(Cli, AuditRecordsEveryChangeWithTheOsUser) {
    setup_racf();
    auto records = js({"audit"});
    std::vector<std::string> actions;
    for (const auto& r : records) actions.push_back(r["action"]);
    EXPECT_EQ(actions, (std::vector<std::string>{"store.init", "app.create", "adapter.create", "adapter.add-app",
                                                 "mapping.create"}));
    EXPECT_FALSE(records[0]["actor"].get<std::string>().empty());
    EXPECT_EQ(js({"audit", "--since", "2000-01-01"}).size(), 5u);
    EXPECT_TRUE(js({"audit", "--since", "2199-12-31"}).empty());
    EXPECT_EQ(js({"audit", "--limit", "2"}).size(), 2u);
}

TEST_F(Cli, StoreLocationFromConfigFile) {
    test::write_file(dir_ / "pwsyncd.conf", "# comment\nstore = " + store() + "\n[listen]\nuri = ldaps://0.0.0.0:1636\n");
    auto r = test::run({test::program("pwsync"), "app", "list", "--json"}, {}, {"PWSYNC_STORE=", "PWSYNC_CONFIG=" + (dir_ / "pwsyncd.conf")});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(json::parse(r.out), json::array());
    auto none = test::run({test::program("pwsync"), "app", "list"}, {}, {"PWSYNC_STORE=", "PWSYNC_CONFIG=" + (dir_ / "missing.conf")});
    EXPECT_EQ(none.exit_code, 1);
    EXPECT_NE(none.err.find("missing.conf"), std::string::npos);
}

// `stale expire` with no account named acts only on accounts with an
// uncaptured change on record: one stale because safe scope left it out
// (a disabled or privileged account) is skipped, saying why, and the
// directory is not even opened for it.
TEST_F(Cli, StaleExpireSkipsAccountsNotBehindAnUncapturedChange) {
    setup_racf();
    {
        store::Options o;
        o.uri = store();
        auto s = store::Store::open(o);
        ASSERT_TRUE(s) << s.error().message;
        auto w = std::move(*s->write("test"));
        ASSERT_TRUE(w.set_mapping_status({"RACF", "TEST\\alice"}, store::MappingStatus::stale));
        ASSERT_TRUE(w.commit());
    }
    const std::string out = ok({"stale", "expire"});
    EXPECT_NE(out.find("skipped: stale, but not from an uncaptured change"), std::string::npos) << out;
    EXPECT_NE(out.find("no stale accounts to expire"), std::string::npos) << out;
    // Named, it is acted on: here that needs the [directory] there is none of.
    auto r = pw({"stale", "expire", "TEST\\alice"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(r.out.find("skipped"), std::string::npos) << r.out;
}

TEST_F(Cli, StatusQueueAndDamping) {
    setup_racf();
    ok({"adapter", "enable", "ldap1"});
    std::uint64_t dead_id = 0;
    {
        store::Options o;
        o.uri = store();
        auto s = store::Store::open(o);
        ASSERT_TRUE(s) << s.error().message;
        auto w = std::move(*s->write("test"));
        store::Job j;
        j.adapter = "ldap1";
        j.app = "RACF";
        j.windows = "TEST\\alice";
        j.external = "ALICE";
        j.origin = "dc1";
        ASSERT_TRUE(w.enqueue_job(j, Secret("Queued-Secret-1")));
        j.external = "OTHER";
        dead_id = *w.enqueue_job(j, Secret("Dead-Secret-2"));
        ASSERT_TRUE(w.job_dead(dead_id, "no such user"));
        ASSERT_TRUE(w.set_marker(store::MarkerKind::damping, "alice", "x", {"dc1", TimePoint::max() - std::chrono::hours(1)}));
        ASSERT_TRUE(w.commit());
    }
    auto st = js({"status"});
    EXPECT_EQ(st["queued"], 1);
    EXPECT_EQ(st["dead_letters"], 1);
    EXPECT_EQ(st["pending_captures"], 0);
    EXPECT_EQ(st["adapters"][0]["name"], "ldap1");
    EXPECT_EQ(st["adapters"][0]["queued"], 1);
    EXPECT_EQ(st["adapters"][0]["dead_letters"], 1);
    EXPECT_NE(ok({"status"}).find("dead letters: 1"), std::string::npos);
    const std::string listing = ok({"queue", "list", "--json"});
    EXPECT_EQ(listing.find("Secret"), std::string::npos);
    auto q = json::parse(listing);
    ASSERT_EQ(q["queued"].size(), 1u);
    ASSERT_EQ(q["dead_letters"].size(), 1u);
    EXPECT_EQ(q["dead_letters"][0]["reason"], "no such user");
    failing({"queue", "retry", "abc"}, 2);
    failing({"queue", "retry", "999999"}, 1);
    ok({"queue", "retry", std::to_string(dead_id)});
    q = js({"queue", "list"});
    EXPECT_EQ(q["queued"].size(), 2u);
    EXPECT_TRUE(q["dead_letters"].empty());
    EXPECT_NE(ok({"damping", "reset"}).find("forgot 1"), std::string::npos);
    EXPECT_NE(ok({"audit"}).find("damping.reset"), std::string::npos);
}

// The lean hook client, built beside pwsync.
std::string lean_notify() { return (std::filesystem::path(test::program("pwsync")).parent_path() / "pwsync-notify").string(); }

// pwsync notify without a reachable gateway: the exit codes a hook relies on,
// the same from the lean pwsync-notify that Samba's hook runs.
TEST_F(Cli, NotifyExitCodes) {
    test::write_file(dir_ / "secret", "Principal-Secret-9");
    for (const std::vector<std::string>& program : {std::vector<std::string>{test::program("pwsync"), "notify"},
                                                   std::vector<std::string>{lean_notify()}}) {
        SCOPED_TRACE(program.back());
        ::chmod((dir_ / "secret").c_str(), 0600);
        auto with = [&](std::vector<std::string> extra) {
            auto a = program;
            for (const char* s : {"--gateway", "ldaps://127.0.0.1:1", "--principal", "dc1", "--secret-file"}) a.push_back(s);
            a.push_back(dir_ / "secret");
            a.push_back("--timeout");
            a.push_back("2");
            a.insert(a.end(), extra.begin(), extra.end());
            return a;
        };
        auto r = test::run(with({"--account", "alice"}), "Unreachable-Pass.1");
        EXPECT_EQ(r.exit_code, 3) << r.err;
        EXPECT_NE(r.err.find("gateway"), std::string::npos);
        EXPECT_EQ(r.err.find("Unreachable-Pass"), std::string::npos);
        r = test::run(with({"--account", "alice", "--complexity"}), "alice-is-here-1");
        EXPECT_EQ(r.exit_code, 4) << r.err;
        EXPECT_NE(r.err.find("complexity"), std::string::npos);
        EXPECT_EQ(r.err.find("is-here"), std::string::npos);
        // As Samba's hook: an unreachable gateway must not block the change...
        r = test::run(with({"--samba-hook"}), "Hook-Pass.2024x", {"SAMBA_CPS_ACCOUNT_NAME=alice", "SAMBA_CPS_FULL_NAME=Alice L"});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(r.err.find("not stored"), std::string::npos);
        EXPECT_NE(r.err.find("stale"), std::string::npos);
        EXPECT_EQ(r.err.find("Hook-Pass"), std::string::npos);
        // ... nor a hook without its account ...
        r = test::run(with({"--samba-hook"}), "Hook-Pass.2024x");
        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(r.err.find("misconfigured"), std::string::npos) << r.err;
        // ... but a password that fails AD's complexity rule is refused.
        r = test::run(with({"--samba-hook"}), "alicealice", {"SAMBA_CPS_ACCOUNT_NAME=alice"});
        EXPECT_EQ(r.exit_code, 4);
        auto bare = program;
        bare.insert(bare.end(), {"--account", "alice"});
        r = test::run(bare, "x");
        EXPECT_EQ(r.exit_code, 2);
        r = test::run(with({"--account", "alice", "--timeout", "601"}), "Some-Pass.2024x");
        EXPECT_EQ(r.exit_code, 2) << r.err;
        ::chmod((dir_ / "secret").c_str(), 0644);
        r = test::run(with({"--account", "alice"}), "Some-Pass.2024x");
        EXPECT_EQ(r.exit_code, 1);
        EXPECT_NE(r.err.find("group or others"), std::string::npos) << r.err;
    }
}

// The package's /usr/lib/pwsync/samba-check-password is a link to
// pwsync-notify: under that name it is Samba's hook (no wrapper script),
// with /etc/pwsync/hook.conf unless --config says.
TEST_F(Cli, NotifyAsSambaCheckPassword) {
    test::write_file(dir_ / "secret", "Principal-Secret-9");
    ::chmod((dir_ / "secret").c_str(), 0600);
    const std::string conf = dir_ / "hook.conf";
    test::write_file(conf, "[notify]\ngateway = ldaps://127.0.0.1:1\nprincipal = dc1\nsecret-file = " +
                               std::string(dir_ / "secret") + "\ntimeout = 1\n");
    const std::string link = dir_ / "samba-check-password";
    std::filesystem::create_symlink(lean_notify(), link);
    // A hook: the account from Samba's environment, the gateway unreachable
    // does not stop the change, a password AD would refuse does.
    auto r = test::run({link, "--config", conf}, "Hook-Pass.2024x", {"SAMBA_CPS_ACCOUNT_NAME=alice"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("not stored"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("Hook-Pass"), std::string::npos);
    r = test::run({link, "--config", conf}, "alicealice", {"SAMBA_CPS_ACCOUNT_NAME=alice"});
    EXPECT_EQ(r.exit_code, 4) << r.err;
    // Under its own name the same line is no hook: it needs --account.
    r = test::run({lean_notify(), "--config", conf}, "Hook-Pass.2024x", {"SAMBA_CPS_ACCOUNT_NAME=alice"});
    EXPECT_NE(r.exit_code, 0);
    // Without options, the package's configuration file.
    pwsync::notify::Request req;
    pwsync::notify::as_program("/usr/lib/pwsync/samba-check-password", req);
    EXPECT_TRUE(req.samba_hook);
    EXPECT_EQ(req.config, std::optional<std::string>("/etc/pwsync/hook.conf"));
    req = {};
    req.config = "/elsewhere.conf";
    pwsync::notify::as_program("samba-check-password", req);
    EXPECT_EQ(req.config, std::optional<std::string>("/elsewhere.conf"));
    req = {};
    pwsync::notify::as_program("/usr/bin/pwsync-notify", req);
    EXPECT_FALSE(req.samba_hook);
    EXPECT_FALSE(req.config);
}

// The hook's own options file: [notify] read without Boost, bad keys refused.
TEST_F(Cli, NotifyHookConfig) {
    test::write_file(dir_ / "secret", "Principal-Secret-9");
    const std::string conf = dir_ / "hook.conf";
    test::write_file(conf, "# the DC's hook\nstore = /elsewhere\n[notify]\ngateway = ldaps://127.0.0.1:1  ldaps://127.0.0.1:2 # two\n"
                           "principal = dc1\nsecret-file = " + std::string(dir_ / "secret") + "\ntimeout = 1\n[other]\nx = y\n");
    auto r = test::run({lean_notify(), "--account", "alice", "--config", conf}, "Some-Pass.2024x");
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_NE(r.err.find("ldaps://127.0.0.1:2"), std::string::npos) << r.err;  // both gateways tried
    test::write_file(conf, "[notify]\ngateway = ldaps://127.0.0.1:1\nprincipal = dc1\nsecret-fil = x\n");
    r = test::run({lean_notify(), "--account", "alice", "--config", conf}, "Some-Pass.2024x");
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("unknown key notify.secret-fil"), std::string::npos) << r.err;
    r = test::run({lean_notify(), "--account", "alice", "--bogus"}, "Some-Pass.2024x");
    EXPECT_EQ(r.exit_code, 2) << r.err;
    r = test::run({lean_notify(), "--help"}, "");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.out.find("--samba-hook"), std::string::npos);
}

}  // namespace
}  // namespace pwsync::cli::testing
