#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "store_fixture.h"

namespace pwsync::store::testing {
namespace {

TEST_P(StoreTest, InitRefusesAnExistingStoreAndOpenFindsIt) {
    EXPECT_ERRC(Store::init(options()), Errc::already_exists);
    auto again = Store::open(options());
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(again->info().schema_version, kSchemaVersion);
    Options missing = options();
    missing.uri = backend().uri(std::filesystem::path(dir_.path()) / "nothing-here");
    auto none = Store::open(missing);
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().code, Errc::not_found);
    EXPECT_NE(none.error().message.find("pwsync init"), std::string::npos);
}

TEST_P(StoreTest, SyncSwitchesStartDisabled) {
    auto s = r().sync_settings();
    ASSERT_OK(s);
    EXPECT_FALSE(s->windows || s->partial || s->full);
    auto t = w();
    ASSERT_OK(t.set_sync(SyncMode::full, true));
    ASSERT_OK(t.commit());
    s = r().sync_settings();
    EXPECT_TRUE(s->full);
    EXPECT_FALSE(s->windows);
}

TEST_P(StoreTest, AbortedTransactionLeavesNoTrace) {
    {
        auto t = w();
        App a;
        a.name = "Ghost";
        ASSERT_OK(t.create_app(a));
    }  // destroyed without commit
    EXPECT_ERRC(r().app("Ghost"), Errc::not_found);
    auto audit = r().audit();
    ASSERT_OK(audit);
    for (const auto& rec : *audit) EXPECT_NE(rec.object, "Ghost");
}

TEST_P(StoreTest, NamesAreCaseInsensitiveAndValidated) {
    make_app("RACF");
    auto a = r().app("racf");
    ASSERT_OK(a);
    EXPECT_EQ(a->name, "RACF");
    App dup;
    dup.name = "Racf";
    auto t = w();
    EXPECT_ERRC(t.create_app(dup), Errc::already_exists);
    App bad;
    bad.name = "tab\there";
    EXPECT_ERRC(t.create_app(bad), Errc::invalid_argument);
    bad.name = "";
    EXPECT_ERRC(t.create_app(bad), Errc::invalid_argument);
    bad.name = "\xff\xfe";
    EXPECT_ERRC(t.create_app(bad), Errc::invalid_argument);
}

TEST_P(StoreTest, IndexesFollowCreatesAndDeletes) {
    make_app("RACF");
    make_app("LINUX");
    ASSERT_OK(map("RACF", "TEST\\alice", "ALICE"));
    ASSERT_OK(map("LINUX", "TEST\\alice", "alice"));
    ASSERT_OK(map("LINUX", "TEST\\bob", "bob"));

    MappingFilter by_win;
    by_win.windows = "test\\ALICE";  // matched case-insensitively
    auto alice = r().mappings(by_win);
    ASSERT_OK(alice);
    ASSERT_EQ(alice->size(), 2u);

    auto ext = r().mappings_by_external("racf", "alice");
    ASSERT_OK(ext);
    ASSERT_EQ(ext->size(), 1u);
    EXPECT_EQ((*ext)[0].windows, "TEST\\alice");

    MappingFilter by_app;
    by_app.app = "LINUX";
    EXPECT_EQ(r().mappings(by_app)->size(), 2u);

    {
        auto t = w();
        ASSERT_OK(t.delete_mapping({"LINUX", "TEST\\alice"}));
        ASSERT_OK(t.set_mapping_enabled({"RACF", "test\\alice"}, false));
        ASSERT_OK(t.commit());
    }
    EXPECT_EQ(r().mappings(by_win)->size(), 1u);
    EXPECT_TRUE(r().mappings_by_external("LINUX", "alice")->empty());
    EXPECT_FALSE(r().mapping({"RACF", "TEST\\alice"})->enabled);
    auto rep = store().verify();
    ASSERT_OK(rep);
    EXPECT_TRUE(rep->problems.empty()) << rep->problems.front();
    // The external user is free again in LINUX.
    ASSERT_OK(map("LINUX", "TEST\\carol", "alice"));
}

TEST_P(StoreTest, CredentialIsSealedAndNeverInTheFiles) {
    make_app("RACF");
    ASSERT_OK(map("RACF", "TEST\\alice", "ALICE"));
    const std::string password = "Unmistakable-Pa55word-\xE2\x82\xAC";
    {
        auto t = w();
        ASSERT_OK(t.set_mapping_credential({"RACF", "TEST\\alice"}, Secret(password)));
        ASSERT_OK(t.commit());
    }
    auto back = r().mapping_credential({"racf", "test\\alice"});
    ASSERT_OK(back);
    EXPECT_EQ(back->view(), password);
    EXPECT_TRUE(r().mapping({"RACF", "TEST\\alice"})->has_credential);
    EXPECT_TRUE(stored_files_containing(password).empty());
    EXPECT_TRUE(stored_files_containing("Unmistakable").empty());
}

TEST_P(StoreTest, RevealIsAudited) {
    make_app("RACF");
    ASSERT_OK(map("RACF", "alice", "ALICE"));
    {
        auto t = w();
        ASSERT_OK(t.set_mapping_credential({"RACF", "alice"}, Secret("pw-1234567")));
        ASSERT_OK(t.commit());
    }
    auto t = w();
    auto v = t.reveal_mapping_credential({"RACF", "alice"});
    ASSERT_OK(v);
    ASSERT_OK(t.commit());
    auto audit = r().audit();
    ASSERT_OK(audit);
    ASSERT_FALSE(audit->empty());
    EXPECT_EQ(audit->back().action, "mapping.reveal");
    EXPECT_EQ(audit->back().actor, "tester");
    for (const auto& rec : *audit) EXPECT_EQ(rec.detail.find("pw-1234567"), std::string::npos);
}

TEST_P(StoreTest, AuditUsesTheInjectedClockAndFiltersByTime) {
    make_app("A1");
    clock_.advance(std::chrono::hours(1));
    const auto later = clock_.now();
    make_app("A2");
    make_app("A3");
    auto all = r().audit();
    ASSERT_OK(all);
    auto since = r().audit(later);
    ASSERT_OK(since);
    ASSERT_EQ(since->size(), 2u);
    EXPECT_EQ((*since)[0].object, "A2");
    EXPECT_EQ((*since)[0].time, later);
    // Same instant, distinct increasing ids.
    EXPECT_LT((*since)[0].id, (*since)[1].id);
    EXPECT_EQ(r().audit({}, 1)->size(), 1u);
    // The clock stepping back does not reorder or collide.
    clock_.advance(-std::chrono::hours(2));
    make_app("A4");
    auto after = r().audit();
    EXPECT_EQ(after->back().object, "A4");
    EXPECT_GT(after->back().id, (*since)[1].id);
}

// Two processes write at once, in units of work: the backend serialises
// them (LMDB: one writer at a time; others: retries) and nothing is lost.
TEST_P(StoreTest, TwoProcessesWriteAtOnce) {
    make_app("SHARED");
    constexpr int kPerProcess = 150;
    pid_t kids[2];
    for (int k = 0; k < 2; ++k) {
        kids[k] = ::fork();
        ASSERT_GE(kids[k], 0);
        if (kids[k] == 0) {
            auto s = Store::open(options());
            if (!s) ::_exit(10);
            for (int i = 0; i < kPerProcess; ++i) {
                Mapping m;
                m.app = "SHARED";
                m.windows = "p" + std::to_string(k) + "-user" + std::to_string(i);
                m.external = m.windows;
                auto st = s->transact("child", [&](WriteTxn& t) -> Status {
                    PWSYNC_TRY(t.create_mapping(m));
                    return t.set_mapping_credential({m.app, m.windows}, Secret("pw" + m.windows));
                });
                if (!st) {
                    std::fprintf(stderr, "child %d: %s\n", k, st.error().message.c_str());
                    ::_exit(12);
                }
            }
            ::_exit(0);
        }
    }
    for (pid_t pid : kids) {
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status));
        EXPECT_EQ(WEXITSTATUS(status), 0);
    }
    MappingFilter f;
    f.app = "SHARED";
    auto all = r().mappings(f);
    ASSERT_OK(all);
    EXPECT_EQ(all->size(), 2u * kPerProcess);
    auto pw = r().mapping_credential({"SHARED", "p1-user77"});
    ASSERT_OK(pw);
    EXPECT_EQ(pw->view(), "pwp1-user77");
    auto rep = store().verify();
    ASSERT_OK(rep);
    EXPECT_TRUE(rep->problems.empty());
    EXPECT_EQ(rep->secrets, 2u * kPerProcess + 1);  // + the key check
}

// Two processes update the SAME records at once (one mapping's credential
// and the sync switches), each update a unit of work with its audit record:
// every update is applied (none lost to the other's), each audited once.
TEST_P(StoreTest, TwoProcessesUpdateTheSameRecordsAndNothingIsLost) {
    make_app("SHARED");
    ASSERT_OK(map("SHARED", "TEST\\both", "both"));
    constexpr int kEach = 40;
    pid_t kids[2];
    for (int k = 0; k < 2; ++k) {
        kids[k] = ::fork();
        ASSERT_GE(kids[k], 0);
        if (kids[k] == 0) {
            auto s = Store::open(options());
            if (!s) ::_exit(10);
            for (int i = 0; i < kEach; ++i) {
                auto st = s->transact("child" + std::to_string(k), [&](WriteTxn& t) -> Status {
                    PWSYNC_TRY(t.set_mapping_credential({"SHARED", "TEST\\both"},
                                                        Secret("pw-" + std::to_string(k) + "-" + std::to_string(i))));
                    return t.set_sync(SyncMode::full, i % 2 == 0);
                });
                if (!st) {
                    std::fprintf(stderr, "child %d: %s\n", k, st.error().message.c_str());
                    ::_exit(12);
                }
            }
            ::_exit(0);
        }
    }
    for (pid_t pid : kids) {
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status));
        EXPECT_EQ(WEXITSTATUS(status), 0);
    }
    auto audit = r().audit(TimePoint{}, 0);
    ASSERT_OK(audit);
    int per_child[2] = {0, 0};
    for (const auto& a : *audit)
        for (int k = 0; k < 2; ++k)
            if (a.actor == "child" + std::to_string(k)) ++per_child[k];
    EXPECT_EQ(per_child[0], 2 * kEach);  // a credential and a switch each time
    EXPECT_EQ(per_child[1], 2 * kEach);
    auto last = r().mapping_credential({"SHARED", "TEST\\both"});
    ASSERT_OK(last);
    EXPECT_TRUE(last->view() == "pw-0-" + std::to_string(kEach - 1) || last->view() == "pw-1-" + std::to_string(kEach - 1))
        << last->view();
    EXPECT_TRUE(store().verify()->problems.empty());
}

// open(uri) picks the backend by the URI's scheme; a bare folder is LMDB;
// an unknown backend or a bad backend setting is a clear error.
TEST(StoreUri, TheSchemeNamesTheBackend) {
    test::TempDir dir;
    const std::string folder = dir.path() + "/store";
    Options o;
    o.uri = "lmdb:" + folder + "?map_size=67108864";
    auto made = Store::init(o);
    ASSERT_TRUE(made) << made.error().message;
    EXPECT_EQ(made->info().dir, folder);
    EXPECT_EQ(made->info().key_file, folder + "/master.key");
    made = std::unexpected(Error{Errc::internal, "closed"});  // LMDB: one open per process
    o.uri = folder;
    auto plain = Store::open(o);
    ASSERT_TRUE(plain) << plain.error().message;
    EXPECT_EQ(plain->info().dir, folder);
    plain = std::unexpected(Error{Errc::internal, "closed"});

    o.uri = "nosuch://db.example/pwsync";
    auto unknown = Store::open(o);
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().code, Errc::invalid_argument);
    EXPECT_NE(unknown.error().message.find("nosuch"), std::string::npos);
    o.uri = "lmdb:" + folder + "?map_size=lots";
    EXPECT_ERRC(Store::open(o), Errc::invalid_argument);
    o.uri = "";
    EXPECT_ERRC(Store::open(o), Errc::invalid_argument);
}

// A PostgreSQL store URI is checked before any connection: no password in
// it (libpq's password file or a client certificate instead), and a password
// file that others can read is refused. No server needed: nothing connects.
TEST(StoreUri, APostgresqlUriWithAPasswordOrAnOpenPasswordFileIsRefused) {
    test::TempDir dir;
    Options o;
    o.key_file = dir.path() + "/master.key";
    for (const char* uri : {"postgresql://pwsync:Secret-Pw@db.example/pwsync",
                            "postgres://pwsync@db.example/pwsync?password=Secret-Pw",
                            "postgresql:///pwsync?host=/nonexistent&password=Secret-Pw"}) {
        o.uri = uri;
        for (bool init : {false, true}) {
            auto r = init ? Store::init(o) : Store::open(o);
            ASSERT_FALSE(r) << uri;
            EXPECT_EQ(r.error().code, Errc::invalid_argument) << uri << ": " << r.error().message;
            EXPECT_NE(r.error().message.find("password file"), std::string::npos) << r.error().message;
            EXPECT_EQ(r.error().message.find("Secret-Pw"), std::string::npos) << r.error().message;
        }
    }
    const std::string passfile = dir.path() + "/pgpass";
    test::write_file(passfile, "db.example:5432:pwsync:pwsync:Secret-Pw\n", 0644);
    o.uri = "postgresql://pwsync@db.example/pwsync?passfile=" + passfile;
    EXPECT_ERRC(Store::open(o), Errc::permission);
    o.uri = "postgresql://pwsync@db.example/pwsync?nosuchoption=1";
    EXPECT_ERRC(Store::open(o), Errc::invalid_argument);
}

// One instantiation for the StoreTest cases of every store_*_test.cpp.
PWSYNC_STORE_SUITE(StoreTest);

}  // namespace
}  // namespace pwsync::store::testing
