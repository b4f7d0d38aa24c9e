// The background resolution of mappings' accounts (resolve_unresolved): what
// it records, what it reports, and that a big import costs a few commits, not
// one per account. No server: the directory's answers are a function here.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>

#include "accounts.h"
#include "faulty_backend.h"
#include "helpers.h"

namespace pwsync::gateway {
namespace {

constexpr int kAccounts = 150;

class ResolveAccounts : public ::testing::Test {
protected:
    void SetUp() override {
        store::Options o;
        // LMDB underneath; the lease can be lost (faulty_backend.h).
        o.uri = store::testing::faulty_store_uri(dir_ / "store") + "?map_size=67108864";
        store_.emplace(std::move(*store::Store::init(o)));
        ASSERT_TRUE(store_->transact("admin", [](store::WriteTxn& w) -> Status {
            store::App app;
            app.name = "LINUX";
            PWSYNC_TRY(w.create_app(app));
            for (int i = 1; i <= kAccounts + 1; ++i) {  // the last one's account is not in the directory (and is asked for last)
                store::Mapping m;
                m.app = "LINUX";
                m.windows = i <= kAccounts ? "TEST\\user" + std::to_string(i) : std::string("TEST\\zz-ghost");
                m.external = "ext" + std::to_string(i);
                PWSYNC_TRY(w.create_mapping(m));
            }
            return {};
        }));
    }
    void TearDown() override { store::testing::clear_fault(); }
    // The directory: userN is an account, anything else is not; after
    // `down_after` lookups it cannot be reached.
    Result<store::AccountNames> lookup(std::string_view name) {
        ++lookups_;
        if (down_after_ >= 0 && lookups_ > down_after_) return fail(Errc::unavailable, "Can't contact LDAP server");
        std::string sam(name.substr(name.find('\\') + 1));
        if (!sam.starts_with("user")) return fail(Errc::not_found, "no such account: " + sam);
        auto a = account(sam);
        if (during_lookup_) during_lookup_(a);
        return a;
    }
    static store::AccountNames account(const std::string& sam) {
        store::AccountNames a;
        a.guid = "{00000000-0000-0000-0000-" + std::string(12 - (sam.size() - 4), '0') + sam.substr(4) + "}";
        a.sam = sam;
        a.domain = "TEST";
        a.dn = "CN=" + sam + ",CN=Users,DC=test,DC=example";
        return a;
    }
    Result<std::size_t> resolve() {
        return resolve_unresolved(*store_, clock_, &events_, [this](std::string_view n) { return lookup(n); }, reported_,
                                  [this](std::string_view line) { logged_.emplace_back(line); }, guard_);
    }
    std::size_t unresolved() {
        auto r = store_->read();
        return r->unresolved_mappings()->size();
    }

    test::TempDir dir_;
    std::optional<store::Store> store_;
    std::set<std::string> reported_;
    std::vector<std::string> logged_;
    int lookups_ = 0;
    int down_after_ = -1;
    // What happens while the directory answers (the answer can be changed).
    std::function<void(store::AccountNames&)> during_lookup_;
    SystemClock clock_;
    AccountEvents events_;
    ResolveGuard guard_;
};

TEST_F(ResolveAccounts, ABigImportIsRecordedAFewCommitsAtATime) {
    ASSERT_EQ(unresolved(), std::size_t(kAccounts + 1));
    const auto before = store_->writer_time().batches;
    auto n = resolve();
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_EQ(*n, std::size_t(kAccounts));
    // 150 accounts in commits of 64: three, not 150.
    EXPECT_EQ(store_->writer_time().batches - before, (kAccounts + kResolvedPerCommit - 1) / kResolvedPerCommit);
    EXPECT_EQ(unresolved(), 1U);
    {
        auto r = store_->read();
        auto a = r->account("test\\user42");
        ASSERT_TRUE(a && *a);
        EXPECT_EQ((*a)->guid, "{00000000-0000-0000-0000-000000000042}");
    }
    ASSERT_EQ(logged_.size(), 1U);
    EXPECT_NE(logged_[0].find("LINUX/TEST\\zz-ghost stays unresolved"), std::string::npos) << logged_[0];
    // The next pass asks only for the one left, and does not log it again.
    lookups_ = 0;
    n = resolve();
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 0U);
    EXPECT_EQ(lookups_, 1);
    EXPECT_EQ(logged_.size(), 1U);
}

// An outage stops the pass, but what was found before it stays found.
TEST_F(ResolveAccounts, WhatWasFoundBeforeAnOutageIsKept) {
    down_after_ = 70;
    auto n = resolve();
    ASSERT_FALSE(n);
    EXPECT_EQ(n.error().code, Errc::unavailable);
    EXPECT_EQ(unresolved(), std::size_t(kAccounts + 1 - 70));
    down_after_ = -1;
    n = resolve();
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_EQ(*n, std::size_t(kAccounts - 70));
    EXPECT_EQ(unresolved(), 1U);
}

// One account the store refuses (here a DN too long for a key) is reported
// once and skipped; the other 63 of its batch are written, at every pass.
TEST_F(ResolveAccounts, AnAccountTheStoreRefusesKeepsNoOtherOut) {
    during_lookup_ = [](store::AccountNames& a) {
        if (a.sam == "user5") a.dn = "CN=" + std::string(600, 'x') + ",CN=Users,DC=test,DC=example";
    };
    auto n = resolve();
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_EQ(*n, std::size_t(kAccounts - 1));
    EXPECT_EQ(unresolved(), 2U);
    const auto mentions = [this](std::string_view what) {
        return std::count_if(logged_.begin(), logged_.end(),
                             [&](const std::string& l) { return l.find(what) != std::string::npos; });
    };
    EXPECT_EQ(mentions("LINUX/TEST\\user5: its account {00000000-0000-0000-0000-000000000005} cannot be recorded"), 1)
        << ::testing::PrintToString(logged_);
    {
        auto r = store_->read();
        auto a = r->account("test\\user6");  // in user5's batch
        ASSERT_TRUE(a && *a);
        EXPECT_FALSE(*r->account("test\\user5"));
    }
    // The next pass tries it again, quietly; once the directory's answer can
    // be stored, it is.
    n = resolve();
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 0U);
    EXPECT_EQ(mentions("user5"), 1);
    during_lookup_ = nullptr;
    n = resolve();
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 1U);
    EXPECT_EQ(unresolved(), 1U);
}

// The watcher renames an account while its lookup is out: the rename is
// newer than the answer, and the answer does not undo it.
TEST_F(ResolveAccounts, ARenameRecordedDuringTheLookupStays) {
    during_lookup_ = [this](store::AccountNames& a) {
        if (a.sam != "user7") return;
        auto renamed = account("user7");
        renamed.sam = "user7-new";
        renamed.dn = "CN=user7-new,CN=Users,DC=test,DC=example";
        ASSERT_TRUE(store_->transact("pwsyncd", [&](store::WriteTxn& w) -> Status {
            PWSYNC_TRY(w.note_account(renamed));
            return {};
        }));
    };
    auto n = resolve();
    ASSERT_TRUE(n) << n.error().message;
    auto r = store_->read();
    auto now = r->account("test\\user7-new");
    ASSERT_TRUE(now && *now);
    EXPECT_EQ((*now)->guid, "{00000000-0000-0000-0000-000000000007}");
    EXPECT_FALSE(*r->account("test\\user7"));  // the old name no longer finds it
    // Its mapping, made with the old name, has the account's GUID all the same.
    auto m = r->mapping({"LINUX", "TEST\\user7"});
    ASSERT_TRUE(m);
    EXPECT_EQ(m->object_guid, "{00000000-0000-0000-0000-000000000007}");
    EXPECT_EQ(unresolved(), 1U);
}

// A mapping deleted while its account is looked up is not written back.
TEST_F(ResolveAccounts, AMappingDeletedDuringTheLookupIsNotWrittenBack) {
    during_lookup_ = [this](store::AccountNames& a) {
        if (a.sam != "user9") return;
        ASSERT_TRUE(store_->transact("admin", [](store::WriteTxn& w) { return w.delete_mapping({"LINUX", "TEST\\user9"}); }));
    };
    auto n = resolve();
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_EQ(*n, std::size_t(kAccounts - 1));
    auto r = store_->read();
    EXPECT_FALSE(*r->account("test\\user9"));
    EXPECT_EQ(r->mapping({"LINUX", "TEST\\user9"}).error().code, Errc::not_found);
}

// The watcher sees an account while its lookup is out (deleted or renamed
// there, not recorded as no mapping named it yet): the answer may be out of
// date and is not written; the next pass asks again.
TEST_F(ResolveAccounts, AnAccountTheWatcherSawDuringTheLookupIsAskedAgain) {
    during_lookup_ = [this](store::AccountNames& a) {
        if (a.sam == "user9") events_.note("{00000000-0000-0000-0000-000000000009}");
    };
    auto n = resolve();
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_EQ(*n, std::size_t(kAccounts - 1));
    {
        auto r = store_->read();
        EXPECT_FALSE(*r->account("test\\user9"));
        EXPECT_TRUE(r->mapping({"LINUX", "TEST\\user9"})->object_guid.empty());
    }
    during_lookup_ = nullptr;
    lookups_ = 0;
    n = resolve();
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 1U);
    EXPECT_EQ(lookups_, 2);  // user9 and the ghost
    EXPECT_EQ(unresolved(), 1U);
}

// A mapping resolved otherwise while its lookup is out keeps that GUID.
TEST_F(ResolveAccounts, AMappingResolvedMeanwhileKeepsItsGuid) {
    const std::string other = "{11111111-0000-0000-0000-000000000011}";
    during_lookup_ = [&](store::AccountNames& a) {
        if (a.sam != "user11") return;
        ASSERT_TRUE(store_->transact("admin", [&](store::WriteTxn& w) {
            return w.set_mapping_guid({"LINUX", "TEST\\user11"}, other);
        }));
    };
    auto n = resolve();
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_EQ(*n, std::size_t(kAccounts - 1));
    auto r = store_->read();
    EXPECT_EQ(r->mapping({"LINUX", "TEST\\user11"})->object_guid, other);
    EXPECT_FALSE(*r->account("test\\user11"));
}

// A store that refuses every entry of a batch alike (full) stops the pass
// with one error, instead of one line per mapping.
TEST_F(ResolveAccounts, AStoreThatRefusesEveryEntryStopsThePass) {
    during_lookup_ = [](store::AccountNames& a) { a.dn = "CN=" + std::string(600, 'x') + ",CN=Users,DC=test,DC=example"; };
    auto n = resolve();
    ASSERT_FALSE(n);
    EXPECT_TRUE(logged_.empty()) << ::testing::PrintToString(logged_);
    EXPECT_EQ(unresolved(), std::size_t(kAccounts + 1));
    EXPECT_EQ(lookups_, int(kResolvedPerCommit));  // stopped at the first batch
}

// The gateway stops being the active one in the middle of a long pass: no
// lookup after that, and what was found before is written.
TEST_F(ResolveAccounts, APassEndsWithTheGatewaysTurn) {
    guard_.stopped = [this] { return lookups_ >= 70; };
    auto n = resolve();
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_EQ(*n, 70U);
    EXPECT_EQ(lookups_, 70);
    EXPECT_EQ(unresolved(), std::size_t(kAccounts + 1 - 70));
}

// Several gateways: the answers are written under the active gateway's
// lease. Lost in the middle of the pass (another gateway took it), the
// next batch is refused and the pass ends there, without a line per
// mapping; with no right at all, nothing is written.
TEST_F(ResolveAccounts, AGatewayThatLostTheLeaseWritesNoMore) {
    bool right = true;
    guard_.fence = [&right]() -> std::optional<Fence> {
        if (!right) return std::nullopt;
        return Fence{"gw1", 7, std::chrono::steady_clock::now() + std::chrono::seconds(30)};
    };
    during_lookup_ = [this](store::AccountNames&) {
        if (lookups_ == 70) store::testing::lose_lease();
    };
    auto n = resolve();
    ASSERT_FALSE(n);
    EXPECT_EQ(n.error().code, Errc::refused) << n.error().message;
    EXPECT_EQ(unresolved(), std::size_t(kAccounts + 1 - kResolvedPerCommit));  // the first batch only
    EXPECT_EQ(lookups_, int(2 * kResolvedPerCommit));
    EXPECT_TRUE(logged_.empty()) << ::testing::PrintToString(logged_);

    store::testing::clear_fault();
    during_lookup_ = nullptr;
    right = false;  // no right at all
    lookups_ = 0;
    n = resolve();
    ASSERT_FALSE(n);
    EXPECT_EQ(n.error().code, Errc::refused);
    EXPECT_EQ(unresolved(), std::size_t(kAccounts + 1 - kResolvedPerCommit));
}

// A lease check that met a conflict (busy, retried by the store) is not a
// lost lease: a later batch with one entry the store refuses still writes
// the others.
TEST_F(ResolveAccounts, AConflictAtTheLeaseCheckIsNotALostLease) {
    guard_.fence = []() -> std::optional<Fence> {
        return Fence{"gw1", 7, std::chrono::steady_clock::now() + std::chrono::seconds(30)};
    };
    store::testing::lease_busy(1);
    during_lookup_ = [this](store::AccountNames& a) {
        if (lookups_ == 100) a.dn = "CN=" + std::string(600, 'x') + ",CN=Users,DC=test,DC=example";
    };
    auto n = resolve();
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_EQ(*n, std::size_t(kAccounts - 1));
    EXPECT_EQ(unresolved(), 2U);
    EXPECT_EQ(logged_.size(), 2U) << ::testing::PrintToString(logged_);  // the refused one and the ghost
}

// Bounded: past its size the oldest events are forgotten, and an answer
// asked before them counts as outdated.
TEST(AccountEvents, ForgetsTheOldestAsOutdated) {
    AccountEvents events(2);
    const auto before = events.mark();
    events.note("{A}");
    EXPECT_TRUE(events.since("{a}", before));
    const auto after_a = events.mark();
    EXPECT_FALSE(events.since("{a}", after_a));
    EXPECT_FALSE(events.since("{b}", before));
    events.note("{B}");
    events.note("{C}");  // over the bound: A and B forgotten
    EXPECT_TRUE(events.since("{b}", before));  // asked before what was forgotten
    EXPECT_FALSE(events.since("{z}", events.mark()));
}

}  // namespace
}  // namespace pwsync::gateway
