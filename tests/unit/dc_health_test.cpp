// Which DC is not capturing: the engine counts each password change the
// watcher saw against the DC it was made on, and names that DC on the
// stale accounts; /metrics and cn=monitor show it.
#include <gtest/gtest.h>

#include "engine.h"
#include "helpers.h"
#include "metrics.h"
#include "pwsync/dc_health.h"

namespace pwsync::gateway {
namespace {

std::int64_t filetime_of(TimePoint t) {
    return (std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count() + 11'644'473'600LL) * 10'000'000;
}

class DcHealthTest : public ::testing::Test {
protected:
    void SetUp() override {
        store::Options o;
        o.uri = "lmdb:" + (dir_ / "store") + "?map_size=1073741824";
        o.clock = &clock_;
        store_.emplace(std::move(*store::Store::init(o)));
        auto w = std::move(*store_->write("admin"));
        store::App app;
        app.name = "LINUX";
        ASSERT_TRUE(w.create_app(app));
        store::Adapter a;
        a.name = "ext-ldap";
        a.type = "exec";
        a.flags.enabled = true;
        a.flags.sync_to_adapter = true;
        ASSERT_TRUE(w.create_adapter(a));
        ASSERT_TRUE(w.add_app_to_adapter("ext-ldap", "LINUX"));
        for (auto [win, ext] : {std::pair{"TEST\\alice", "alice"}, std::pair{"TEST\\bob", "bob"}}) {
            store::Mapping m;
            m.app = "LINUX";
            m.windows = win;
            m.external = ext;
            ASSERT_TRUE(w.create_mapping(m));
        }
        store::Principal dc;
        dc.name = "hook-dc1";
        dc.kind = store::PrincipalKind::windows;
        dc.capture = store::CaptureMode::pre_commit;
        ASSERT_TRUE(w.create_principal(dc, Secret("dc1-secret-123456")));
        for (auto mode : {store::SyncMode::windows, store::SyncMode::partial, store::SyncMode::full})
            ASSERT_TRUE(w.set_sync(mode, true));
        ASSERT_TRUE(w.commit());
        EngineOptions opts;
        opts.clock = &clock_;
        opts.domain = "TEST";
        engine_.emplace(*store_, opts);
    }

    // A change the watcher saw, made on `dc` a second ago.
    void seen(const char* account, const char* dc) {
        clock_.advance(std::chrono::seconds(1));
        ASSERT_TRUE(engine_->watcher_page({{account, filetime_of(clock_.now()), 0, false, dc}}, "watcher", "c"));
        clock_.advance(std::chrono::seconds(1));
    }
    void captured(const char* account, const char* dc, const std::string& pw) {
        ASSERT_EQ(engine_->change("hook-dc1", account, nullptr, Secret(pw)).outcome, ChangeOutcome::stored);
        seen(account, dc);
    }
    store::DcHealth of(const std::string& dc) {
        auto r = std::move(*store_->read());
        auto all = store::dc_health(r);
        EXPECT_TRUE(all);
        for (auto& d : *all)
            if (d.dc == dc) return d;
        ADD_FAILURE() << "no such DC " << dc;
        return {};
    }

    test::TempDir dir_;
    ManualClock clock_{from_unix_micros(1'790'000'000'000'000)};
    std::optional<store::Store> store_;
    std::optional<Engine> engine_;
};

TEST_F(DcHealthTest, EachChangeCountsAgainstTheDcItWasMadeOn) {
    captured("alice", "dc1.test.example", "Alice-New-1");
    captured("bob", "dc1.test.example", "Bob-New-1");
    seen("bob", "dc2.test.example");  // no hook there
    const auto dc1 = of("dc1.test.example"), dc2 = of("dc2.test.example");
    EXPECT_EQ(dc1.captured, 2u);
    EXPECT_EQ(dc1.uncaptured, 0u);
    EXPECT_EQ(dc1.last_principal, "hook-dc1");
    EXPECT_NE(dc1.last_capture, 0);
    EXPECT_EQ(store::dc_verdict(dc1, clock_.now()), store::DcVerdict::capturing);
    EXPECT_EQ(dc2.captured, 0u);
    EXPECT_EQ(dc2.uncaptured, 1u);
    EXPECT_EQ(dc2.last_capture, 0);
    EXPECT_EQ(store::dc_verdict(dc2, clock_.now()), store::DcVerdict::silent);
    // A DC with a hook that misses some: partly.
    seen("alice", "dc1.test.example");
    EXPECT_EQ(store::dc_verdict(of("dc1.test.example"), clock_.now()), store::DcVerdict::partly);
    // Replayed after a crash: counted once.
    const auto before = of("dc2.test.example").uncaptured;
    ASSERT_TRUE(engine_->watcher_page({{"bob", filetime_of(clock_.now() - std::chrono::seconds(4)), 0, false, "dc2.test.example"}},
                                      "watcher", "c"));
    EXPECT_EQ(of("dc2.test.example").uncaptured, before);
}

TEST_F(DcHealthTest, AnUnmappedAccountsChangeSaysNothingOfTheDc) {
    // carol has no mapping: a hook's capture of her change is answered
    // no_mapping and never kept, so it could never count as captured.
    captured("alice", "dc1.test.example", "Alice-New-1");
    ASSERT_EQ(engine_->change("hook-dc1", "carol", nullptr, Secret("Carol-New-1")).outcome, ChangeOutcome::no_mapping);
    seen("carol", "dc1.test.example");
    seen("carol", "dc2.test.example");
    const auto dc1 = of("dc1.test.example");
    EXPECT_EQ(dc1.captured, 1u);
    EXPECT_EQ(dc1.uncaptured, 0u);
    EXPECT_EQ(store::dc_verdict(dc1, clock_.now()), store::DcVerdict::capturing);
    auto r = std::move(*store_->read());
    auto all = *store::dc_health(r);
    EXPECT_TRUE(std::none_of(all.begin(), all.end(), [](const auto& d) { return d.dc == "dc2.test.example"; }));
    EXPECT_FALSE(*store::stale_info(r, "carol"));
}

TEST_F(DcHealthTest, TheVerdictLooksAtTheLastDay) {
    seen("bob", "dc2.test.example");
    clock_.advance(std::chrono::hours(25));
    captured("bob", "dc2.test.example", "Bob-New-2");  // the hook was installed since
    const auto dc2 = of("dc2.test.example");
    EXPECT_EQ(dc2.uncaptured, 1u);  // still counted in the total
    EXPECT_EQ(store::dc_window(dc2, clock_.now()).uncaptured, 0u);
    EXPECT_EQ(store::dc_verdict(dc2, clock_.now()), store::DcVerdict::capturing);
    EXPECT_EQ(dc2.recent.size(), 1u);  // the old one pruned
}

TEST_F(DcHealthTest, AStaleAccountNamesTheDcAndSinceWhen) {
    const auto first = clock_.now() + std::chrono::seconds(1);
    seen("bob", "dc2.test.example");
    clock_.advance(std::chrono::minutes(5));
    seen("bob", "dc3.test.example");
    auto r = std::move(*store_->read());
    EXPECT_EQ(r.mapping({"LINUX", "TEST\\bob"})->status, store::MappingStatus::stale);
    auto info = *store::stale_info(r, "bob");
    ASSERT_TRUE(info);
    EXPECT_EQ(info->since, std::chrono::duration_cast<std::chrono::seconds>(first.time_since_epoch()).count());
    EXPECT_GT(info->last, info->since);
    EXPECT_EQ(info->dc, "dc3.test.example");
    auto audit = *r.audit();
    EXPECT_TRUE(std::any_of(audit.begin(), audit.end(), [](const auto& a) {
        return a.action == "change.uncaptured" && a.detail.find("made on DC dc2.test.example") != std::string::npos;
    }));
    // The user's next change is captured: in step, nothing stale left.
    captured("bob", "dc1.test.example", "Bob-New-3");
    auto r2 = std::move(*store_->read());
    EXPECT_EQ(r2.mapping({"LINUX", "TEST\\bob"})->status, store::MappingStatus::ok);
    EXPECT_FALSE(*store::stale_info(r2, "bob"));
}

TEST(DcHealthRecord, RoundTripsAndSkipsWhatDoesNotDecode) {
    std::vector<store::DcHealth> all;
    const TimePoint t0 = from_unix_micros(1'790'000'000'000'000);
    store::note_dc_change(all, "dc1.test.example", true, t0, "hook\tdc1");
    store::note_dc_change(all, "", false, t0 + std::chrono::seconds(5));
    const std::string text = store::encode_dc_health(all);
    auto back = store::decode_dc_health(text + "garbage line\nx\t1\t2\n");
    ASSERT_EQ(back.size(), 2u);
    EXPECT_EQ(back[0].dc, "dc1.test.example");
    EXPECT_EQ(back[0].captured, 1u);
    EXPECT_EQ(back[0].last_principal, "hook_dc1");  // a tab would split the record
    ASSERT_EQ(back[0].recent.size(), 1u);
    EXPECT_TRUE(back[0].recent[0].captured);
    EXPECT_EQ(back[1].dc, "unknown");
    EXPECT_EQ(back[1].uncaptured, 1u);
    EXPECT_EQ(store::encode_dc_health(back), text);
    EXPECT_FALSE(store::decode_stale_info(""));
    EXPECT_FALSE(store::decode_stale_info("1\tx\tdc"));
}

TEST(DcHealthRecord, MetricsAndMonitorShowEachDc) {
    Figures f;
    f.now = from_unix_micros(1'790'000'000'000'000);
    store::note_dc_change(f.dcs, "dc1.test.example", true, f.now - std::chrono::minutes(2), "hook-dc1");
    store::note_dc_change(f.dcs, "dc2.test.example", false, f.now - std::chrono::minutes(1));
    const std::string text = prometheus_text(f);
    for (const char* want : {"pwsync_dc_password_changes_total{dc=\"dc1.test.example\",captured=\"true\"} 1\n",
                             "pwsync_dc_password_changes_total{dc=\"dc2.test.example\",captured=\"false\"} 1\n",
                             "pwsync_dc_uncaptured_24h{dc=\"dc2.test.example\"} 1\n",
                             "pwsync_dc_capture_verdict{dc=\"dc2.test.example\",verdict=\"silent\"} 1\n",
                             "pwsync_dc_capture_verdict{dc=\"dc2.test.example\",verdict=\"capturing\"} 0\n",
                             "pwsync_dc_capture_verdict{dc=\"dc1.test.example\",verdict=\"capturing\"} 1\n"})
        EXPECT_NE(text.find(want), std::string::npos) << want;
    const auto entries = monitor_entries(f);
    const auto dc2 = std::find_if(entries.begin(), entries.end(), [](const auto& e) { return e.dn == "cn=dc2.test.example,cn=dcs,cn=monitor"; });
    ASSERT_NE(dc2, entries.end());
    const auto verdict = std::find_if(dc2->attributes.begin(), dc2->attributes.end(), [](const auto& a) { return a.first == "pwsyncVerdict"; });
    ASSERT_NE(verdict, dc2->attributes.end());
    EXPECT_EQ(verdict->second, std::vector<std::string>{"silent"});
}

}  // namespace
}  // namespace pwsync::gateway
