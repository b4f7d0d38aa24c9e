// Mapping rules in the store: records, the rule a mapping names, deletion
// with and without the mappings, conflicts noted once, old records.
#include "codec.h"
#include "records.h"
#include "store_fixture.h"

namespace pwsync::store::testing {
namespace {

class RuleStoreTest : public StoreTest {
protected:
    void SetUp() override {
        StoreTest::SetUp();
        make_app("LINUX");
    }
    static Rule rule(const std::string& name) {
        Rule r;
        r.name = name;
        r.app = "linux";
        r.scope.group = "CN=Staff,CN=Users,DC=test,DC=example";
        r.external = "{sAMAccountName|lower}";
        return r;
    }
    Status rule_map(const std::string& windows, const std::string& external, const std::string& by) {
        auto t = w();
        Mapping m;
        m.app = "LINUX";
        m.windows = windows;
        m.external = external;
        m.rule = by;
        PWSYNC_TRY(t.create_mapping(m));
        return t.commit();
    }
    std::vector<std::string> actions() {
        std::vector<std::string> out;
        const auto all = r().audit();
        for (const auto& a : *all) out.push_back(a.action);
        return out;
    }
    static std::size_t count(const std::vector<std::string>& v, const std::string& what) {
        return static_cast<std::size_t>(std::count(v.begin(), v.end(), what));
    }
};

TEST_P(RuleStoreTest, CreateShowUpdateAndAudit) {
    {
        auto t = w();
        Rule r = rule("Staff");
        r.scope.base = "OU=People,DC=test,DC=example";
        r.scope.filter = "(department=IT)";
        ASSERT_OK(t.create_rule(r));
        EXPECT_ERRC(t.create_rule(rule("STAFF")), Errc::already_exists);
        ASSERT_OK(t.commit());
    }
    auto got = r().rule("staff");
    ASSERT_OK(got);
    EXPECT_EQ(got->name, "Staff");
    EXPECT_EQ(got->app, "LINUX");  // the application's own spelling
    EXPECT_EQ(got->scope.base, "OU=People,DC=test,DC=example");
    EXPECT_EQ(got->scope.filter, "(department=IT)");
    EXPECT_EQ(got->external, "{sAMAccountName|lower}");
    EXPECT_TRUE(got->enabled);
    EXPECT_FALSE(got->allow_external_updates);
    EXPECT_EQ(got->created, clock_.now());

    clock_.advance(std::chrono::seconds(5));
    Rule changed = *got;
    changed.enabled = false;
    changed.allow_external_updates = true;
    changed.external = "{employeeID}";
    {
        auto t = w();
        ASSERT_OK(t.update_rule(changed));
        ASSERT_OK(t.commit());
    }
    got = r().rule("Staff");
    ASSERT_OK(got);
    EXPECT_FALSE(got->enabled);
    EXPECT_TRUE(got->allow_external_updates);
    EXPECT_EQ(got->external, "{employeeID}");
    EXPECT_EQ(got->updated, clock_.now());
    EXPECT_NE(got->created, got->updated);
    EXPECT_EQ(r().rules()->size(), 1u);
    EXPECT_EQ(r().counts()->rules, 1u);
    const auto a = actions();
    EXPECT_EQ(count(a, "rule.create"), 1u);
    EXPECT_EQ(count(a, "rule.update"), 1u);
    EXPECT_TRUE(store().verify()->problems.empty());
}

TEST_P(RuleStoreTest, BadRulesAreRefused) {
    auto t = w();
    Rule r = rule("x");
    r.scope = {};
    EXPECT_ERRC(t.create_rule(r), Errc::invalid_argument);  // no scope: never "every account"
    r = rule("x");
    r.external.clear();
    EXPECT_ERRC(t.create_rule(r), Errc::invalid_argument);
    r = rule("x");
    r.app = "missing";
    EXPECT_ERRC(t.create_rule(r), Errc::not_found);
    r = rule("");
    EXPECT_ERRC(t.create_rule(r), Errc::invalid_argument);
    EXPECT_ERRC(t.update_rule(rule("missing")), Errc::not_found);
    EXPECT_ERRC(t.delete_rule("missing", false), Errc::not_found);
}

TEST_P(RuleStoreTest, MappingsNameTheirRuleAndGoWithIt) {
    {
        auto t = w();
        ASSERT_OK(t.create_rule(rule("staff")));
        ASSERT_OK(t.commit());
    }
    ASSERT_OK(rule_map("TEST\\alice", "alice", "staff"));
    ASSERT_OK(rule_map("TEST\\bob", "bob", "staff"));
    ASSERT_OK(map("LINUX", "TEST\\carol", "carol"));  // by hand
    EXPECT_EQ(r().mapping({"linux", "test\\alice"})->rule, "staff");
    EXPECT_EQ(r().mapping({"linux", "test\\carol"})->rule, "");
    EXPECT_EQ(r().rule_mappings("STAFF")->size(), 2u);
    // The application cannot go while a rule uses it.
    {
        auto t = w();
        EXPECT_ERRC(t.delete_app("LINUX"), Errc::in_use);
    }
    {
        auto t = w();
        ASSERT_OK(t.delete_rule("staff", false));
        ASSERT_OK(t.commit());
    }
    EXPECT_ERRC(r().rule("staff"), Errc::not_found);
    EXPECT_EQ(r().mappings()->size(), 1u);  // the hand-made one stays
    EXPECT_EQ(r().mappings()->front().windows, "TEST\\carol");
    const auto a = actions();
    EXPECT_EQ(count(a, "mapping.delete"), 2u);
    EXPECT_EQ(count(a, "rule.delete"), 1u);
    EXPECT_TRUE(store().verify()->problems.empty());
}

TEST_P(RuleStoreTest, KeepMappingsMakesThemHandMade) {
    {
        auto t = w();
        ASSERT_OK(t.create_rule(rule("staff")));
        ASSERT_OK(t.commit());
    }
    ASSERT_OK(rule_map("TEST\\alice", "alice", "staff"));
    {
        auto t = w();
        ASSERT_OK(t.delete_rule("staff", true));
        ASSERT_OK(t.commit());
    }
    auto m = r().mapping({"LINUX", "TEST\\alice"});
    ASSERT_OK(m);
    EXPECT_EQ(m->rule, "");
    EXPECT_EQ(count(actions(), "mapping.keep"), 1u);
    EXPECT_TRUE(store().verify()->problems.empty());
}

TEST_P(RuleStoreTest, ExternalIdChangeKeepsIndexesAndChecksConflicts) {
    ASSERT_OK(rule_map("TEST\\alice", "alice", ""));
    ASSERT_OK(map("LINUX", "TEST\\bob", "bob"));
    {
        auto t = w();
        EXPECT_ERRC(t.set_mapping_external({"LINUX", "TEST\\alice"}, "bob"), Errc::conflict);
        ASSERT_OK(t.set_mapping_external({"LINUX", "TEST\\alice"}, "alice.smith"));
        ASSERT_OK(t.commit());
    }
    EXPECT_TRUE(r().mappings_by_external("LINUX", "alice")->empty());
    ASSERT_EQ(r().mappings_by_external("LINUX", "alice.smith")->size(), 1u);
    EXPECT_EQ(count(actions(), "mapping.external"), 1u);
    EXPECT_TRUE(store().verify()->problems.empty());
}

TEST_P(RuleStoreTest, AStandingConflictIsAuditedOnce) {
    {
        auto t = w();
        ASSERT_OK(t.create_rule(rule("staff")));
        ASSERT_OK(t.commit());
    }
    for (int i = 0; i < 3; ++i) {
        auto t = w();
        ASSERT_OK(t.note_rule_evaluation("staff", {"alice and bob both give external user 'x'"}));
        ASSERT_OK(t.commit());
    }
    {
        auto t = w();
        ASSERT_OK(t.note_rule_evaluation("staff", {"alice and bob both give external user 'x'", "carol: hand-made wins"}));
        ASSERT_OK(t.commit());
    }
    EXPECT_EQ(count(actions(), "rule.conflict"), 2u);
    auto got = r().rule("staff");
    ASSERT_OK(got);
    EXPECT_EQ(got->conflicts.size(), 2u);
    EXPECT_EQ(got->evaluated, clock_.now());
    {
        auto t = w();
        ASSERT_OK(t.note_rule_evaluation("staff", {}));
        ASSERT_OK(t.commit());
    }
    EXPECT_TRUE(r().rule("staff")->conflicts.empty());
}

PWSYNC_STORE_SUITE(RuleStoreTest);

// A mapping record written before rules (no field 11) is a hand-made one,
// and a record with the field decodes it.
TEST(RuleRecords, OldMappingRecordsHaveNoRule) {
    const std::string old = codec::Encoder(records::kFormat).str(1, "A").str(2, "bob").str(3, "b").boolean(4, true).take();
    auto rec = records::decode_mapping(old);
    ASSERT_TRUE(rec) << rec.error().message;
    EXPECT_EQ(rec->mapping.rule, "");
    rec->mapping.rule = "staff";
    auto again = records::decode_mapping(records::encode(*rec));
    ASSERT_TRUE(again);
    EXPECT_EQ(again->mapping.rule, "staff");
    Rule r;
    r.name = "n";
    r.app = "a";
    r.scope.filter = "(x=1)";
    r.external = "{cn}";
    r.conflicts = {"one", "two"};
    auto back = records::decode_rule(records::encode(r));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->conflicts, r.conflicts);
    EXPECT_EQ(back->scope.filter, "(x=1)");
}

}  // namespace
}  // namespace pwsync::store::testing
