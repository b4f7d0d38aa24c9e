// Master key handling: file modes, wrong keys, rotation, and sealed values
// moved between records underneath the store.
#include <sys/stat.h>

#include <filesystem>

#include "raw_store_edit.h"
#include "records.h"
#include "store_fixture.h"

namespace pwsync::store::testing {
namespace {

class KeyTest : public StoreTest {
protected:
    void set_credential(const std::string& windows, const std::string& pw) {
        auto t = w();
        ASSERT_OK(t.set_mapping_credential({"RACF", windows}, Secret(pw)));
        ASSERT_OK(t.commit());
    }
    std::string key_file() const { return key_file_; }
};

TEST_P(KeyTest, KeyFileReadableByOthersIsRefused) {
    store_.reset();
    for (mode_t mode : {0640, 0604, 0660, 0700 | 0004}) {
        ::chmod(key_file().c_str(), mode);
        auto s = Store::open(options());
        ASSERT_FALSE(s);
        EXPECT_EQ(s.error().code, Errc::permission);
        EXPECT_NE(s.error().message.find("chmod 600"), std::string::npos);
    }
    ::chmod(key_file().c_str(), 0600);
    EXPECT_TRUE(Store::open(options()));
    struct stat st {};
    ASSERT_EQ(::stat(key_file().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_EQ(st.st_size, 32);
}

TEST_P(KeyTest, WrongOrMissingKeyIsRefused) {
    store_.reset();
    const std::string saved = test::read_file(key_file());
    test::write_file(key_file(), std::string(32, 'x'));
    auto s = Store::open(options());
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, Errc::crypto);
    test::write_file(key_file(), "short");
    EXPECT_ERRC(Store::open(options()), Errc::crypto);
    std::filesystem::remove(key_file());
    EXPECT_ERRC(Store::open(options()), Errc::not_found);
    test::write_file(key_file(), saved);
    EXPECT_TRUE(Store::open(options()));
}

TEST_P(KeyTest, SealedValueMovedToAnotherRecordFailsToOpen) {
    make_app("RACF");
    ASSERT_OK(map("RACF", "alice", "ALICE"));
    ASSERT_OK(map("RACF", "bob", "BOB"));
    set_credential("alice", "alice-password-1");
    set_credential("bob", "bob-password-22");
    store_.reset();
    raw_edit(options().uri, [](KvTxn& t) {
        const Table d = tables().mappings;
        auto alice = t.get(d, std::string("racf\0alice", 10));
        auto bob = t.get(d, std::string("racf\0bob", 8));
        ASSERT_TRUE(alice && *alice && bob && *bob);
        // Give bob's record alice's sealed credential (field 7), keeping the rest.
        auto a = records::decode_mapping(**alice);
        auto b = records::decode_mapping(**bob);
        b->sealed_credential = a->sealed_credential;
        ASSERT_TRUE(t.put(d, std::string("racf\0bob", 8), records::encode(*b)));
    });
    store_.emplace(*Store::open(options()));
    EXPECT_EQ(r().mapping_credential({"RACF", "alice"})->view(), "alice-password-1");
    auto moved = r().mapping_credential({"RACF", "bob"});
    ASSERT_FALSE(moved);
    EXPECT_EQ(moved.error().code, Errc::corrupt);
    auto rep = store().verify();
    ASSERT_OK(rep);
    ASSERT_EQ(rep->problems.size(), 1u);
    EXPECT_NE(rep->problems[0].find("RACF/bob"), std::string::npos);
}

TEST_P(KeyTest, VerifyFindsABrokenIndex) {
    make_app("RACF");
    ASSERT_OK(map("RACF", "alice", "ALICE"));
    store_.reset();
    raw_edit(options().uri, [](KvTxn& t) {
        ASSERT_TRUE(t.del(tables().map_by_ext, std::string("racf\0alice\0alice", 16)));
        ASSERT_TRUE(t.put(tables().map_by_win, std::string("ghost\0racf", 10), ""));
    });
    store_.emplace(*Store::open(options()));
    auto rep = store().verify();
    ASSERT_OK(rep);
    ASSERT_EQ(rep->problems.size(), 2u);
    EXPECT_NE(rep->problems[0].find("external user index"), std::string::npos);
    EXPECT_NE(rep->problems[1].find("ghost"), std::string::npos);
}

TEST_P(KeyTest, RotationReSealsEverythingAndRetiresTheOldKey) {
    make_app("RACF");
    for (int i = 0; i < 50; ++i) ASSERT_OK(map("RACF", "user" + std::to_string(i), "ext" + std::to_string(i)));
    for (int i = 0; i < 50; i += 2) set_credential("user" + std::to_string(i), "password-" + std::to_string(i));
    {
        auto t = w();
        Adapter a;
        a.name = "ad1";
        a.type = "ldap";
        std::map<std::string, Secret> s;
        s.emplace("bind-password", Secret("adapter-secret"));
        ASSERT_OK(t.create_adapter(a, std::move(s)));
        ASSERT_OK(t.commit());
    }
    const std::string old_key = test::read_file(key_file());
    const auto old_id = store().info().key_id;
    auto id = store().rotate_key("tester");
    ASSERT_OK(id);
    EXPECT_NE(*id, old_id);
    EXPECT_EQ(store().info().key_id, *id);
    EXPECT_NE(test::read_file(key_file()), old_key);
    EXPECT_FALSE(std::filesystem::exists(key_file() + ".new"));
    for (int i = 0; i < 50; i += 2)
        EXPECT_EQ(r().mapping_credential({"RACF", "user" + std::to_string(i)})->view(), "password-" + std::to_string(i));
    EXPECT_EQ(r().adapter_secret("ad1", "bind-password")->view(), "adapter-secret");
    EXPECT_EQ(r().audit()->back().action, "key.rotate");
    auto rep = store().verify();
    ASSERT_OK(rep);
    EXPECT_TRUE(rep->problems.empty());
    EXPECT_EQ(rep->secrets, 25u + 1u + 1u);
    // The old key no longer opens the store.
    store_.reset();
    test::write_file(key_file() + ".saved", test::read_file(key_file()));
    test::write_file(key_file(), old_key);
    EXPECT_ERRC(Store::open(options()), Errc::crypto);
    test::write_file(key_file(), test::read_file(key_file() + ".saved"));
    ASSERT_TRUE(Store::open(options()));
}

// Another process (here: a second Store handle after a rotation) keeps
// sealing with the key the store is on, not the one it loaded.
TEST_P(KeyTest, WritersFollowARotationMadeElsewhere) {
    make_app("RACF");
    ASSERT_OK(map("RACF", "alice", "ALICE"));
    set_credential("alice", "before-rotation");
    ASSERT_OK(store().rotate_key("tester"));
    set_credential("alice", "after-rotation");
    EXPECT_EQ(r().mapping_credential({"RACF", "alice"})->view(), "after-rotation");
    EXPECT_TRUE(store().verify()->problems.empty());
}

// A rotation that stopped after writing the new key but before committing
// leaves master.key.new; the next open removes it and the old key stays.
TEST_P(KeyTest, InterruptedRotationIsRecovered) {
    make_app("RACF");
    ASSERT_OK(map("RACF", "alice", "ALICE"));
    set_credential("alice", "still-here");
    store_.reset();
    const std::string current = test::read_file(key_file());
    test::write_file(key_file() + ".new", std::string(32, 'n'));  // never committed
    auto s = Store::open(options());
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_FALSE(std::filesystem::exists(key_file() + ".new"));
    EXPECT_EQ(test::read_file(key_file()), current);
    store_.emplace(std::move(*s));
    EXPECT_EQ(r().mapping_credential({"RACF", "alice"})->view(), "still-here");
}

PWSYNC_STORE_SUITE(KeyTest);

}  // namespace
}  // namespace pwsync::store::testing
