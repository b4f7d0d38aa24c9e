// The sync engine's decisions, against a real store; AD is a fake writer here
// (the integration tests use the real Samba DC).
#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include <algorithm>

#include "engine.h"
#include "handler.h"
#include "ldap_search.h"
#include "faulty_backend.h"
#include "raw_store_edit.h"
#include "metrics.h"
#include "pwsync/dc_health.h"
#include "helpers.h"

namespace pwsync::gateway {
namespace {

class EngineTest : public ::testing::Test {
protected:
    virtual std::string store_uri() { return "lmdb:" + (dir_ / "store") + "?map_size=1073741824"; }  // 1 GiB: tests stay small
    void SetUp() override {
        store::Options o;
        o.uri = store_uri();
        o.clock = &clock_;
        store_.emplace(std::move(*store::Store::init(o)));
        auto w = std::move(*store_->write("admin"));
        for (auto name : {"LINUX", "RACF"}) {
            store::App a;
            a.name = name;
            ASSERT_TRUE(w.create_app(a));
        }
        for (auto name : {"ext-ldap", "racf"}) {
            store::Adapter a;
            a.name = name;
            a.type = "exec";
            a.flags.enabled = true;
            a.flags.sync_to_adapter = true;
            a.flags.sync_from_adapter = true;
            a.flags.change_windows_password = true;
            ASSERT_TRUE(w.create_adapter(a));
        }
        ASSERT_TRUE(w.add_app_to_adapter("ext-ldap", "LINUX"));
        ASSERT_TRUE(w.add_app_to_adapter("racf", "RACF"));
        for (auto [app, win, ext] : {std::tuple{"LINUX", "TEST\\alice", "alice"}, std::tuple{"RACF", "TEST\\alice", "ALICE01"},
                                     std::tuple{"LINUX", "TEST\\bob", "bob"}}) {
            store::Mapping m;
            m.app = app;
            m.windows = win;
            m.external = ext;
            ASSERT_TRUE(w.create_mapping(m));
        }
        ASSERT_TRUE(w.set_mapping_credential({"LINUX", "TEST\\alice"}, Secret("Linux-Old-1")));
        store::Principal dc;
        dc.name = "dc1";
        dc.kind = store::PrincipalKind::windows;
        dc.capture = store::CaptureMode::post_commit;
        ASSERT_TRUE(w.create_principal(dc, Secret("dc1-secret-123456")));
        dc.name = "dc-pre";
        dc.capture = store::CaptureMode::pre_commit;
        ASSERT_TRUE(w.create_principal(dc, Secret("dc1-secret-123456")));
        store::Principal agent;
        agent.name = "ldap-agent";
        agent.kind = store::PrincipalKind::adapter;
        agent.adapter = "ext-ldap";
        agent.certificate_subject = "CN=ldap-agent,O=Test";
        ASSERT_TRUE(w.create_principal(agent, Secret("agent-secret-123456")));
        for (auto mode : {store::SyncMode::windows, store::SyncMode::partial, store::SyncMode::full})
            ASSERT_TRUE(w.set_sync(mode, true));
        ASSERT_TRUE(w.commit());

        EngineOptions opts;
        opts.clock = &clock_;
        opts.domain = "TEST";
        opts.ad_writer = [this](std::string_view account, const Secret& pw) -> Status {
            ad_calls_.emplace_back(std::string(account) + "=" + std::string(pw.view()));
            clock_.advance(ad_write_takes_);
            if (ad_mode_ == "refuse") return fail(Errc::refused, "0000052D: the password does not meet the complexity criteria!");
            if (ad_mode_ == "down") return fail(Errc::unavailable, "Can't contact LDAP server");
            return {};
        };
        opts.queued = [this] { ++wakes_; };
        // The directory's word on an account: as set by the test, else an
        // ordinary enabled account.
        opts.account_state = [this](std::string_view account) -> Result<AccountState> {
            ++state_calls_;
            clock_.advance(state_takes_);
            if (ad_mode_ == "down") return fail(Errc::unavailable, "Can't contact LDAP server");
            if (const auto e = state_errors_.find(ascii_lower(account)); e != state_errors_.end())
                return std::unexpected(e->second);
            const auto it = states_.find(ascii_lower(account));
            return it == states_.end() ? AccountState{} : it->second;
        };
        opts.account_of_dn = [](std::string_view dn) -> Result<std::string> {
            std::string squeezed = ascii_lower(dn);  // AD compares DNs its own way; this fake drops spaces
            std::erase(squeezed, ' ');
            if (squeezed == "cn=alice,cn=users,dc=test,dc=example") return std::string("alice");
            return fail(Errc::not_found, "no such object");
        };
        engine_.emplace(*store_, opts);
        store_options_ = o;
        engine_options_ = std::move(opts);
    }

    // Closes the store, edits its raw tables, opens it again under a new engine.
    template <class F>
    void edit_underneath(F edit) {
        engine_.reset();
        store_.reset();
        store::testing::raw_edit(store_options_.uri, edit);
        auto reopened = store::Store::open(store_options_);
        ASSERT_TRUE(reopened) << reopened.error().message;
        store_.emplace(std::move(*reopened));
        engine_.emplace(*store_, engine_options_);
    }

    // A monitor principal (`adapter`: one it may not have).
    Status add_monitor(const char* name, const char* adapter = "") {
        return store_->transact("admin", [&](store::WriteTxn& w) {
            store::Principal mon;
            mon.name = name;
            mon.kind = store::PrincipalKind::monitor;
            mon.adapter = adapter;
            return w.create_principal(mon, Secret("monitor-secret-123"));
        });
    }
    void set(store::SyncMode mode, bool on) {
        auto w = std::move(*store_->write("admin"));
        ASSERT_TRUE(w.set_sync(mode, on));
        ASSERT_TRUE(w.commit());
    }
    void adapter(const char* name, store::AdapterUpdate u) {
        auto w = std::move(*store_->write("admin"));
        ASSERT_TRUE(w.update_adapter(name, std::move(u)));
        ASSERT_TRUE(w.commit());
    }
    ChangeResult change(const std::string& who, const std::string& id, const std::string& pw, const char* old = nullptr) {
        const Secret o(old ? old : "");
        return engine_->change(who, id, old ? &o : nullptr, Secret(pw));
    }
    // "adapter:external=password" for every queued job, in order.
    std::vector<std::string> queued() {
        std::vector<std::string> out;
        auto r = std::move(*store_->read());
        auto jobs = r.jobs();
        for (const auto& j : *jobs) out.push_back(j.adapter + ":" + j.external + "=" + std::string(r.job_password(j.id)->view()));
        return out;
    }
    std::string credential(const char* app, const char* win) {
        auto r = std::move(*store_->read());
        auto c = r.mapping_credential({app, win});
        return c ? std::string(c->view()) : "(none)";
    }

    test::TempDir dir_;
    ManualClock clock_{from_unix_micros(1'790'000'000'000'000)};
    store::Options store_options_;
    EngineOptions engine_options_;
    std::optional<store::Store> store_;
    std::optional<Engine> engine_;
    std::vector<std::string> ad_calls_;
    std::string ad_mode_ = "ok";
    int wakes_ = 0;
    std::map<std::string, AccountState> states_;  // lower(account) -> what the directory says
    std::map<std::string, Error> state_errors_;   // lower(account) -> the directory's error instead
    int state_calls_ = 0;
    // How long the directory takes to answer, on clock_.
    std::chrono::microseconds state_takes_{0}, ad_write_takes_{0};
};

TEST_F(EngineTest, Authenticates) {
    EXPECT_EQ(engine_->authenticate("cn=dc1,ou=principals,o=pwsync", Secret("dc1-secret-123456")), "dc1");
    EXPECT_EQ(engine_->authenticate("DC1", Secret("dc1-secret-123456")), "dc1");
    EXPECT_FALSE(engine_->authenticate("dc1", Secret("dc1-secret-123457")));
    EXPECT_FALSE(engine_->authenticate("nobody", Secret("dc1-secret-123456")));
    EXPECT_EQ(engine_->authenticate_certificate("cn=ldap-agent,o=test"), "ldap-agent");
    EXPECT_FALSE(engine_->authenticate_certificate("CN=someone-else"));
}

// A principal's record the store cannot read is not "invalid credentials":
// that answer (49) is counted by the bind throttle and taken as final by
// pwsync-notify, and a change from it is not "no longer exists" (50, also
// final). Both are failures the sender may retry; a principal that is gone
// is still refused.
TEST_F(EngineTest, APrincipalTheStoreCannotReadIsNeitherAFailedBindNorGone) {
    // "n" reads as record format 110: as if a newer release wrote it.
    edit_underneath([](store::KvTxn& t) { ASSERT_TRUE(t.put(store::tables().principals, "dc1", "not a record")); });
    for (const char* secret : {"dc1-secret-123456", "dc1-secret-123457"}) {
        auto bind = engine_->authenticate("dc1", Secret(secret));
        ASSERT_FALSE(bind);
        EXPECT_NE(bind.error().code, Errc::permission) << bind.error().message;  // the store's own error
    }
    auto gone = engine_->authenticate("nobody", Secret("dc1-secret-123456"));
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code, Errc::permission);
    EXPECT_EQ(engine_->authenticate("dc-pre", Secret("dc1-secret-123456")), "dc-pre");  // the others still bind
    // A certificate is found by a scan of every principal: the unreadable
    // one hides no other, but may be the one a certificate no other has.
    EXPECT_EQ(engine_->authenticate_certificate("cn=ldap-agent,o=test"), "ldap-agent");
    auto cert = engine_->authenticate_certificate("cn=someone-else,o=test");
    ASSERT_FALSE(cert);
    EXPECT_NE(cert.error().code, Errc::permission);

    EngineHandler handler(*engine_);
    const Peer peer{"192.0.2.7", 40000, "", true};
    // A name no principal can have is invalid credentials, not a store error.
    for (const char* dn : {"", "cn=,o=pwsync"}) {
        auto none = handler.bind_simple(dn, Secret("dc1-secret-123456"), peer);
        ASSERT_FALSE(none);
        EXPECT_EQ(none.error().code, ldap_code::invalid_credentials) << dn;
    }
    auto unread = handler.bind_simple("cn=dc1,ou=principals,o=pwsync", Secret("dc1-secret-123456"), peer);
    ASSERT_FALSE(unread);
    EXPECT_EQ(unread.error().code, ldap_code::other) << unread.error().message;
    auto wrong = handler.bind_simple("cn=nobody,ou=principals,o=pwsync", Secret("dc1-secret-123456"), peer);
    ASSERT_FALSE(wrong);
    EXPECT_EQ(wrong.error().code, ldap_code::invalid_credentials);
    EXPECT_TRUE(handler.bind_external({"192.0.2.7", 40000, "CN=ldap-agent,O=Test", true}));
    auto by_cert = handler.bind_external({"192.0.2.7", 40000, "CN=someone-else,O=Test", true});
    ASSERT_FALSE(by_cert);
    EXPECT_EQ(by_cert.error().code, ldap_code::other);

    auto r = change("dc1", "alice", "New-Pass-1");
    EXPECT_EQ(r.outcome, ChangeOutcome::failed) << r.message;
    EXPECT_EQ(change("nobody", "alice", "New-Pass-1").outcome, ChangeOutcome::denied);
    EXPECT_TRUE(queued().empty());
}

// The same engine on a store that fails on demand (faulty_backend.h).
class EngineOutageTest : public EngineTest {
protected:
    std::string store_uri() override { return store::testing::faulty_store_uri(dir_ / "store"); }
    void TearDown() override { store::testing::clear_fault(); }
};

// A store that may answer later (a database failing over, a concurrent
// writer) is an outage for the sender, 52, whatever it asked: a bind with a
// right or wrong secret, by certificate, or a change. Not 49 (which the
// throttle counts and pwsync-notify takes as final), not 80; and nothing is
// queued. Once the store answers again, so does the gateway.
TEST_F(EngineOutageTest, AStoreThatMayAnswerLaterIsAnOutageForBindsAndChanges) {
    EngineHandler handler(*engine_);
    const Peer peer{"192.0.2.7", 40000, "", true};
    ASSERT_TRUE(handler.bind_simple("cn=dc1,ou=principals,o=pwsync", Secret("dc1-secret-123456"), peer));
    for (const Errc code : {Errc::unavailable, Errc::timeout, Errc::busy}) {
        SCOPED_TRACE(errc_name(code));
        store::testing::fail_reads(store::tables().principals, code);
        for (const char* secret : {"dc1-secret-123456", "dc1-secret-000000"}) {
            auto bind = handler.bind_simple("cn=dc1,ou=principals,o=pwsync", Secret(secret), peer);
            ASSERT_FALSE(bind);
            EXPECT_EQ(bind.error().code, ldap_code::unavailable) << bind.error().message;
        }
        auto by_cert = handler.bind_external({"192.0.2.7", 40000, "CN=ldap-agent,O=Test", true});
        ASSERT_FALSE(by_cert);
        EXPECT_EQ(by_cert.error().code, ldap_code::unavailable);
        const auto r = handler.password_modify("dc1", "alice", std::nullopt, Secret("Outage-Pass-1"), peer);
        EXPECT_EQ(r.code, ldap_code::unavailable) << r.message;
        EXPECT_EQ(r.message.find("Outage-Pass-1"), std::string::npos);
    }
    // Past the principal: the account's mappings cannot be read.
    store::testing::fail_reads(store::tables().mappings, Errc::unavailable);
    const auto r = handler.password_modify("dc1", "alice", std::nullopt, Secret("Outage-Pass-1"), peer);
    EXPECT_EQ(r.code, ldap_code::unavailable) << r.message;
    store::testing::clear_fault();
    EXPECT_TRUE(queued().empty());
    EXPECT_TRUE(handler.bind_simple("cn=dc1,ou=principals,o=pwsync", Secret("dc1-secret-123456"), peer));
    EXPECT_TRUE(handler.bind_external({"192.0.2.7", 40000, "CN=ldap-agent,O=Test", true}));
    auto wrong = handler.bind_simple("cn=dc1,ou=principals,o=pwsync", Secret("dc1-secret-000000"), peer);
    ASSERT_FALSE(wrong);
    EXPECT_EQ(wrong.error().code, ldap_code::invalid_credentials);
    EXPECT_EQ(handler.password_modify("dc1", "alice", std::nullopt, Secret("Outage-Pass-1"), peer).code, ldap_code::success);
}

// cn=monitor read from a store that cannot answer: 52 when it may later,
// 80 when it cannot (a record of a newer release), and served again after.
TEST_F(EngineOutageTest, AMonitorSearchTheStoreCannotAnswer) {
    ASSERT_TRUE(add_monitor("nagios"));
    Metrics metrics(clock_);
    FigureSource figures(*store_, metrics, true);
    EngineHandler handler(*engine_, *store_, metrics, figures);
    for (const auto& [table, code, answer] : {std::tuple{store::tables().principals, Errc::unavailable, ldap_code::unavailable},
                                              std::tuple{store::tables().adapters, Errc::timeout, ldap_code::unavailable},
                                              std::tuple{store::tables().adapters, Errc::version, ldap_code::other}}) {
        SCOPED_TRACE(errc_name(code));
        store::testing::fail_reads(table, code);
        auto r = handler.search_subtree("nagios", "cn=monitor");
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, answer) << r.error().message;
    }
    store::testing::clear_fault();
    EXPECT_TRUE(handler.search_subtree("nagios", "cn=monitor"));
}

// A bind proven once is not verified with scrypt again for a while; a
// principal re-created with another secret (the same name, even at the same
// instant) is not let in with the old one.
TEST_F(EngineTest, AVerifiedSecretIsForgottenWhenThePrincipalGetsANewOne) {
    ASSERT_EQ(engine_->authenticate("dc1", Secret("dc1-secret-123456")), "dc1");
    ASSERT_EQ(engine_->authenticate("dc1", Secret("dc1-secret-123456")), "dc1");
    store::Principal dc;
    {
        auto r = store_->read();
        ASSERT_TRUE(r);
        dc = *r->principal("dc1");
    }
    ASSERT_TRUE(store_->transact("admin", [&](store::WriteTxn& w) -> Status {
        PWSYNC_TRY(w.delete_principal("dc1"));
        return w.create_principal(dc, Secret("dc1-secret-654321"));
    }));
    EXPECT_FALSE(engine_->authenticate("dc1", Secret("dc1-secret-123456")));
    EXPECT_EQ(engine_->authenticate("dc1", Secret("dc1-secret-654321")), "dc1");
    // And a wrong secret never passes, however recently the right one did.
    EXPECT_FALSE(engine_->authenticate("dc1", Secret("dc1-secret-654322")));
}

TEST_F(EngineTest, WindowsChangeFansOutToEveryEnabledMapping) {
    const std::uint64_t durable = store_->durable_commits();
    auto r = change("dc1", "alice", "New-Pass-1");  // sam: matches TEST\alice
    EXPECT_EQ(r.outcome, ChangeOutcome::stored) << r.message;
    EXPECT_EQ(store_->durable_commits() - durable, 1u);  // answered once on the disk
    EXPECT_EQ(queued(), (std::vector<std::string>{"ext-ldap:alice=New-Pass-1", "racf:ALICE01=New-Pass-1"}));
    EXPECT_EQ(wakes_, 1);
    // The job carries the stored credential as the old password.
    auto rt = std::move(*store_->read());
    EXPECT_EQ(rt.job_old_password(rt.jobs()->front().id)->view(), "Linux-Old-1");
}

TEST_F(EngineTest, WindowsChangeRespectsSwitchesAndFlags) {
    adapter("racf", [] { store::AdapterUpdate u; u.sync_to_adapter = false; return u; }());
    EXPECT_EQ(change("dc1", "TEST\\alice", "New-Pass-2").outcome, ChangeOutcome::stored);
    EXPECT_EQ(queued(), (std::vector<std::string>{"ext-ldap:alice=New-Pass-2"}));
    set(store::SyncMode::windows, false);
    auto r = change("dc1", "TEST\\bob", "New-Pass-3");
    EXPECT_EQ(r.outcome, ChangeOutcome::refused);
    EXPECT_NE(r.message.find("pwsync sync enable windows"), std::string::npos);
    set(store::SyncMode::windows, true);
    EXPECT_EQ(change("dc1", "TEST\\nobody", "New-Pass-4").outcome, ChangeOutcome::no_mapping);
    EXPECT_EQ(change("dc1", "", "New-Pass-4").outcome, ChangeOutcome::incomplete);
    EXPECT_EQ(change("dc1", "alice", std::string("\xff\xfe", 2)).outcome, ChangeOutcome::bad_password);
}

TEST_F(EngineTest, SameChangeTwiceIsDamped) {
    EXPECT_EQ(change("dc1", "bob", "Same-Pass-1").outcome, ChangeOutcome::stored);
    EXPECT_EQ(change("dc1", "TEST\\bob", "Same-Pass-1").outcome, ChangeOutcome::stored);
    EXPECT_EQ(queued().size(), 1u);
    clock_.advance(std::chrono::minutes(11));
    EXPECT_EQ(change("dc1", "bob", "Same-Pass-1").outcome, ChangeOutcome::stored);
    EXPECT_EQ(queued().size(), 2u);
}

TEST_F(EngineTest, PreCommitCaptureWaitsForTheDirectory) {
    // Two candidates: the first refused by AD (history), the second committed.
    EXPECT_EQ(change("dc-pre", "alice", "Refused-Pass-1").outcome, ChangeOutcome::stored);
    EXPECT_EQ(change("dc-pre", "alice", "Committed-Pass-2").outcome, ChangeOutcome::stored);
    EXPECT_TRUE(queued().empty());
    ASSERT_TRUE(engine_->password_changed("TEST\\alice"));
    EXPECT_EQ(queued(), (std::vector<std::string>{"ext-ldap:alice=Committed-Pass-2", "racf:ALICE01=Committed-Pass-2"}));
    auto r = std::move(*store_->read());
    EXPECT_TRUE(r.pending_captures()->empty());
}

TEST_F(EngineTest, UnconfirmedCapturesExpireAndGoNowhere) {
    EXPECT_EQ(change("dc-pre", "bob", "Never-Committed-1").outcome, ChangeOutcome::stored);
    clock_.advance(std::chrono::seconds(121));
    EXPECT_EQ(*engine_->expire_pending(), 1u);
    ASSERT_TRUE(engine_->password_changed("bob"));  // a later change nobody captured
    EXPECT_TRUE(queued().empty());
    auto r = std::move(*store_->read());
    EXPECT_EQ(r.mapping({"LINUX", "TEST\\bob"})->status, store::MappingStatus::stale);
}

// Issue 12: names come from the store, not from what this process saw.
class EngineNamesTest : public EngineTest {
protected:
    static constexpr const char* kCarolGuid = "{0c0c0c0c-1111-2222-3333-444444444444}";
    static store::AccountNames carol() {
        return {kCarolGuid, "carol", "TEST", "carol@test.example", "CN=carol,CN=Users,DC=test,DC=example", false, {}};
    }
    void map_carol() {
        auto w = std::move(*store_->write("admin"));
        store::Mapping m;
        m.app = "RACF";
        m.windows = "carol@test.example";  // made with the UPN
        m.external = "CAROL01";
        ASSERT_TRUE(w.create_mapping(m));
        ASSERT_TRUE(w.commit());
    }
    void know_carol() {
        auto w = std::move(*store_->write("pwsyncd"));
        ASSERT_TRUE(w.note_account(carol()));
        ASSERT_TRUE(w.commit());
    }
    // A new engine on the same store: what a restart of pwsyncd keeps.
    void restart(EngineOptions o = {}) {
        o.clock = &clock_;
        o.domain = "TEST";
        engine_.emplace(*store_, o);
    }
};

TEST_F(EngineNamesTest, EveryNameFormFindsAMappingMadeWithTheUpnAfterARestart) {
    map_carol();
    know_carol();
    restart();
    int n = 0;
    for (const char* name : {"carol", "TEST\\carol", "CAROL@test.example", kCarolGuid,
                             "0C0C0C0C-1111-2222-3333-444444444444", "CN=carol,CN=Users,DC=test,DC=example"}) {
        const std::string pw = "Carol-Pass-" + std::to_string(++n);
        auto r = change("dc1", name, pw);
        EXPECT_EQ(r.outcome, ChangeOutcome::stored) << name << ": " << r.message;
        EXPECT_EQ(queued().back(), "racf:CAROL01=" + pw) << name;
    }
}

TEST_F(EngineNamesTest, AnUncapturedChangeMarksTheUpnMappingStale) {
    map_carol();
    know_carol();
    restart();
    ASSERT_TRUE(engine_->password_changed("carol"));  // the watcher names it by sam
    auto r = std::move(*store_->read());
    EXPECT_EQ(r.mapping({"RACF", "carol@test.example"})->status, store::MappingStatus::stale);
    auto audit = *r.audit();
    EXPECT_TRUE(std::any_of(audit.begin(), audit.end(), [](const auto& a) {
        return a.action == "change.uncaptured" && a.detail == "1 mapping(s) marked stale";
    }));
}

TEST_F(EngineNamesTest, APreCommitCaptureByAnotherNameIsConfirmedUnderTheSam) {
    map_carol();
    know_carol();
    restart();
    EXPECT_EQ(change("dc-pre", kCarolGuid, "Carol-Pre-1").outcome, ChangeOutcome::stored);
    ASSERT_TRUE(engine_->password_changed("carol"));
    EXPECT_EQ(queued(), (std::vector<std::string>{"racf:CAROL01=Carol-Pre-1"}));
}

TEST_F(EngineNamesTest, AnUnresolvedAccountIsLookedUpNotRefused) {
    map_carol();  // not resolved: the directory was unreachable when it was made
    std::vector<std::string> asked;
    EngineOptions o;
    o.resolve = [&](std::string_view name) -> Result<store::AccountNames> {
        asked.emplace_back(name);
        if (name != "carol") return fail(Errc::not_found, "no such account");
        return carol();
    };
    restart(std::move(o));
    // Post-commit: asked of the directory at once.
    auto r = change("dc1", "carol", "Carol-Post-1");
    EXPECT_EQ(r.outcome, ChangeOutcome::stored) << r.message;
    EXPECT_EQ(asked, std::vector<std::string>{"carol"});
    EXPECT_EQ(queued(), (std::vector<std::string>{"racf:CAROL01=Carol-Post-1"}));
    EXPECT_EQ(std::move(*store_->read()).mapping({"RACF", "carol@test.example"})->object_guid, kCarolGuid);
    // An account the directory does not know still gets 32; so does one no
    // mapping names once every mapping is resolved (the directory is not asked).
    EXPECT_EQ(change("dc1", "nobody", "Nobody-Pass-1").outcome, ChangeOutcome::no_mapping);
    {
        auto w = std::move(*store_->write("pwsyncd"));
        ASSERT_TRUE(w.note_account({"{a11ce000-0000-0000-0000-000000000001}", "alice", "TEST", "", "", false, {}}));
        ASSERT_TRUE(w.note_account({"{b0b00000-0000-0000-0000-000000000002}", "bob", "TEST", "", "", false, {}}));
        ASSERT_TRUE(w.commit());
    }
    asked.clear();
    EXPECT_EQ(change("dc-pre", "TEST\\nobody", "Nobody-Pass-2").outcome, ChangeOutcome::no_mapping);
    EXPECT_TRUE(asked.empty());
}

TEST_F(EngineNamesTest, APreCommitCaptureWaitsWhileAMappingIsUnresolved) {
    map_carol();
    EngineOptions o;
    int asked = 0;
    o.resolve = [&](std::string_view) -> Result<store::AccountNames> { ++asked; return carol(); };
    restart(std::move(o));
    // The DC is inside this change and may not answer: not asked, not refused.
    auto r = change("dc-pre", "carol", "Carol-Pre-2");
    EXPECT_EQ(r.outcome, ChangeOutcome::stored) << r.message;
    EXPECT_EQ(asked, 0);
    know_carol();  // what the watcher does before it reports the change
    ASSERT_TRUE(engine_->password_changed("carol"));
    EXPECT_EQ(queued(), (std::vector<std::string>{"racf:CAROL01=Carol-Pre-2"}));
}

// Several domains: alice of TEST and alice of OTHER are two accounts, each
// mapped to an external user of its own; a DC's capture principal speaks
// for its own domain only.
class EngineDomainsTest : public EngineTest {
protected:
    static constexpr const char* kTestAlice = "{a11ce000-0000-0000-0000-000000000001}";
    static constexpr const char* kOtherAlice = "{a11ce000-0000-0000-0000-0000000000f2}";
    void SetUp() override {
        EngineTest::SetUp();
        auto w = std::move(*store_->write("admin"));
        store::Mapping m;
        m.app = "LINUX";
        m.windows = "OTHER\\alice";
        m.external = "alice-other";
        ASSERT_TRUE(w.create_mapping(m));
        ASSERT_TRUE(w.note_account({kTestAlice, "alice", "TEST", "alice@test.example", "CN=alice,CN=Users,DC=test,DC=example", false, {}}));
        ASSERT_TRUE(w.note_account({kOtherAlice, "alice", "OTHER", "alice@other.example", "CN=alice,CN=Users,DC=other,DC=example", false, {}}));
        store::Principal dc;
        dc.kind = store::PrincipalKind::windows;
        dc.capture = store::CaptureMode::post_commit;
        for (const char* name : {"dc-other", "dc-free"}) {
            dc.name = name;
            ASSERT_TRUE(w.create_principal(dc, Secret("dc-secret-123456")));
        }
        dc.name = "dc-other-pre";
        dc.capture = store::CaptureMode::pre_commit;
        ASSERT_TRUE(w.create_principal(dc, Secret("dc-secret-123456")));
        ASSERT_TRUE(w.commit());
        EngineOptions o;
        o.clock = &clock_;
        o.several_domains = true;
        o.capture_domain = [](std::string_view p) -> std::string {
            if (p == "dc1" || p == "dc-pre") return "TEST";
            if (p == "dc-other" || p == "dc-other-pre") return "OTHER";
            return {};
        };
        o.domain_of_name = [](std::string_view account) -> std::string {
            const auto a = ascii_lower(account);
            if (a.starts_with("test\\") || a.ends_with("@test.example")) return "TEST";
            if (a.starts_with("other\\") || a.starts_with("other.example\\") || a.ends_with("@other.example")) return "OTHER";
            return {};
        };
        o.ad_writer = [this](std::string_view account, const Secret& pw) -> Status {
            ad_calls_.emplace_back(std::string(account) + "=" + std::string(pw.view()));
            return {};
        };
        engine_.emplace(*store_, o);
    }
    store::MappingStatus status(const char* win) {
        return std::move(*store_->read()).mapping({"LINUX", win})->status;
    }
};

TEST_F(EngineDomainsTest, ACaptureGoesToItsOwnDomainsAccountOnly) {
    EXPECT_EQ(change("dc-other", "alice", "Other-Pass-1").outcome, ChangeOutcome::stored);
    EXPECT_EQ(queued(), (std::vector<std::string>{"ext-ldap:alice-other=Other-Pass-1"}));
    EXPECT_EQ(change("dc1", "alice", "Test-Pass-1").outcome, ChangeOutcome::stored);
    EXPECT_EQ(queued(), (std::vector<std::string>{"ext-ldap:alice-other=Other-Pass-1", "ext-ldap:alice=Test-Pass-1",
                                                  "racf:ALICE01=Test-Pass-1"}));
    // Named in full, by UPN or by GUID: the same account.
    EXPECT_EQ(change("dc-other", "alice@other.example", "Other-Pass-2").outcome, ChangeOutcome::stored);
    EXPECT_EQ(change("dc-other", kOtherAlice, "Other-Pass-3").outcome, ChangeOutcome::stored);
    EXPECT_EQ(queued().size(), 5u);
    for (const auto& q : queued()) EXPECT_FALSE(q.starts_with("ext-ldap:alice=Other") || q.starts_with("racf:ALICE01=Other")) << q;
}

TEST_F(EngineDomainsTest, APrincipalMayNotSpeakForAnotherDomain) {
    auto r = change("dc-other", "TEST\\alice", "Foreign-Pass-1");
    EXPECT_EQ(r.outcome, ChangeOutcome::refused);
    EXPECT_NE(r.message.find("captures for domain OTHER"), std::string::npos) << r.message;
    EXPECT_EQ(change("dc-other", "alice@test.example", "Foreign-Pass-2").outcome, ChangeOutcome::refused);
    // Tied to no domain: only names that say theirs.
    r = change("dc-free", "alice", "Free-Pass-1");
    EXPECT_EQ(r.outcome, ChangeOutcome::refused);
    EXPECT_NE(r.message.find("does not say its domain"), std::string::npos) << r.message;
    EXPECT_EQ(change("dc-free", "OTHER\\alice", "Free-Pass-2").outcome, ChangeOutcome::stored);
    EXPECT_EQ(queued(), (std::vector<std::string>{"ext-ldap:alice-other=Free-Pass-2"}));
}

TEST_F(EngineDomainsTest, TheWatcherConfirmsAndMarksStaleInItsDomainOnly) {
    EXPECT_EQ(change("dc-other-pre", "alice", "Other-Pre-1").outcome, ChangeOutcome::stored);
    // TEST's alice changed with no capture: stale there, OTHER's capture still pending.
    ASSERT_TRUE(engine_->password_changed("TEST\\alice", to_filetime(clock_.now() + std::chrono::milliseconds(5))));
    EXPECT_TRUE(queued().empty());
    EXPECT_EQ(status("TEST\\alice"), store::MappingStatus::stale);
    EXPECT_EQ(status("OTHER\\alice"), store::MappingStatus::ok);
    ASSERT_TRUE(engine_->password_changed("OTHER\\alice", to_filetime(clock_.now() + std::chrono::milliseconds(6))));
    EXPECT_EQ(queued(), (std::vector<std::string>{"ext-ldap:alice-other=Other-Pre-1"}));
    EXPECT_EQ(status("TEST\\alice"), store::MappingStatus::stale);
}

// DOMAIN\sam with the domain's DNS name: kept under its NetBIOS name, the
// name the watcher confirms with.
TEST_F(EngineDomainsTest, ACaptureNamedByTheDnsDomainIsConfirmed) {
    EXPECT_EQ(change("dc-other-pre", "other.example\\alice", "Dns-Form-1").outcome, ChangeOutcome::stored);
    ASSERT_TRUE(engine_->password_changed("OTHER\\alice", to_filetime(clock_.now() + std::chrono::milliseconds(5))));
    EXPECT_EQ(queued(), (std::vector<std::string>{"ext-ldap:alice-other=Dns-Form-1"}));
}

TEST_F(EngineDomainsTest, FullSyncWritesTheMappedDomainsAccount) {
    adapter("ext-ldap", [] { store::AdapterUpdate u; u.verify_old_password = false; return u; }());
    auto r = change("ldap-agent", "alice-other", "Ext-Pass-1");
    EXPECT_EQ(r.outcome, ChangeOutcome::stored) << r.message;
    EXPECT_EQ(ad_calls_, (std::vector<std::string>{"OTHER\\alice=Ext-Pass-1"}));
    // Written by us: the DC's capture of it does not bounce, and TEST's alice is untouched.
    EXPECT_EQ(change("dc-other", "alice", "Ext-Pass-1").outcome, ChangeOutcome::stored);
    for (const auto& q : queued()) EXPECT_FALSE(q.starts_with("ext-ldap:alice-other=")) << q;
    EXPECT_EQ(change("dc1", "alice", "Ext-Pass-1").outcome, ChangeOutcome::stored);
    EXPECT_EQ(queued(), (std::vector<std::string>{"ext-ldap:alice=Ext-Pass-1", "racf:ALICE01=Ext-Pass-1"}));
}

TEST_F(EngineTest, PartialSyncUpdatesTheStoreOnly) {
    set(store::SyncMode::full, false);
    const std::uint64_t durable = store_->durable_commits();
    auto r = change("ldap-agent", "ALICE", "Partial-Pass-1", "Linux-Old-1");
    EXPECT_EQ(r.outcome, ChangeOutcome::stored) << r.message;
    EXPECT_EQ(store_->durable_commits() - durable, 1u);
    EXPECT_EQ(credential("LINUX", "TEST\\alice"), "Partial-Pass-1");
    EXPECT_TRUE(ad_calls_.empty());
    EXPECT_TRUE(queued().empty());
}

TEST_F(EngineTest, VerifyOldPassword) {
    EXPECT_EQ(change("ldap-agent", "alice", "Next-1", "Wrong-Old").outcome, ChangeOutcome::wrong_old_password);
    EXPECT_EQ(change("ldap-agent", "alice", "Next-1").outcome, ChangeOutcome::refused);
    EXPECT_EQ(change("ldap-agent", "bob", "Next-1", "anything").outcome, ChangeOutcome::wrong_old_password);  // nothing stored
    EXPECT_EQ(credential("LINUX", "TEST\\alice"), "Linux-Old-1");
    adapter("ext-ldap", [] { store::AdapterUpdate u; u.verify_old_password = false; return u; }());
    EXPECT_EQ(change("ldap-agent", "bob", "Next-1").outcome, ChangeOutcome::stored);
}

TEST_F(EngineTest, DirectionSwitchedOffOrAdapterDisabled) {
    set(store::SyncMode::full, false);
    set(store::SyncMode::partial, false);
    EXPECT_EQ(change("ldap-agent", "alice", "X-Pass-1", "Linux-Old-1").outcome, ChangeOutcome::refused);
    set(store::SyncMode::partial, true);
    adapter("ext-ldap", [] { store::AdapterUpdate u; u.enabled = false; return u; }());
    EXPECT_EQ(change("ldap-agent", "alice", "X-Pass-1", "Linux-Old-1").outcome, ChangeOutcome::refused);
    adapter("ext-ldap", [] { store::AdapterUpdate u; u.enabled = true; return u; }());
    EXPECT_EQ(change("ldap-agent", "nobody", "X-Pass-1", "Linux-Old-1").outcome, ChangeOutcome::no_mapping);
    EXPECT_EQ(credential("LINUX", "TEST\\alice"), "Linux-Old-1");
}

TEST_F(EngineTest, FullSyncSetsAdThenSendsOnButNotBack) {
    auto r = change("ldap-agent", "alice", "Full-Pass-1", "Linux-Old-1");
    EXPECT_EQ(r.outcome, ChangeOutcome::stored) << r.message;
    EXPECT_EQ(ad_calls_, std::vector<std::string>{"TEST\\alice=Full-Pass-1"});
    EXPECT_EQ(credential("LINUX", "TEST\\alice"), "Full-Pass-1");
    EXPECT_EQ(queued(), std::vector<std::string>{"racf:ALICE01=Full-Pass-1"});  // the other application only
    // The DC's capture of pwsync's own write comes back: damped, never to ext-ldap.
    EXPECT_EQ(change("dc1", "alice", "Full-Pass-1").outcome, ChangeOutcome::stored);
    EXPECT_EQ(queued(), std::vector<std::string>{"racf:ALICE01=Full-Pass-1"});
    // The watcher sees pwsync's own write: no stale marking.
    clock_.advance(std::chrono::seconds(30));
    ASSERT_TRUE(engine_->password_changed("alice"));
    auto rt = std::move(*store_->read());
    EXPECT_EQ(rt.mapping({"LINUX", "TEST\\alice"})->status, store::MappingStatus::ok);
}

// pwsync's own write explains the one change the watcher sees after it; a
// later change nobody captured, inside the echo window, is stale all the same.
TEST_F(EngineTest, OurOwnWriteExplainsOneChangeNotTheNextOnes) {
    ASSERT_EQ(change("ldap-agent", "alice", "Full-Pass-2", "Linux-Old-1").outcome, ChangeOutcome::stored);
    clock_.advance(std::chrono::seconds(1));
    ASSERT_TRUE(engine_->password_changed("TEST\\alice", to_filetime(clock_.now())));  // our write, no hook
    const auto status = [&] { return std::move(*store_->read()).mapping({"LINUX", "TEST\\alice"})->status; };
    EXPECT_EQ(status(), store::MappingStatus::ok);
    clock_.advance(std::chrono::seconds(20));
    ASSERT_TRUE(engine_->password_changed("TEST\\alice", to_filetime(clock_.now())));  // someone else's, uncaptured
    EXPECT_EQ(status(), store::MappingStatus::stale);
}

// A write of ours made while the watcher read an earlier change keeps its
// marker for its own change.
TEST_F(EngineTest, AMarkerSetAfterTheChangeSeenIsKept) {
    const auto seen = to_filetime(clock_.now());
    clock_.advance(std::chrono::seconds(5));
    ASSERT_EQ(change("ldap-agent", "alice", "Full-Pass-3", "Linux-Old-1").outcome, ChangeOutcome::stored);
    ASSERT_TRUE(engine_->password_changed("TEST\\alice", seen));  // read before our write: uncaptured
    ASSERT_TRUE(engine_->password_changed("TEST\\alice", to_filetime(clock_.now() + std::chrono::seconds(1))));
    auto r = std::move(*store_->read());
    const auto audit = r.audit();
    ASSERT_TRUE(audit);
    std::size_t uncaptured = 0;
    for (const auto& a : *audit) uncaptured += a.action == "change.uncaptured";
    EXPECT_EQ(uncaptured, 1u) << "our write was taken for someone else's";
}

TEST_F(EngineTest, FullSyncPolicyRefusalStoresNothing) {
    ad_mode_ = "refuse";
    auto r = change("ldap-agent", "alice", "weak", "Linux-Old-1");
    EXPECT_EQ(r.outcome, ChangeOutcome::refused_by_ad);
    EXPECT_NE(r.message.find("0000052D"), std::string::npos);
    EXPECT_EQ(credential("LINUX", "TEST\\alice"), "Linux-Old-1");
    EXPECT_TRUE(queued().empty());
}

TEST_F(EngineTest, FullSyncQueuesTheAdWriteWhenAdIsDown) {
    ad_mode_ = "down";
    auto r = change("ldap-agent", "alice", "Queued-Full-1", "Linux-Old-1");
    EXPECT_EQ(r.outcome, ChangeOutcome::stored) << r.message;
    EXPECT_NE(r.message.find("queued"), std::string::npos);
    EXPECT_EQ(credential("LINUX", "TEST\\alice"), "Queued-Full-1");
    EXPECT_EQ(queued(), (std::vector<std::string>{"racf:ALICE01=Queued-Full-1", "@windows:TEST\\alice=Queued-Full-1"}));
}

TEST_F(EngineTest, MappingConflictIsRefusedUnlessAllowed) {
    {
        auto w = std::move(*store_->write("admin"));
        store::AdapterUpdate u;
        u.allow_mapping_conflicts = true;
        ASSERT_TRUE(w.update_adapter("ext-ldap", std::move(u)));
        store::Mapping m;
        m.app = "LINUX";
        m.windows = "TEST\\carol";
        m.external = "bob";
        ASSERT_TRUE(w.create_mapping(m));
        ASSERT_TRUE(w.commit());
    }
    adapter("ext-ldap", [] { store::AdapterUpdate u; u.verify_old_password = false; return u; }());
    EXPECT_EQ(change("ldap-agent", "bob", "Both-Pass-1").outcome, ChangeOutcome::stored);
    EXPECT_EQ(ad_calls_.size(), 2u);
    EXPECT_EQ(credential("LINUX", "TEST\\carol"), "Both-Pass-1");
}

std::int64_t filetime(TimePoint t) { return to_filetime(t); }

TEST_F(EngineTest, CaptureTakenAfterTheCommittedChangeStaysPending) {
    const auto committed_at = clock_.now();
    EXPECT_EQ(change("dc-pre", "alice", "Committed-Pass-1").outcome, ChangeOutcome::stored);
    clock_.advance(std::chrono::seconds(10));
    // A later attempt the DC may yet refuse (history): captured, not committed.
    EXPECT_EQ(change("dc-pre", "alice", "Maybe-Refused-2").outcome, ChangeOutcome::stored);
    ASSERT_TRUE(engine_->password_changed("alice", filetime(committed_at + std::chrono::milliseconds(5))));
    EXPECT_EQ(queued(), (std::vector<std::string>{"ext-ldap:alice=Committed-Pass-1", "racf:ALICE01=Committed-Pass-1"}));
    auto r = std::move(*store_->read());
    ASSERT_EQ(r.pending_captures()->size(), 1u);
}

TEST_F(EngineTest, AReplayedWatcherEventChangesNothing) {
    EXPECT_EQ(change("dc-pre", "bob", "Bob-Pass-1").outcome, ChangeOutcome::stored);
    const auto at = filetime(clock_.now() + std::chrono::milliseconds(5));
    ASSERT_TRUE(engine_->password_changed("bob", at));
    ASSERT_TRUE(engine_->password_changed("bob", at));  // the same batch again after a crash
    EXPECT_EQ(queued().size(), 1u);
    auto r = std::move(*store_->read());
    EXPECT_EQ(r.mapping({"LINUX", "TEST\\bob"})->status, store::MappingStatus::ok);
    auto audit = r.audit();
    for (const auto& a : *audit) EXPECT_NE(a.action, "change.uncaptured");
}

TEST_F(EngineTest, AQueuedAdWriteNeverLandsAfterANewerOne) {
    ad_mode_ = "down";
    EXPECT_EQ(change("ldap-agent", "alice", "Queued-First-1", "Linux-Old-1").outcome, ChangeOutcome::stored);
    ad_mode_ = "ok";
    EXPECT_EQ(change("ldap-agent", "alice", "Direct-Second-2", "Queued-First-1").outcome, ChangeOutcome::stored);
    auto r = std::move(*store_->read());
    EXPECT_TRUE(r.jobs_for_target(kWindowsTarget, "TEST\\alice")->empty());
    EXPECT_EQ(credential("LINUX", "TEST\\alice"), "Direct-Second-2");
}

// The inline AD write was the first attempt: the queued write waits for the
// retry delay and carries AD's error, so a DC that just failed is not hit
// again at once.
TEST_F(EngineTest, AQueuedAdWriteWaitsForItsFirstRetry) {
    ad_mode_ = "down";
    const TimePoint before = clock_.now();
    EXPECT_EQ(change("ldap-agent", "alice", "Queued-Later-1", "Linux-Old-1").outcome, ChangeOutcome::stored);
    auto r = std::move(*store_->read());
    auto jobs = r.jobs_for_target(kWindowsTarget, "TEST\\alice");
    ASSERT_TRUE(jobs);
    ASSERT_EQ(jobs->size(), 1u);
    EXPECT_EQ((*jobs)[0].attempts, 1u);
    EXPECT_EQ((*jobs)[0].next_attempt, before + std::chrono::seconds(60));
    EXPECT_NE((*jobs)[0].last_error.find("Can't contact LDAP server"), std::string::npos) << (*jobs)[0].last_error;
}

TEST_F(EngineTest, FullSyncWithoutADirectoryIsRefused) {
    EngineOptions opts;
    opts.clock = &clock_;
    Engine no_ad(*store_, opts);
    set(store::SyncMode::partial, false);
    const Secret old("Linux-Old-1");
    auto r = no_ad.change("ldap-agent", "alice", &old, Secret("Whatever-Pass-1"));
    EXPECT_EQ(r.outcome, ChangeOutcome::refused);
    EXPECT_NE(r.message.find("[directory]"), std::string::npos);
}

// The first value of attribute `name` of the cn=monitor entry `dn`.
std::string monitor_attr(const std::vector<SearchEntry>& entries, std::string_view dn, std::string_view name) {
    for (const auto& e : entries)
        if (e.dn == dn)
            for (const auto& [n, v] : e.attributes)
                if (n == name && !v.empty()) return v.front();
    return "(none)";
}

// Where a change's time went: the directory's answers (the account's
// state, full sync's AD write) apart from the store's, per mode, on the
// injected clock.
TEST_F(EngineTest, MonitorTimesWhereAChangesTimeWent) {
    Metrics metrics(clock_);
    FigureSource figures(*store_, metrics, false);
    EngineHandler handler(*engine_, *store_, metrics, figures);
    const Peer peer{"127.0.0.1", 1, "", true};
    state_takes_ = std::chrono::milliseconds(7);
    ad_write_takes_ = std::chrono::milliseconds(11);
    EXPECT_EQ(handler.password_modify("dc1", "alice", std::nullopt, Secret("Timed-Pass-1"), peer).code, 0);
    EXPECT_EQ(handler.password_modify("ldap-agent", "alice", Secret("Linux-Old-1"), Secret("Timed-Pass-2"), peer).code, 0);
    ASSERT_EQ(ad_calls_.size(), 1u);
    auto f = figures.collect();
    ASSERT_TRUE(f);
    const auto& windows = f->counters.times[0];
    const auto& full = f->counters.times[1];
    using std::chrono::milliseconds;
    // The capture asked for the account's state once; the store's turn took
    // no time on a clock that only the directory moves.
    EXPECT_EQ(windows.directory, milliseconds(7));
    EXPECT_EQ(windows.store, milliseconds(0));
    EXPECT_EQ(windows.all, milliseconds(7));
    // Full sync: the state, then the AD write.
    EXPECT_EQ(full.directory, milliseconds(18));
    EXPECT_EQ(full.all, milliseconds(18));
    EXPECT_EQ(f->counters.times[2].all, milliseconds(0));
    const auto text = prometheus_text(*f);
    EXPECT_NE(text.find("pwsync_change_seconds_total{mode=\"windows\",part=\"directory\"} 0.007000\n"), std::string::npos) << text;
    EXPECT_NE(text.find("pwsync_change_seconds_total{mode=\"full\",part=\"all\"} 0.018000\n"), std::string::npos) << text;
    EXPECT_NE(text.find("pwsync_change_seconds_total{mode=\"full\",part=\"store\"} 0.000000\n"), std::string::npos) << text;
    EXPECT_NE(text.find("# TYPE pwsync_change_seconds_total counter"), std::string::npos);
    for (const auto* pw : {"Timed-Pass-1", "Timed-Pass-2", "Linux-Old-1"}) EXPECT_EQ(text.find(pw), std::string::npos);
    // The same on cn=monitor, in milliseconds, per mode.
    const auto entries = monitor_entries(*f);
    auto attr = [&](std::string_view dn, std::string_view name) { return monitor_attr(entries, dn, name); };
    EXPECT_EQ(attr("cn=windows,cn=changes,cn=monitor", "pwsyncChangeMs"), "7");
    EXPECT_EQ(attr("cn=windows,cn=changes,cn=monitor", "pwsyncDirectoryMs"), "7");
    EXPECT_EQ(attr("cn=windows,cn=changes,cn=monitor", "pwsyncStoreMs"), "0");
    EXPECT_EQ(attr("cn=full,cn=changes,cn=monitor", "pwsyncDirectoryMs"), "18");
    EXPECT_EQ(attr("cn=partial,cn=changes,cn=monitor", "pwsyncChangeMs"), "0");
}

// The store's part is the wait for the writer too: a change that finds the
// store's write lock held counts the wait as the store's (real time).
TEST_F(EngineTest, AChangeWaitingForTheWriterCountsAsTheStores) {
    SystemClock wall;
    EngineOptions opts = engine_options_;
    opts.clock = &wall;
    std::mutex m;
    std::condition_variable cv;
    bool asked = false;
    opts.account_state = [&](std::string_view) -> Result<AccountState> {
        std::lock_guard lock(m);
        asked = true;
        cv.notify_one();
        return AccountState{};
    };
    Engine engine(*store_, opts);
    Metrics metrics(wall);
    FigureSource figures(*store_, metrics, false);
    EngineHandler handler(engine, *store_, metrics, figures);
    const Peer peer{"127.0.0.1", 1, "", true};
    constexpr auto kHeld = std::chrono::milliseconds(200);
    int code = -1;
    {
        std::optional<store::WriteTxn> held;
        {
            auto w = store_->write("test");
            ASSERT_TRUE(w) << w.error().message;
            held.emplace(std::move(*w));
        }
        std::thread capture([&] { code = handler.password_modify("dc1", "alice", std::nullopt, Secret("Held-Pass-1"), peer).code; });
        bool reached = false;
        {
            // The capture asked the directory: next it wants the writer.
            std::unique_lock lock(m);
            reached = cv.wait_for(lock, std::chrono::seconds(30), [&] { return asked; });
        }
        if (reached) std::this_thread::sleep_for(kHeld);
        held.reset();  // rolls back: the writer may go
        capture.join();
        ASSERT_TRUE(reached) << "the capture never asked the directory";
    }
    EXPECT_EQ(code, 0);
    auto f = figures.collect();
    ASSERT_TRUE(f);
    const auto& windows = f->counters.times[0];
    // Most of the hold: the capture reached the writer a moment after it asked.
    EXPECT_GE(windows.store, kHeld / 2);
    EXPECT_LT(windows.directory, kHeld / 2);
    EXPECT_GE(windows.all, windows.store + windows.directory);
}

// The handler counts each answer by mode and result, and serves cn=monitor
// to monitor principals only.
TEST_F(EngineTest, MonitorCountsChangesAndServesOnlyMonitorPrincipals) {
    ASSERT_TRUE(add_monitor("nagios"));
    EXPECT_FALSE(add_monitor("bad-monitor", "racf"));
    Metrics metrics(clock_);
    FigureSource figures(*store_, metrics, true);
    EngineHandler handler(*engine_, *store_, metrics, figures);
    const Peer peer{"127.0.0.1", 1, "", true};
    EXPECT_EQ(handler.password_modify("dc1", "alice", std::nullopt, Secret("Monitor-Pass-1"), peer).code, 0);
    EXPECT_EQ(handler.password_modify("dc1", "nobody", std::nullopt, Secret("Monitor-Pass-2"), peer).code, 32);
    EXPECT_EQ(handler.password_modify("ldap-agent", "alice", Secret("wrong-old"), Secret("Monitor-Pass-3"), peer).code, 49);
    // A monitor principal cannot change passwords.
    EXPECT_EQ(handler.password_modify("nagios", "alice", std::nullopt, Secret("Monitor-Pass-4"), peer).code, 50);

    auto denied = handler.search_subtree("dc1", "cn=monitor");
    ASSERT_FALSE(denied);
    EXPECT_EQ(denied.error().code, ldap_code::insufficient_access_rights);
    auto elsewhere = handler.search_subtree("nagios", "dc=example,dc=com");
    ASSERT_FALSE(elsewhere);
    EXPECT_EQ(elsewhere.error().code, ldap_code::no_such_object);

    auto entries = handler.search_subtree("nagios", "CN=Monitor");
    ASSERT_TRUE(entries);
    auto attr = [&](std::string_view dn, std::string_view name) { return monitor_attr(*entries, dn, name); };
    EXPECT_EQ(attr("cn=windows,cn=changes,cn=monitor", "pwsyncStored"), "1");
    EXPECT_EQ(attr("cn=windows,cn=changes,cn=monitor", "pwsyncRefused"), "1");
    EXPECT_EQ(attr("cn=external,cn=changes,cn=monitor", "pwsyncDenied"), "2");  // wrong old password, monitor
    EXPECT_EQ(attr("cn=full,cn=changes,cn=monitor", "pwsyncStored"), "0");
    // alice's change queued one job per mapped application.
    EXPECT_EQ(attr("cn=monitor", "pwsyncQueued"), "2");
    EXPECT_EQ(attr("cn=ext-ldap,cn=adapters,cn=monitor", "pwsyncQueued"), "1");
    EXPECT_EQ(attr("cn=racf,cn=adapters,cn=monitor", "pwsyncQueued"), "1");
    EXPECT_EQ(attr("cn=monitor", "pwsyncMappings"), "3");
    EXPECT_EQ(attr("cn=monitor", "pwsyncWatcherUp"), "FALSE");
    EXPECT_EQ(attr("cn=monitor", "pwsyncWatcherLag"), "-1");
    metrics.watcher_polled();
    clock_.advance(std::chrono::seconds(7));
    auto f = figures.collect();
    ASSERT_TRUE(f);
    EXPECT_TRUE(f->counters.watcher_up);
    EXPECT_EQ(f->counters.watcher_lag.count(), 7);
    EXPECT_EQ(f->adapters.at("racf").oldest_queued.count(), 7);

    const auto text = prometheus_text(*f);
    EXPECT_NE(text.find("pwsync_changes_total{mode=\"windows\",result=\"stored\"} 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("pwsync_queued{adapter=\"racf\"} 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("pwsync_watcher_lag_seconds 7\n"), std::string::npos) << text;
    EXPECT_NE(text.find("# TYPE pwsync_changes_total counter"), std::string::npos);
    // The store's writer: alice's change was at least one unit of a group
    // commit, and the figures are the store's own.
    const auto writer = store_->writer_time();
    ASSERT_GE(writer.batches, 1u);
    EXPECT_EQ(f->writer.batches, writer.batches);
    EXPECT_GE(writer.units, writer.batches);
    EXPECT_NE(text.find("pwsync_store_write_batches_total " + std::to_string(writer.batches) + "\n"), std::string::npos) << text;
    EXPECT_NE(text.find("pwsync_store_write_units_total " + std::to_string(writer.units) + "\n"), std::string::npos) << text;
    for (const std::string part : {"running", "committing", "gathering"}) {
        // Seconds with six decimals; some time was spent committing.
        const std::string head = "\npwsync_store_writer_seconds_total{part=\"" + part + "\"} ";
        const auto at = text.find(head);
        ASSERT_NE(at, std::string::npos) << text;
        const std::string value = text.substr(at + head.size(), text.find('\n', at + 1) - at - head.size());
        // digits, a point, six digits (std::regex trips g++ 12's
        // maybe-uninitialized warning under the sanitizers)
        const auto point = value.find('.');
        const auto digits = [&](std::size_t from, std::size_t to) {
            return from < to && std::all_of(value.begin() + static_cast<std::ptrdiff_t>(from),
                                            value.begin() + static_cast<std::ptrdiff_t>(to),
                                            [](char ch) { return ch >= '0' && ch <= '9'; });
        };
        EXPECT_TRUE(point != std::string::npos && digits(0, point) && value.size() - point - 1 == 6 &&
                    digits(point + 1, value.size()))
            << value;
        if (part == "committing") {
            EXPECT_GT(std::stod(value), 0.0) << value;
        }
    }
    EXPECT_EQ(attr("cn=monitor", "pwsyncStoreWriteBatches"), std::to_string(writer.batches));
    EXPECT_EQ(attr("cn=monitor", "pwsyncStoreWriterGatheringMs"), "0");  // one writer at a time here
    // No password ever reaches the figures.
    for (const auto* pw : {"Monitor-Pass-1", "Monitor-Pass-2", "Monitor-Pass-3", "Monitor-Pass-4"}) {
        EXPECT_EQ(text.find(pw), std::string::npos);
        for (const auto& e : *entries)
            for (const auto& [n, v] : e.attributes)
                for (const auto& x : v) EXPECT_EQ(x.find(pw), std::string::npos);
    }
}


// Several domains: one watcher each; the figures say which one is down, and
// the totals are the worst of them.
TEST(WatcherFigures, EachDomainsWatcherIsItsOwnSeries) {
    ManualClock clock{from_unix_micros(1'790'000'000'000'000)};
    Metrics m(clock);
    m.set_watchers({"EXAMPLE", "OTHER"});
    m.watcher_polled(0);
    clock.advance(std::chrono::seconds(3));
    auto s = m.snapshot(true);
    EXPECT_FALSE(s.watcher_up) << "OTHER's watcher never polled";
    EXPECT_EQ(s.watcher_lag.count(), -1);
    m.watcher_polled(1);
    clock.advance(std::chrono::seconds(4));
    m.watcher_down(1);
    s = m.snapshot(true);
    EXPECT_FALSE(s.watcher_up);
    EXPECT_EQ(s.watcher_lag.count(), 7);
    ASSERT_EQ(s.watchers.size(), 2u);
    EXPECT_TRUE(s.watchers[0].up);
    EXPECT_FALSE(s.watchers[1].up);
    Figures f;
    f.counters = s;
    const auto text = prometheus_text(f);
    EXPECT_NE(text.find("pwsync_watcher_up{directory=\"EXAMPLE\"} 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("pwsync_watcher_up{directory=\"OTHER\"} 0\n"), std::string::npos) << text;
    EXPECT_NE(text.find("pwsync_watcher_lag_seconds{directory=\"OTHER\"} 4\n"), std::string::npos) << text;
    EXPECT_EQ(text.find("\npwsync_watcher_up "), std::string::npos) << "no unlabelled series beside them";
}

std::vector<store::AuditRecord> audit_of(store::Store& s, std::string_view action) {
    std::vector<store::AuditRecord> out;
    auto r = std::move(*s.read());
    auto all = r.audit();
    for (auto& a : *all)
        if (a.action == action) out.push_back(std::move(a));
    return out;
}

// A watcher page is one transaction: its changes and the cursor commit
// together, or (a failure part-way) neither does.
TEST_F(EngineTest, AWatcherPageCommitsItsChangesAndItsCursorTogether) {
    EngineOptions opts;
    opts.clock = &clock_;
    opts.domain = "TEST";
    opts.queued = [this] { ++wakes_; };
    engine_.emplace(*store_, opts);
    EXPECT_EQ(change("dc-pre", "alice", "Page-Alice-1").outcome, ChangeOutcome::stored);
    EXPECT_EQ(change("dc-pre", "bob", "Page-Bob-1").outcome, ChangeOutcome::stored);
    {
        auto w = std::move(*store_->write("pwsyncd"));
        ASSERT_TRUE(w.set_cursor("watcher", "cookie-1"));
        ASSERT_TRUE(w.commit());
    }
    // The middle change fails in the store (a name longer than any key the
    // store takes), after alice's change was applied in the same transaction.
    const std::vector<DirectoryChange> page = {
        {"alice", 0, 0, false}, {std::string(600, 'x'), 1, 0, false}, {"bob", 0, 0, false}};
    EXPECT_FALSE(engine_->watcher_page(page, "watcher", "cookie-2"));
    {
        auto r = std::move(*store_->read());
        EXPECT_EQ(**r.cursor("watcher"), "cookie-1");
        EXPECT_EQ(r.pending_captures()->size(), 2u) << "alice's confirmation was committed without the page";
    }
    EXPECT_TRUE(queued().empty());
    EXPECT_EQ(wakes_, 0);

    ASSERT_TRUE(engine_->watcher_page({{"alice", 0, 0, false}, {"bob", 0, 0, false}}, "watcher", "cookie-2"));
    auto r = std::move(*store_->read());
    EXPECT_EQ(**r.cursor("watcher"), "cookie-2");
    EXPECT_TRUE(r.pending_captures()->empty());
    EXPECT_EQ(queued().size(), 3u);
    EXPECT_EQ(wakes_, 1);  // once per page, after its commit
}

// A helpdesk reset with "must change at next logon": pwdLastSet stays 0,
// the metadata's time places it; it syncs, and the audit says temporary.
TEST_F(EngineTest, ATemporaryPasswordSyncsAndTheAuditSaysSo) {
    EXPECT_EQ(change("dc-pre", "alice", "Helpdesk-Temp-1").outcome, ChangeOutcome::stored);
    const auto committed_at = clock_.now();
    clock_.advance(std::chrono::seconds(10));
    EXPECT_EQ(change("dc-pre", "alice", "Later-Candidate-2").outcome, ChangeOutcome::stored);
    ASSERT_TRUE(engine_->watcher_page({{"alice", 0, filetime(committed_at), true}}, "watcher", "c"));
    EXPECT_EQ(queued(), (std::vector<std::string>{"ext-ldap:alice=Helpdesk-Temp-1", "racf:ALICE01=Helpdesk-Temp-1"}));
    auto confirmed = audit_of(*store_, "capture.confirmed");
    ASSERT_EQ(confirmed.size(), 1u);
    EXPECT_NE(confirmed[0].detail.find("temporary password"), std::string::npos) << confirmed[0].detail;
    auto r = std::move(*store_->read());
    EXPECT_EQ(r.pending_captures()->size(), 1u);  // the later candidate waits
    // Uncaptured, it is marked stale, and the audit says temporary too.
    ASSERT_TRUE(engine_->watcher_page({{"bob", 0, filetime(clock_.now()), true}}, "watcher", "d"));
    auto uncaptured = audit_of(*store_, "change.uncaptured");
    ASSERT_EQ(uncaptured.size(), 1u);
    EXPECT_NE(uncaptured[0].detail.find("temporary password"), std::string::npos) << uncaptured[0].detail;
    // An ordinary change says nothing of the kind.
    EXPECT_EQ(change("dc-pre", "bob", "Ordinary-3").outcome, ChangeOutcome::stored);
    ASSERT_TRUE(engine_->watcher_page({{"bob", filetime(clock_.now()), 0, false}}, "watcher", "e"));
    confirmed = audit_of(*store_, "capture.confirmed");
    ASSERT_EQ(confirmed.size(), 2u);
    EXPECT_EQ(confirmed[1].detail.find("temporary"), std::string::npos) << confirmed[1].detail;
}

// An expired capture went nowhere: always audited, and counted.
TEST_F(EngineTest, AnExpiredCaptureIsAuditedAndCounted) {
    EXPECT_EQ(change("dc-pre", "bob", "Never-Confirmed-1").outcome, ChangeOutcome::stored);
    clock_.advance(std::chrono::seconds(119));
    EXPECT_EQ(*engine_->expire_pending(), 0u);
    clock_.advance(std::chrono::seconds(2));
    auto n = engine_->expire_pending();
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 1u);
    auto expired = audit_of(*store_, "capture.expired");
    ASSERT_EQ(expired.size(), 1u);
    EXPECT_EQ(expired[0].object, "bob");
    EXPECT_NE(expired[0].detail.find("never confirmed"), std::string::npos) << expired[0].detail;
    EXPECT_NE(expired[0].detail.find("dc-pre"), std::string::npos) << expired[0].detail;
    // The daemon counts what expire_pending returns; the figure is served.
    Metrics metrics(clock_);
    metrics.pending_expired(*n);
    Figures f;
    f.counters = metrics.snapshot(true);
    EXPECT_NE(prometheus_text(f).find("\npwsync_pending_expired_total 1\n"), std::string::npos);
    bool served = false;
    for (const auto& e : monitor_entries(f))
        for (const auto& a : e.attributes) served |= a.first == "pwsyncPendingExpired" && a.second == std::vector<std::string>{"1"};
    EXPECT_TRUE(served);
}

// Several gateways (docs/HA.md): the role of this gateway and every
// gateway the store lists, as cn=monitor entries and Prometheus lines.
TEST(GatewayFigures, TheGatewaysAndTheActiveOneAreServed) {
    Figures f;
    f.role.shared = true;
    f.role.name = "gw2";
    f.role.active = false;
    f.role.contact_age_ms = 1500;
    store::GatewayStatus a, b;
    a.name = "gw1", a.host = "h1", a.pid = 11, a.active = true, a.active_since = 1'790'000'000, a.epoch = 4;
    a.contact_age_ms = 2000;
    b.name = "gw2", b.host = "h2", b.pid = 22, b.contact_age_ms = 1000;
    f.role.gateways = {a, b};
    const auto text = prometheus_text(f);
    for (const char* want : {"\npwsync_active 0\n", "\npwsync_store_contact_age_seconds 1\n",
                             "\npwsync_gateway_active{gateway=\"gw1\"} 1\n", "\npwsync_gateway_active{gateway=\"gw2\"} 0\n",
                             "\npwsync_gateway_contact_age_seconds{gateway=\"gw1\"} 2\n"})
        EXPECT_NE(text.find(want), std::string::npos) << want;
    std::map<std::string, std::map<std::string, std::string>> entries;
    for (const auto& e : monitor_entries(f))
        for (const auto& [attr, values] : e.attributes)
            if (!values.empty()) entries[e.dn][attr] = values.front();
    EXPECT_EQ(entries["cn=monitor"]["pwsyncGatewayActive"], "FALSE");
    EXPECT_EQ(entries["cn=monitor"]["pwsyncGatewayName"], "gw2");
    EXPECT_EQ(entries["cn=gw1,cn=gateways,cn=monitor"]["pwsyncActive"], "TRUE");
    EXPECT_EQ(entries["cn=gw1,cn=gateways,cn=monitor"]["pwsyncActiveSince"], "1790000000");
    EXPECT_EQ(entries["cn=gw2,cn=gateways,cn=monitor"]["pwsyncActive"], "FALSE");
    // One gateway on its store: active, and no gateway list.
    Figures one;
    EXPECT_NE(prometheus_text(one).find("\npwsync_active 1\n"), std::string::npos);
    EXPECT_EQ(prometheus_text(one).find("pwsync_gateway_active"), std::string::npos);
}

TEST_F(EngineTest, AdapterPrincipalNamesItsUserByIdDnOrAuthzId) {
    {
        auto w = std::move(*store_->write("admin"));
        store::App app;
        app.name = "DIR";
        ASSERT_TRUE(w.create_app(app));
        store::Adapter a;
        a.name = "dir";
        a.type = "ldap";
        a.properties = {{"uri", "ldaps://ext.example"}, {"dn-template", "uid=%s,ou=people,dc=ext,dc=example"}};
        a.flags.enabled = true;
        a.flags.sync_from_adapter = true;
        a.flags.change_windows_password = true;
        a.flags.verify_old_password = false;
        ASSERT_TRUE(w.create_adapter(a));
        ASSERT_TRUE(w.add_app_to_adapter("dir", "DIR"));
        store::Mapping m;
        m.app = "DIR";
        m.windows = "TEST\\bob";
        m.external = "carol01";
        ASSERT_TRUE(w.create_mapping(m));
        store::Principal agent;
        agent.name = "dir-agent";
        agent.kind = store::PrincipalKind::adapter;
        agent.adapter = "dir";
        ASSERT_TRUE(w.create_principal(agent, Secret("agent-secret-123456")));
        ASSERT_TRUE(w.commit());
    }
    set(store::SyncMode::full, false);
    int n = 0;
    for (const char* id : {"carol01", "u:carol01", "uid=carol01,ou=people,dc=ext,dc=example",
                           "dn:uid=carol01,ou=people,dc=ext,dc=example", "UID=Carol01 , OU=People,DC=EXT,dc=example"}) {
        const std::string pw = "Partial-Dn-" + std::to_string(++n);
        auto r = change("dir-agent", id, pw);
        EXPECT_EQ(r.outcome, ChangeOutcome::stored) << id << ": " << r.message;
        EXPECT_EQ(credential("DIR", "TEST\\bob"), pw) << id;
    }
    auto outside = change("dir-agent", "uid=carol01,ou=people,dc=other,dc=example", "Outside-1");
    EXPECT_EQ(outside.outcome, ChangeOutcome::no_mapping);
    EXPECT_EQ(outside.message,
              "DN 'uid=carol01,ou=people,dc=other,dc=example' is not under the adapter's base 'ou=people,dc=ext,dc=example'");
    EXPECT_EQ(change("dir-agent", "uid=carol01,ou=people,dc=ext,dc=", "Malformed-1").outcome, ChangeOutcome::malformed);
    EXPECT_EQ(change("dir-agent", "dn:", "Malformed-2").outcome, ChangeOutcome::malformed);
    EXPECT_EQ(credential("DIR", "TEST\\bob"), "Partial-Dn-5");  // refusals change nothing
    EXPECT_TRUE(ad_calls_.empty());

    set(store::SyncMode::full, true);
    EXPECT_EQ(change("dir-agent", "dn:uid=carol01,ou=people,dc=ext,dc=example", "Full-Dn-1").outcome, ChangeOutcome::stored);
    EXPECT_EQ(ad_calls_, (std::vector<std::string>{"TEST\\bob=Full-Dn-1"}));
    EXPECT_EQ(change("dir-agent", "cn=carol01,ou=people,dc=ext,dc=example", "Full-Dn-2").outcome, ChangeOutcome::no_mapping);
    EXPECT_EQ(ad_calls_.size(), 1u);
}

TEST_F(EngineTest, WindowsPrincipalNamesTheAccountByDnOrAuthzId) {
    EXPECT_EQ(change("dc1", "CN=Alice,CN=Users,DC=test,DC=example", "Win-Dn-1").outcome, ChangeOutcome::stored);
    EXPECT_EQ(change("dc1", "dn:cn=alice, cn=users,dc=test,dc=example", "Win-Dn-2").outcome, ChangeOutcome::stored);
    EXPECT_EQ(change("dc1", "u:TEST\\alice", "Win-Dn-3").outcome, ChangeOutcome::stored);
    EXPECT_EQ(queued(), (std::vector<std::string>{"ext-ldap:alice=Win-Dn-1", "racf:ALICE01=Win-Dn-1", "ext-ldap:alice=Win-Dn-2",
                                                  "racf:ALICE01=Win-Dn-2", "ext-ldap:alice=Win-Dn-3", "racf:ALICE01=Win-Dn-3"}));
    auto nobody = change("dc1", "CN=nobody,CN=Users,DC=test,DC=example", "Win-Dn-4");
    EXPECT_EQ(nobody.outcome, ChangeOutcome::no_mapping);
    EXPECT_NE(nobody.message.find("names no Windows account"), std::string::npos) << nobody.message;
    EXPECT_EQ(change("dc1", "CN=alice,CN=Users,DC=", "Win-Dn-5").outcome, ChangeOutcome::malformed);
    EXPECT_EQ(change("dc1", "u:", "Win-Dn-6").outcome, ChangeOutcome::malformed);
    EXPECT_EQ(queued().size(), 6u);
}

// ------------------------------------------------------------ safe scope

store::MappingStatus status_of(store::Store& s, const char* app, const char* win) {
    auto r = std::move(*s.read());
    return r.mapping({app, win})->status;
}

// A disabled account's confirmed change goes nowhere: audited with the
// reason, its mappings stale; once enabled again, the next change syncs.
TEST_F(EngineTest, ADisabledAccountIsNotSynced) {
    states_["alice"] = AccountState{true, ""};
    EXPECT_EQ(change("dc-pre", "alice", "While-Disabled-1").outcome, ChangeOutcome::stored);
    ASSERT_TRUE(engine_->watcher_page({{"alice", filetime(clock_.now()), 0, false}}, "watcher", "c1"));
    EXPECT_TRUE(queued().empty());
    auto skipped = audit_of(*store_, "change.not-sent");
    ASSERT_EQ(skipped.size(), 2u);
    EXPECT_NE(skipped[0].detail.find("account disabled"), std::string::npos) << skipped[0].detail;
    EXPECT_EQ(status_of(*store_, "LINUX", "TEST\\alice"), store::MappingStatus::stale);
    EXPECT_EQ(status_of(*store_, "RACF", "TEST\\alice"), store::MappingStatus::stale);
    EXPECT_TRUE(std::move(*store_->read()).pending_captures()->empty());  // not kept for later
    // Enabled again: nothing is sent by that; the next change is, and clears stale.
    states_.clear();
    clock_.advance(std::chrono::seconds(5));
    EXPECT_EQ(change("dc-pre", "alice", "Enabled-Again-2").outcome, ChangeOutcome::stored);
    ASSERT_TRUE(engine_->watcher_page({{"alice", filetime(clock_.now()), 0, false}}, "watcher", "c2"));
    EXPECT_EQ(queued(), (std::vector<std::string>{"ext-ldap:alice=Enabled-Again-2", "racf:ALICE01=Enabled-Again-2"}));
    EXPECT_EQ(status_of(*store_, "LINUX", "TEST\\alice"), store::MappingStatus::ok);
    // Post-commit captures are checked too.
    states_["alice"] = AccountState{true, ""};
    EXPECT_EQ(change("dc1", "alice", "Post-Commit-3").outcome, ChangeOutcome::stored);
    EXPECT_EQ(queued().size(), 2u);
}

// Full sync sets no AD password of a disabled account, and so sends
// nothing on to its other applications either: refused before anything is
// written.
TEST_F(EngineTest, FullSyncRefusesADisabledAccountsChange) {
    states_["test\\alice"] = AccountState{true, ""};
    auto r = change("ldap-agent", "alice", "Full-Disabled-1", "Linux-Old-1");
    EXPECT_EQ(r.outcome, ChangeOutcome::refused) << r.message;
    EXPECT_NE(r.message.find("account disabled"), std::string::npos) << r.message;
    EXPECT_TRUE(ad_calls_.empty());
    EXPECT_TRUE(queued().empty());
    EXPECT_NE(credential("LINUX", "TEST\\alice"), "Full-Disabled-1");
}

// A privileged account: full sync does not set its AD password from an
// application that does not allow privileged accounts (an external system
// must not take over a domain admin), and does from one that does.
TEST_F(EngineTest, FullSyncRefusesAPrivilegedAccountUnlessTheApplicationAllowsIt) {
    states_["test\\alice"] = AccountState{false, "member of Domain Admins (S-1-5-21-1-2-3-512)"};
    auto r = change("ldap-agent", "alice", "Full-Admin-1", "Linux-Old-1");
    EXPECT_EQ(r.outcome, ChangeOutcome::refused) << r.message;
    EXPECT_NE(r.message.find("Domain Admins"), std::string::npos) << r.message;
    EXPECT_TRUE(ad_calls_.empty());
    ASSERT_TRUE(store_->transact("admin", [&](store::WriteTxn& w) -> Status {
        PWSYNC_ASSIGN(auto app, w.app("LINUX"));
        app.allow_privileged = true;
        return w.update_app(app);
    }));
    r = change("ldap-agent", "alice", "Full-Admin-2", "Linux-Old-1");
    EXPECT_EQ(r.outcome, ChangeOutcome::stored) << r.message;
    EXPECT_EQ(ad_calls_, (std::vector<std::string>{"TEST\\alice=Full-Admin-2"}));
    EXPECT_TRUE(queued().empty());  // RACF does not allow privileged accounts: not sent on
}

// A queued AD write (the directory was down when the change came) is
// checked again just before it is made: the account may have become
// privileged or been disabled while it waited. Refused for good then.
TEST_F(EngineTest, AQueuedADWriteIsCheckedAgainBeforeItIsMade) {
    const Secret pw("Queued-Full-1");
    EXPECT_TRUE(engine_->before_ad_write("TEST\\alice", pw, "ldap-agent", "LINUX"));
    states_["test\\alice"] = AccountState{false, "member of Domain Admins (S-1-5-21-1-2-3-512)"};
    auto st = engine_->before_ad_write("TEST\\alice", pw, "ldap-agent", "LINUX");
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, Errc::refused);
    EXPECT_NE(st.error().message.find("Domain Admins"), std::string::npos) << st.error().message;
    states_["test\\alice"] = AccountState{true, ""};
    st = engine_->before_ad_write("TEST\\alice", pw, "ldap-agent", "LINUX");
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, Errc::refused);
    // A directory that is down: tried again later, not refused.
    states_.clear();
    ad_mode_ = "down";
    st = engine_->before_ad_write("TEST\\alice", pw, "ldap-agent", "LINUX");
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, Errc::unavailable);
    EXPECT_TRUE(ad_calls_.empty());
}

// An account that became privileged after it was mapped: held from the
// applications that do not allow privileged accounts, sent to one that does.
TEST_F(EngineTest, APrivilegedAccountIsHeldUnlessTheApplicationAllowsIt) {
    ASSERT_TRUE(store_->transact("admin", [&](store::WriteTxn& w) -> Status {
        PWSYNC_ASSIGN(auto app, w.app("RACF"));
        app.allow_privileged = true;
        return w.update_app(app);
    }));
    states_["alice"] = AccountState{false, "member of Domain Admins (S-1-5-21-1-2-3-512)"};
    EXPECT_EQ(change("dc-pre", "alice", "Now-An-Admin-1").outcome, ChangeOutcome::stored);
    ASSERT_TRUE(engine_->watcher_page({{"alice", filetime(clock_.now()), 0, false}}, "watcher", "c1"));
    EXPECT_EQ(queued(), (std::vector<std::string>{"racf:ALICE01=Now-An-Admin-1"}));
    auto skipped = audit_of(*store_, "change.not-sent");
    ASSERT_EQ(skipped.size(), 1u);
    EXPECT_EQ(skipped[0].object, "LINUX/TEST\\alice");
    EXPECT_NE(skipped[0].detail.find("Domain Admins"), std::string::npos) << skipped[0].detail;
    EXPECT_EQ(status_of(*store_, "LINUX", "TEST\\alice"), store::MappingStatus::stale);
    EXPECT_EQ(status_of(*store_, "RACF", "TEST\\alice"), store::MappingStatus::ok);
    auto updates = audit_of(*store_, "app.update");
    ASSERT_EQ(updates.size(), 1u);
    EXPECT_NE(updates[0].detail.find("privileged accounts allowed"), std::string::npos) << updates[0].detail;
}

// temporary-passwords = hold: a must-change reset is not sent through that
// adapter, its mapping awaits the user's change; the user's own change then
// syncs as usual and clears the mark. The other adapter (send) gets both.
TEST_F(EngineTest, AHeldTemporaryPasswordWaitsForTheUsersOwnChange) {
    store::AdapterUpdate u;
    u.set_properties["temporary-passwords"] = "hold";
    adapter("ext-ldap", std::move(u));
    EXPECT_EQ(change("dc-pre", "alice", "Helpdesk-Temp-1").outcome, ChangeOutcome::stored);
    ASSERT_TRUE(engine_->watcher_page({{"alice", 0, filetime(clock_.now()), true}}, "watcher", "c1"));
    EXPECT_EQ(queued(), (std::vector<std::string>{"racf:ALICE01=Helpdesk-Temp-1"}));
    auto held = audit_of(*store_, "change.held");
    ASSERT_EQ(held.size(), 1u);
    EXPECT_EQ(held[0].object, "LINUX/TEST\\alice");
    EXPECT_NE(held[0].detail.find("temporary password"), std::string::npos) << held[0].detail;
    EXPECT_EQ(status_of(*store_, "LINUX", "TEST\\alice"), store::MappingStatus::awaiting_change);
    EXPECT_EQ(status_of(*store_, "RACF", "TEST\\alice"), store::MappingStatus::ok);
    clock_.advance(std::chrono::seconds(30));
    EXPECT_EQ(change("dc-pre", "alice", "Users-Own-2").outcome, ChangeOutcome::stored);
    ASSERT_TRUE(engine_->watcher_page({{"alice", filetime(clock_.now()), 0, false}}, "watcher", "c2"));
    EXPECT_EQ(queued(), (std::vector<std::string>{"racf:ALICE01=Helpdesk-Temp-1", "ext-ldap:alice=Users-Own-2",
                                                  "racf:ALICE01=Users-Own-2"}));
    EXPECT_EQ(status_of(*store_, "LINUX", "TEST\\alice"), store::MappingStatus::ok);
    // A value that is neither send nor hold holds (and the CLI refuses it).
    store::AdapterUpdate bad;
    bad.set_properties["temporary-passwords"] = "sometimes";
    adapter("racf", std::move(bad));
    clock_.advance(std::chrono::seconds(30));
    EXPECT_EQ(change("dc-pre", "alice", "Helpdesk-Temp-3").outcome, ChangeOutcome::stored);
    ASSERT_TRUE(engine_->watcher_page({{"alice", 0, filetime(clock_.now()), true}}, "watcher", "c3"));
    EXPECT_EQ(queued().size(), 3u);
}

// A post-commit capture (the DC's change already made) of a must-change
// reset is held as well: the directory's pwdLastSet 0 says it is temporary.
TEST_F(EngineTest, APostCommitTemporaryPasswordIsHeldToo) {
    store::AdapterUpdate u;
    u.set_properties["temporary-passwords"] = "hold";
    adapter("ext-ldap", std::move(u));
    states_["alice"] = AccountState{false, "", true};
    EXPECT_EQ(change("dc1", "alice", "Helpdesk-Temp-1").outcome, ChangeOutcome::stored);
    EXPECT_EQ(queued(), (std::vector<std::string>{"racf:ALICE01=Helpdesk-Temp-1"}));
    EXPECT_EQ(audit_of(*store_, "change.held").size(), 1u);
    EXPECT_EQ(status_of(*store_, "LINUX", "TEST\\alice"), store::MappingStatus::awaiting_change);
    // The user's own change (pwdLastSet set) goes everywhere.
    states_["alice"] = AccountState{};
    clock_.advance(std::chrono::seconds(30));
    EXPECT_EQ(change("dc1", "alice", "Users-Own-2").outcome, ChangeOutcome::stored);
    EXPECT_EQ(queued(), (std::vector<std::string>{"racf:ALICE01=Helpdesk-Temp-1", "ext-ldap:alice=Users-Own-2",
                                                  "racf:ALICE01=Users-Own-2"}));
    EXPECT_EQ(status_of(*store_, "LINUX", "TEST\\alice"), store::MappingStatus::ok);
}

// A confirmed change puts in step only the mappings it reached: one left
// out for another reason (here its adapter's sync-to-adapter is off) stays
// stale, and the account keeps its "stale since" while one does.
TEST_F(EngineTest, AConfirmedChangeClearsStaleOnlyWhereItWasSent) {
    ASSERT_TRUE(engine_->watcher_page({{"alice", filetime(clock_.now()), 0, false, "dc2"}}, "watcher", "c0"));
    EXPECT_EQ(status_of(*store_, "LINUX", "TEST\\alice"), store::MappingStatus::stale);
    EXPECT_EQ(status_of(*store_, "RACF", "TEST\\alice"), store::MappingStatus::stale);
    const auto first = *store::stale_info(std::move(*store_->read()), "alice");
    ASSERT_TRUE(first);
    adapter("racf", [] { store::AdapterUpdate u; u.sync_to_adapter = false; return u; }());
    clock_.advance(std::chrono::seconds(30));
    EXPECT_EQ(change("dc-pre", "alice", "Only-Linux-1").outcome, ChangeOutcome::stored);
    ASSERT_TRUE(engine_->watcher_page({{"alice", filetime(clock_.now()), 0, false, "dc1"}}, "watcher", "c1"));
    EXPECT_EQ(queued(), (std::vector<std::string>{"ext-ldap:alice=Only-Linux-1"}));
    EXPECT_EQ(status_of(*store_, "LINUX", "TEST\\alice"), store::MappingStatus::ok);
    EXPECT_EQ(status_of(*store_, "RACF", "TEST\\alice"), store::MappingStatus::stale);
    auto info = *store::stale_info(std::move(*store_->read()), "alice");
    ASSERT_TRUE(info);
    EXPECT_EQ(info->since, first->since);
    // Sent everywhere: in step, nothing stale left.
    adapter("racf", [] { store::AdapterUpdate u; u.sync_to_adapter = true; return u; }());
    clock_.advance(std::chrono::seconds(30));
    EXPECT_EQ(change("dc-pre", "alice", "Both-Apps-2").outcome, ChangeOutcome::stored);
    ASSERT_TRUE(engine_->watcher_page({{"alice", filetime(clock_.now()), 0, false, "dc1"}}, "watcher", "c2"));
    EXPECT_EQ(status_of(*store_, "RACF", "TEST\\alice"), store::MappingStatus::ok);
    EXPECT_FALSE(*store::stale_info(std::move(*store_->read()), "alice"));
}

// Full sync reaches the account's other applications itself: a stale
// mapping it reached is current again, and the watcher's confirmation of
// pwsync's own AD write (damped: the same password, already fanned out)
// leaves it so.
TEST_F(EngineTest, AFullSyncChangeThatReachesAStaleMappingPutsItRight) {
    ASSERT_TRUE(engine_->watcher_page({{"alice", filetime(clock_.now()), 0, false, "dc1"}}, "watcher", "c0"));
    EXPECT_EQ(status_of(*store_, "RACF", "TEST\\alice"), store::MappingStatus::stale);
    clock_.advance(std::chrono::seconds(30));
    auto r = change("ldap-agent", "alice", "Full-Reach-1", "Linux-Old-1");
    ASSERT_EQ(r.outcome, ChangeOutcome::stored) << r.message;
    EXPECT_EQ(queued(), (std::vector<std::string>{"racf:ALICE01=Full-Reach-1"}));
    EXPECT_EQ(status_of(*store_, "RACF", "TEST\\alice"), store::MappingStatus::ok);
    EXPECT_EQ(status_of(*store_, "LINUX", "TEST\\alice"), store::MappingStatus::ok);  // it came from there
    EXPECT_EQ(change("dc-pre", "alice", "Full-Reach-1").outcome, ChangeOutcome::stored);  // the DC's hook sees our write
    ASSERT_TRUE(engine_->watcher_page({{"alice", filetime(clock_.now()), 0, false, "dc1"}}, "watcher", "c1"));
    EXPECT_EQ(queued().size(), 1u);
    EXPECT_EQ(status_of(*store_, "RACF", "TEST\\alice"), store::MappingStatus::ok);
}

// The directory cannot tell the account's state: the page fails (the
// watcher delivers it again) and the capture stays pending; nothing is sent.
// Accounts with nothing to send are not asked about.
TEST_F(EngineTest, TheAccountStateIsAskedOnlyWhenSomethingWaitsAndAnOutageKeepsTheCapture) {
    ASSERT_TRUE(engine_->watcher_page({{"bob", filetime(clock_.now()), 0, false}}, "watcher", "c0"));
    EXPECT_EQ(state_calls_, 0);
    EXPECT_EQ(change("dc-pre", "alice", "During-Outage-1").outcome, ChangeOutcome::stored);
    ad_mode_ = "down";
    EXPECT_FALSE(engine_->watcher_page({{"alice", filetime(clock_.now()), 0, false}}, "watcher", "c1"));
    EXPECT_TRUE(queued().empty());
    EXPECT_EQ(std::move(*store_->read()).pending_captures()->size(), 1u);
    ad_mode_ = "ok";
    ASSERT_TRUE(engine_->watcher_page({{"alice", filetime(clock_.now()), 0, false}}, "watcher", "c1"));
    EXPECT_EQ(queued().size(), 2u);
}

// A permanent error of one account (an ambiguous name, no access to it)
// does not stall the page: that account's deliveries are withheld
// (fail-closed: its mappings stale, audited with the reason), the page's
// other changes go on and the cursor moves. Only an outage (unavailable,
// timeout) fails the page, to be delivered again.
TEST_F(EngineTest, APermanentDirectoryErrorWithholdsThatAccountOnly) {
    state_errors_["alice"] = Error{Errc::conflict, "alice: ambiguous [LDAP 0, permanent]: several accounts named alice"};
    EXPECT_EQ(change("dc-pre", "alice", "Ambiguous-1").outcome, ChangeOutcome::stored);
    EXPECT_EQ(change("dc-pre", "bob", "Bob-Fine-1").outcome, ChangeOutcome::stored);
    const auto at = filetime(clock_.now());
    ASSERT_TRUE(engine_->watcher_page({{"alice", at, 0, false}, {"bob", at, 0, false}}, "watcher", "c1"));
    EXPECT_EQ(queued(), (std::vector<std::string>{"ext-ldap:bob=Bob-Fine-1"}));
    auto skipped = audit_of(*store_, "change.not-sent");
    ASSERT_EQ(skipped.size(), 2u);
    for (const auto& a : skipped) {
        EXPECT_NE(a.object.find("TEST\\alice"), std::string::npos) << a.object;
        EXPECT_NE(a.detail.find("several accounts named alice"), std::string::npos) << a.detail;
    }
    EXPECT_EQ(status_of(*store_, "LINUX", "TEST\\alice"), store::MappingStatus::stale);
    EXPECT_EQ(status_of(*store_, "RACF", "TEST\\alice"), store::MappingStatus::stale);
    EXPECT_EQ(status_of(*store_, "LINUX", "TEST\\bob"), store::MappingStatus::ok);
    {
        auto r = std::move(*store_->read());
        EXPECT_EQ(**r.cursor("watcher"), "c1");
        EXPECT_TRUE(r.pending_captures()->empty());
    }
    // A timeout is an outage: the page fails, the capture waits.
    state_errors_["bob"] = Error{Errc::timeout, "bob: timeout [LDAP -5, retryable]"};
    clock_.advance(std::chrono::seconds(30));
    EXPECT_EQ(change("dc-pre", "bob", "Bob-Later-2").outcome, ChangeOutcome::stored);
    EXPECT_FALSE(engine_->watcher_page({{"bob", filetime(clock_.now()), 0, false}}, "watcher", "c2"));
    auto r = std::move(*store_->read());
    EXPECT_EQ(**r.cursor("watcher"), "c1");
    EXPECT_EQ(r.pending_captures()->size(), 1u);
}

}  // namespace
}  // namespace pwsync::gateway

namespace pwsync::gateway {
namespace {

// The mapping rules' conflicts, as their last evaluations recorded them,
// are a gauge on /metrics and an attribute of cn=monitor.
TEST_F(EngineTest, RuleConflictsAreAFigure) {
    {
        auto w = std::move(*store_->write("admin"));
        store::Rule r;
        r.name = "staff";
        r.app = "LINUX";
        r.scope.group = "Staff";
        r.external = "{sAMAccountName}";
        ASSERT_TRUE(w.create_rule(r));
        ASSERT_TRUE(w.note_rule_evaluation("staff", {"alice: a hand-made mapping wins", "bob: held rename"}));
        ASSERT_TRUE(w.commit());
    }
    Metrics metrics(clock_);
    FigureSource figures(*store_, metrics, true);
    auto f = figures.collect();
    ASSERT_TRUE(f) << f.error().message;
    EXPECT_EQ(f->rule_conflicts, 2u);
    EXPECT_NE(prometheus_text(*f).find("\npwsync_rule_conflicts 2\n"), std::string::npos);
    bool found = false;
    for (const auto& e : monitor_entries(*f))
        for (const auto& [n, v] : e.attributes) found = found || (n == "pwsyncRuleConflicts" && v == std::vector<std::string>{"2"});
    EXPECT_TRUE(found);
}

}  // namespace
}  // namespace pwsync::gateway
