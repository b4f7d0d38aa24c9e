// The background resolution of mappings' accounts (resolve_unresolved): what
// it records, what it reports, and that a big import costs a few commits, not
// one per account. No server: the directory's answers are a function here.
#include <gtest/gtest.h>

#include <map>

#include "accounts.h"
#include "helpers.h"

namespace pwsync::gateway {
namespace {

constexpr int kAccounts = 150;

class ResolveAccounts : public ::testing::Test {
protected:
    void SetUp() override {
        store::Options o;
        o.uri = "lmdb:" + (dir_ / "store") + "?map_size=67108864";
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
    // The directory: userN is an account, anything else is not; after
    // `down_after` lookups it cannot be reached.
    Result<store::AccountNames> lookup(std::string_view name) {
        ++lookups_;
        if (down_after_ >= 0 && lookups_ > down_after_) return fail(Errc::unavailable, "Can't contact LDAP server");
        std::string sam(name.substr(name.find('\\') + 1));
        if (!sam.starts_with("user")) return fail(Errc::not_found, "no such account: " + sam);
        store::AccountNames a;
        a.guid = "{00000000-0000-0000-0000-" + std::string(12 - (sam.size() - 4), '0') + sam.substr(4) + "}";
        a.sam = sam;
        a.domain = "TEST";
        a.dn = "CN=" + sam + ",CN=Users,DC=test,DC=example";
        return a;
    }
    Result<std::size_t> resolve() {
        return resolve_unresolved(*store_, [this](std::string_view n) { return lookup(n); }, reported_,
                                  [this](std::string_view line) { logged_.emplace_back(line); });
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

}  // namespace
}  // namespace pwsync::gateway
