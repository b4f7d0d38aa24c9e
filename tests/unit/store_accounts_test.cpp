// The store's account names: any name form of an account finds every mapping
// of it, across a reopen, renames and deletions; an older store migrates.
#include <lmdb.h>

#include <algorithm>
#include <functional>

#include "codec.h"
#include "store_fixture.h"

namespace pwsync::store::testing {
namespace {

constexpr const char* kGuid = "{6f2e0c1a-1b2c-4d3e-8f40-5a6b7c8d9e0f}";

AccountNames bob() {
    AccountNames a;
    a.guid = kGuid;
    a.sam = "bob";
    a.domain = "TEST";
    a.upn = "bob@test.example";
    a.dn = "CN=bob,CN=Users,DC=test,DC=example";
    return a;
}

std::vector<std::string> apps_of(const std::vector<Mapping>& ms) {
    std::vector<std::string> out;
    for (const auto& m : ms) out.push_back(m.app);
    std::sort(out.begin(), out.end());
    return out;
}

// Runs `edit` in a write transaction on LMDB's own files, without the store.
void edit_lmdb(const std::string& folder, const std::function<void(MDB_txn*)>& edit) {
    MDB_env* env = nullptr;
    ASSERT_EQ(mdb_env_create(&env), 0);
    ASSERT_EQ(mdb_env_set_maxdbs(env, 32), 0);
    ASSERT_EQ(mdb_env_set_mapsize(env, std::size_t{1} << 30), 0);
    ASSERT_EQ(mdb_env_open(env, folder.c_str(), 0, 0600), 0);
    MDB_txn* txn = nullptr;
    ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
    edit(txn);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

// Drops the schema 3 databases and records schema 2.
void downgrade_lmdb(MDB_txn* txn, const std::string& version) {
    for (const char* name : {"accounts", "account_names", "mappings_by_guid", "mappings_unresolved"}) {
        MDB_dbi dbi = 0;
        ASSERT_EQ(mdb_dbi_open(txn, name, 0, &dbi), 0) << name;
        ASSERT_EQ(mdb_drop(txn, dbi, 1), 0) << name;
    }
    MDB_dbi settings = 0;
    ASSERT_EQ(mdb_dbi_open(txn, "settings", 0, &settings), 0);
    MDB_val k{6, const_cast<char*>("schema")}, val{version.size(), const_cast<char*>(version.data())};
    ASSERT_EQ(mdb_put(txn, settings, &k, &val, 0), 0);
}

class AccountsTest : public StoreTest {
protected:
    void SetUp() override {
        StoreTest::SetUp();
        for (const char* a : {"A", "B", "C", "D", "E"}) make_app(a);
        // One mapping per name form, none resolved yet.
        ASSERT_OK(map("A", "bob", "bob-a"));
        ASSERT_OK(map("B", "TEST\\bob", "bob-b"));
        ASSERT_OK(map("C", "Bob@Test.Example", "bob-c"));
        ASSERT_OK(map("D", kGuid, "bob-d"));
        ASSERT_OK(map("E", "CN=bob,CN=Users,DC=test,DC=example", "bob-e"));
    }
    std::vector<std::string> found(std::string_view name) {
        auto t = r();
        auto ms = t.account_mappings(name);
        EXPECT_TRUE(ms) << ms.error().message;
        return ms ? apps_of(*ms) : std::vector<std::string>{};
    }
    void note(const AccountNames& a, std::size_t want_resolved) {
        auto t = w();
        auto n = t.note_account(a);
        ASSERT_TRUE(n) << n.error().message;
        EXPECT_EQ(*n, want_resolved);
        ASSERT_OK(t.commit());
    }
    const std::vector<std::string> all_{"A", "B", "C", "D", "E"};
    const std::vector<std::string> forms_{"bob", "TEST\\bob", "BOB@test.example", kGuid,
                                          "cn=bob,cn=users,dc=test,dc=example", "test\\BOB"};
};

TEST_P(AccountsTest, UnresolvedUntilTheAccountIsKnown) {
    EXPECT_EQ(r().unresolved_mappings()->size(), 5u);
    // Before the store knows bob, a name finds only the mapping made with it.
    EXPECT_EQ(found("bob"), std::vector<std::string>{"A"});
    EXPECT_EQ(found("bob@test.example"), std::vector<std::string>{"C"});
    note(bob(), 5);
    EXPECT_TRUE(r().unresolved_mappings()->empty());
    auto t = r();
    auto all = t.mappings();
    ASSERT_TRUE(all);
    for (const auto& m : *all) EXPECT_EQ(m.object_guid, kGuid) << m.app;
}

TEST_P(AccountsTest, EveryNameFormFindsEveryMappingAcrossAReopen) {
    note(bob(), 5);
    for (const auto& n : forms_) EXPECT_EQ(found(n), all_) << n;
    store_.reset();
    auto s = Store::open(options());
    ASSERT_TRUE(s) << s.error().message;
    store_.emplace(std::move(*s));
    for (const auto& n : forms_) EXPECT_EQ(found(n), all_) << "after reopen: " << n;
    auto acc = r().account("BOB@TEST.EXAMPLE");
    ASSERT_TRUE(acc && *acc);
    EXPECT_EQ((*acc)->guid, kGuid);
    EXPECT_EQ((*acc)->sam, "bob");
    EXPECT_TRUE(store().verify()->problems.empty());
}

TEST_P(AccountsTest, ANewMappingOfAKnownAccountIsResolvedFromTheStore) {
    note(bob(), 5);
    make_app("F");
    ASSERT_OK(map("F", "BOB@test.example", "bob-f"));
    EXPECT_EQ(r().mapping({"F", "bob@test.example"})->object_guid, kGuid);
    EXPECT_TRUE(r().unresolved_mappings()->empty());
    EXPECT_EQ(found("TEST\\bob").size(), 6u);
}

TEST_P(AccountsTest, RenameMovesTheNamesAndANamesakeIsNotConfused) {
    note(bob(), 5);
    AccountNames renamed;
    renamed.guid = kGuid;
    renamed.sam = "robert";  // an incremental result: only what changed
    renamed.upn = "robert@test.example";
    note(renamed, 0);
    for (const auto& n : {"robert", "TEST\\robert", "robert@test.example", kGuid}) EXPECT_EQ(found(n), all_) << n;
    // The DN did not change in this event: it is kept.
    EXPECT_EQ(found("CN=bob,CN=Users,DC=test,DC=example"), all_);
    // The old names are no longer bob's: the mappings made with them belong
    // to the account, not to whoever is called bob now.
    EXPECT_TRUE(found("bob").empty());
    EXPECT_TRUE(found("bob@test.example").empty());
    auto audit = r().audit();
    ASSERT_TRUE(audit);
    EXPECT_TRUE(std::any_of(audit->begin(), audit->end(), [](const AuditRecord& a) {
        return a.action == "account.rename" && a.detail.find("bob -> robert") != std::string::npos;
    }));
    // A new account called bob, mapped afterwards, finds only its own mapping.
    make_app("G");
    ASSERT_OK(map("G", "bob", "new-bob"));
    EXPECT_EQ(found("bob"), std::vector<std::string>{"G"});
    AccountNames other;
    other.guid = "{00000000-1111-2222-3333-444444444444}";
    other.sam = "bob";
    other.domain = "TEST";
    note(other, 1);
    EXPECT_EQ(found("TEST\\bob"), std::vector<std::string>{"G"});
    EXPECT_EQ(found("robert"), all_);
    EXPECT_TRUE(store().verify()->problems.empty());
}

TEST_P(AccountsTest, ADeletedAccountsNamesFindNothing) {
    note(bob(), 5);
    {
        auto t = w();
        ASSERT_OK(t.forget_account(kGuid));
        ASSERT_OK(t.commit());
    }
    for (const auto& n : forms_) EXPECT_TRUE(found(n).empty()) << n;
    EXPECT_TRUE(r().unresolved_mappings()->empty());  // nothing left to resolve
    auto acc = r().account("bob");
    ASSERT_TRUE(acc);
    EXPECT_FALSE(*acc);
    // An account no mapping names leaves nothing behind.
    {
        auto t = w();
        ASSERT_OK(t.forget_account("{99999999-1111-2222-3333-444444444444}"));
        ASSERT_OK(t.commit());
    }
    EXPECT_EQ(r().counts()->mappings, 5u);
}

TEST_P(AccountsTest, DeletingAMappingLeavesNoIndexEntry) {
    note(bob(), 5);
    {
        auto t = w();
        ASSERT_OK(t.delete_mapping({"C", "bob@test.example"}));
        ASSERT_OK(t.commit());
    }
    EXPECT_EQ(found("bob"), (std::vector<std::string>{"A", "B", "D", "E"}));
    EXPECT_TRUE(store().verify()->problems.empty());
}

// A schema 2 store (before account names): it opens, every mapping is put on
// the unresolved list, and a GUID resolved back then still finds its mapping.
TEST_P(AccountsTest, AnOlderStoreOpensAndMigrates) {
    {
        auto t = w();
        ASSERT_OK(t.set_mapping_guid({"A", "bob"}, kGuid));
        ASSERT_OK(t.commit());
    }
    const std::string folder = store().info().dir;
    store_.reset();
    std::string v;
    codec::put_varint(v, 2);
    // Take the store back to schema 2: without the new tables.
    if (backend().name == "postgresql") {
        auto c = pq::connect(folder, {});
        ASSERT_TRUE(c) << c.error().message;
        for (const char* name : {"accounts", "account_names", "mappings_by_guid", "mappings_unresolved"})
            ASSERT_TRUE(pq::run(c->get(), (std::string("DROP TABLE pwsync_") + name).c_str(), "drop")) << name;
        ASSERT_TRUE(pq::exec(c->get(), "UPDATE pwsync_settings SET v = $2 WHERE k = $1", {"schema", v}, "downgrade"));
    } else {
        edit_lmdb(folder, [&](MDB_txn* txn) { downgrade_lmdb(txn, v); });
    }


    auto s = Store::open(options());
    ASSERT_TRUE(s) << s.error().message;
    store_.emplace(std::move(*s));
    EXPECT_EQ(r().unresolved_mappings()->size(), 5u);
    EXPECT_EQ(found(kGuid), (std::vector<std::string>{"A", "D"}));
    EXPECT_TRUE(store().verify()->problems.empty());
    note(bob(), 4);
    EXPECT_TRUE(r().unresolved_mappings()->empty());
    for (const auto& n : forms_) EXPECT_EQ(found(n), all_) << n;
}

// A mapping without a GUID must be on the unresolved list (account_mappings
// looks for such mappings by name only while the list is not empty): `store
// verify` reports one that is not.
TEST_P(AccountsTest, VerifyReportsAGuidlessMappingOffTheUnresolvedList) {
    EXPECT_TRUE(store().verify()->problems.empty());
    const std::string folder = store().info().dir;
    const std::string key("a\0bob", 5);  // mapping A / bob
    store_.reset();
    if (backend().name == "postgresql") {
        auto c = pq::connect(folder, {});
        ASSERT_TRUE(c) << c.error().message;
        ASSERT_TRUE(pq::exec(c->get(), "DELETE FROM pwsync_mappings_unresolved WHERE k = $1", {key}, "unlist"));
    } else {
        edit_lmdb(folder, [&](MDB_txn* txn) {
            MDB_dbi dbi = 0;
            ASSERT_EQ(mdb_dbi_open(txn, "mappings_unresolved", 0, &dbi), 0);
            MDB_val k{key.size(), const_cast<char*>(key.data())};
            ASSERT_EQ(mdb_del(txn, dbi, &k, nullptr), 0);
        });
    }
    auto s = Store::open(options());
    ASSERT_TRUE(s) << s.error().message;
    store_.emplace(std::move(*s));
    auto report = store().verify();
    ASSERT_OK(report);
    ASSERT_EQ(report->problems.size(), 1u);
    EXPECT_NE(report->problems.front().find("mappings/A/bob: has no objectGUID and is missing from the unresolved list"),
              std::string::npos)
        << report->problems.front();
}

// What a lookup answered, recorded (WriteTxn::record_resolution): answers
// for mappings naming one account by different names, in one transaction,
// agree with each other; an answer for a mapping resolved to another
// account meanwhile, or deleted, is not written; an answer asked before the
// account's record was stamped leaves the record as it is.
TEST_P(AccountsTest, RecordResolutionAgreesSkipsAndKeepsNewerRecords) {
    const TimePoint asked = clock_.now();
    AccountNames other = bob();
    other.guid = "{00000000-1111-2222-3333-444444444444}";
    {
        auto t = w();
        EXPECT_EQ(t.record_resolution({"A", "bob"}, "", bob(), asked), true);
        // B is resolved by the first answer already (one of bob's names).
        EXPECT_EQ(t.record_resolution({"B", "TEST\\bob"}, "", bob(), asked), true);
        EXPECT_EQ(t.record_resolution({"C", "Bob@Test.Example"}, "", other, asked), false);
        EXPECT_EQ(t.record_resolution({"A", "nobody"}, "", bob(), asked), false);
        ASSERT_OK(t.commit());
    }
    EXPECT_EQ(r().mapping({"C", "Bob@Test.Example"})->object_guid, kGuid);
    EXPECT_FALSE(*r().account(other.guid));
    // Renamed after the question: the answer does not undo it.
    clock_.advance(std::chrono::seconds(1));
    AccountNames robert = bob();
    robert.sam = "robert";
    note(robert, 0);
    {
        auto t = w();
        EXPECT_EQ(t.record_resolution({"E", "CN=bob,CN=Users,DC=test,DC=example"}, "", bob(), asked), true);
        ASSERT_OK(t.commit());
    }
    EXPECT_EQ((*r().account("TEST\\robert"))->guid, kGuid);
    EXPECT_FALSE(*r().account("TEST\\bob"));
}

PWSYNC_STORE_SUITE(AccountsTest);

}  // namespace
}  // namespace pwsync::store::testing
