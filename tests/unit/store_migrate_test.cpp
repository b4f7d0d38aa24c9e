// `store migrate`: the whole store into an empty store of another location
// (LMDB here; the test's own backend as well when it runs on PostgreSQL),
// all or nothing, record by record, ids going on after the source's.
#include <filesystem>

#include "store_fixture.h"

namespace pwsync::store::testing {
namespace {

// Every character class a name can hold that SQL or a path could mistreat.
const std::string kOddApp = "App \"quoted\" 'single' back\\slash 100% _under_ \xc3\xa9t\xc3\xa9 \xe2\x82\xac";
const std::string kOddWindows = "TEST\\o'neil \"x\" %_ \xc3\xa9";
// Names refuse control characters; descriptions keep them.
const std::string kOddDescription = "line 1\nline\t2 \x01\x1f\x7f \\ ' \" %_";

class MigrateTest : public StoreTest {
protected:
    // A source with secrets, odd names, a job and a dead letter.
    void fill() {
        {
            auto t = w();
            App a;
            a.name = kOddApp;
            a.description = kOddDescription;
            ASSERT_OK(t.create_app(a));
            ASSERT_OK(t.commit());
        }
        make_app("LINUX");
        ASSERT_OK(map(kOddApp, kOddWindows, "ext 'o\"neil' \\ %_"));
        ASSERT_OK(map("LINUX", "TEST\\alice", "alice"));
        auto t = w();
        ASSERT_OK(t.set_mapping_credential({kOddApp, kOddWindows}, Secret("Migrated-Secret-1")));
        const Job j = alice_job();
        auto a = t.enqueue_job(j, Secret("Queued-Secret-2"));
        ASSERT_OK(a);
        auto b = t.enqueue_job(j, Secret("Queued-Secret-3"));
        ASSERT_OK(b);
        last_job_ = *b;
        ASSERT_OK(t.commit());
    }
    Options at(const std::string& uri) const {
        Options o = options();
        o.uri = uri;
        o.key_file = key_file_;
        return o;
    }
    std::string lmdb_target(const std::string& name) const { return "lmdb:" + dir_.path() + "/" + name; }
    std::uint64_t last_job_ = 0;
};

std::size_t audit_count(Store& s) {
    auto r = s.read();
    EXPECT_TRUE(r) << r.error().message;
    auto c = r->counts();
    EXPECT_TRUE(c) << c.error().message;
    return c ? c->audit : 0;
}

TEST_P(MigrateTest, CopiesEveryRecordAndGoesOnWithTheIds) {
    fill();
    auto before = store().verify();
    ASSERT_OK(before);
    ASSERT_TRUE(before->problems.empty());
    const auto audits = audit_count(store());

    const std::string target = lmdb_target("copy");
    auto rep = store().migrate(target, "tester");
    ASSERT_OK(rep);
    std::size_t mappings = 0, settings = 0;
    for (const auto& [name, n] : rep->tables) {
        if (name == std::string("mappings")) mappings = n;
        if (name == std::string("settings")) settings = n;
    }
    EXPECT_EQ(mappings, 2u);
    EXPECT_EQ(settings, 2u) << "the schema version and key check; LMDB's id counter is not a setting";
    EXPECT_GE(rep->last_id, last_job_);

    auto copy = Store::open(at(target));
    ASSERT_OK(copy);
    auto after = copy->verify();
    ASSERT_OK(after);
    EXPECT_TRUE(after->problems.empty());
    EXPECT_EQ(after->secrets, before->secrets);
    EXPECT_EQ(after->records, before->records + 1) << "the copy has one more audit record";
    EXPECT_EQ(audit_count(*copy), audits + 1);
    {
        auto r = copy->read();
        ASSERT_OK(r);
        auto cred = r->mapping_credential({kOddApp, kOddWindows});
        ASSERT_OK(cred);
        EXPECT_EQ(cred->view(), "Migrated-Secret-1");
        auto m = r->mapping({kOddApp, kOddWindows});
        ASSERT_OK(m);
        EXPECT_EQ(m->windows, kOddWindows);
        EXPECT_EQ(m->external, "ext 'o\"neil' \\ %_");
        auto app = r->app(kOddApp);
        ASSERT_OK(app);
        EXPECT_EQ(app->name, kOddApp);
        EXPECT_EQ(app->description, kOddDescription);
        auto recs = r->audit();
        ASSERT_OK(recs);
        EXPECT_EQ(recs->back().action, "store.migrate");
    }
    // New ids in the copy never collide with the source's.
    Job j;
    j.adapter = "ldap1";
    j.app = "LINUX";
    j.windows = "TEST\\alice";
    j.external = "alice";
    j.origin = "dc1";
    std::uint64_t id = 0;
    {
        auto t = copy->write("tester");
        ASSERT_OK(t);
        auto got = t->enqueue_job(j, Secret("Queued-Secret-4"));
        ASSERT_OK(got);
        id = *got;
        EXPECT_GT(id, last_job_);
        ASSERT_OK(t->commit());
    }

    // And back into the test's backend (a second PostgreSQL schema, or LMDB).
    const auto back_dir = std::filesystem::path(dir_.path()) / "back";
    std::filesystem::create_directories(back_dir);
    const std::string back = backend().uri(back_dir);
    auto rep2 = copy->migrate(back, "tester");
    ASSERT_OK(rep2);
    EXPECT_EQ(rep2->last_id, id);
    auto again = Store::open(at(back));
    ASSERT_OK(again);
    auto third = again->verify();
    ASSERT_OK(third);
    EXPECT_TRUE(third->problems.empty());
    EXPECT_EQ(third->secrets, before->secrets + 1);
    auto w2 = again->write("tester");
    ASSERT_OK(w2);
    auto id2 = w2->enqueue_job(j, Secret("Queued-Secret-5"));
    ASSERT_OK(id2);
    EXPECT_GT(*id2, id);
    EXPECT_TRUE(stored_files_containing("Migrated-Secret-1").empty());
}

TEST_P(MigrateTest, RefusesATargetThatHoldsAStore) {
    fill();
    const std::string target = lmdb_target("taken");
    Options o = at(target);
    o.key_file = dir_.path() + "/taken.key";
    std::size_t audits = 0;
    {
        auto other = Store::init(o);
        ASSERT_OK(other);
        audits = audit_count(*other);
    }
    EXPECT_ERRC(store().migrate(target, "tester"), Errc::already_exists);
    auto still = Store::open(o);
    ASSERT_OK(still);
    EXPECT_EQ(audit_count(*still), audits);
    auto r = still->read();
    ASSERT_OK(r);
    auto apps = r->apps();
    ASSERT_OK(apps);
    EXPECT_TRUE(apps->empty()) << "nothing was written into the existing store";
}

// A copy that fails half way (the target's map is too small) leaves the
// target vacant again: a second attempt with room succeeds.
TEST_P(MigrateTest, AFailedCopyLeavesTheTargetVacant) {
    fill();
    auto t = w();
    for (int i = 0; i < 400; ++i) {
        Mapping m;
        m.app = "LINUX";
        m.windows = "TEST\\user" + std::to_string(i) + std::string(200, 'x');
        m.external = "user" + std::to_string(i);
        ASSERT_OK(t.create_mapping(m));
    }
    ASSERT_OK(t.commit());
    const std::string target = lmdb_target("small");
    auto failed = store().migrate(target + "?map_size=131072", "tester");
    ASSERT_FALSE(failed);
    EXPECT_NE(failed.error().message.find("MDB_MAP_FULL"), std::string::npos) << failed.error().message;
    EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/small/data.mdb"));
    auto ok = store().migrate(target, "tester");
    ASSERT_OK(ok);
}

TEST_P(MigrateTest, WhatARestoreNeedsIsThere) {
    auto info = store().check_restorable();
    ASSERT_OK(info);
    EXPECT_EQ(info->schema_version, kSchemaVersion);
    EXPECT_EQ(info->key_id, store().info().key_id);
    EXPECT_EQ(store().backed_up_by().empty(), backend().name == "lmdb");
}

PWSYNC_STORE_SUITE(MigrateTest);

// libpq quotes the part of a URI it cannot parse; a password there must
// not reach the error (no server needed: parsing fails first).
TEST(PgUri, AParseErrorDoesNotRepeatTheUri) {
    for (const std::string uri : {"postgresql://user:Fake-Pw-%zz9@db.example/pwsync",
                                  "postgresql://user:Fake-Pw-9@db.example/pwsync?sslmode",
                                  "postgresql://user:Fake-Pw-9@[::1/pwsync",
                                  "postgresql://user:Fake\"Pw\": \"Fake-Pw-%zz@db.example/pwsync"}) {
        Options o;
        o.uri = uri;
        auto s = Store::open(o);
        ASSERT_FALSE(s) << uri;
        EXPECT_EQ(s.error().code, Errc::invalid_argument) << s.error().message;
        EXPECT_EQ(s.error().message.find("Fake-Pw"), std::string::npos) << s.error().message;
        EXPECT_NE(s.error().message.find("bad PostgreSQL store URI"), std::string::npos) << s.error().message;
    }
    // What libpq looked for stays when it is punctuation, not the URI's text.
    Options o;
    o.uri = "postgresql://user:Fake-Pw-9@[::1/pwsync";
    auto s = Store::open(o);
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().message.find("matching \"]\""), std::string::npos) << s.error().message;
}

}  // namespace
}  // namespace pwsync::store::testing
