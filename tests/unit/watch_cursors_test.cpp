// Which store cursors each domain's watcher resumes from. No server: Ad is
// only named here, never connected.
#include <gtest/gtest.h>

#include "helpers.h"
#include "watch.h"

namespace pwsync::gateway {
namespace {

class WatchCursors : public ::testing::Test {
protected:
    void SetUp() override {
        store::Options o;
        o.uri = "lmdb:" + (dir_ / "store") + "?map_size=67108864";
        store_.emplace(std::move(*store::Store::init(o)));
    }
    static Ad ad(const char* name) {
        directory::Settings s;
        s.name = name;
        s.uris = {"ldaps://127.0.0.1:1"};
        return Ad(s, directory::ConnectOptions{}, nullptr, true);
    }
    std::string cursor(const std::string& name) {
        auto r = store_->read();
        auto c = r->cursor(name);
        return c && *c ? **c : "(none)";
    }
    test::TempDir dir_;
    std::optional<store::Store> store_;
};

TEST_F(WatchCursors, OneDomainKeepsItsNamesAndSeveralHaveTheirOwn) {
    const auto a = ad("EXAMPLE"), b = ad("OTHER");
    EXPECT_EQ(watcher_cursors(a, false, true).cursor, "watcher");
    EXPECT_EQ(watcher_cursors(a, true, true).cursor, "watcher:example");
    EXPECT_EQ(watcher_cursors(b, true, false).baseline, "watcher-baseline:other");
    EXPECT_FALSE(watcher_cursors(b, true, false).inherit);
}

// A second [directory NAME] added to a gateway of one domain: the first
// section goes on from the old cursor (nothing made meanwhile is lost), the
// new one begins now.
TEST_F(WatchCursors, TheFirstDomainInheritsTheCursorsOfAGatewayOfOneDomain) {
    ASSERT_TRUE(store_->transact("test", [](store::WriteTxn& w) -> Status {
        PWSYNC_TRY(w.set_cursor("watcher", "dirsync:old-cookie"));
        return w.set_cursor("watcher-baseline", "130000000000000000");
    }));
    const auto a = ad("EXAMPLE"), b = ad("OTHER");
    auto first = began_watching(*store_, watcher_cursors(a, true, true));
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_EQ(*first, "130000000000000000");
    EXPECT_EQ(cursor("watcher:example"), "dirsync:old-cookie");
    auto second = began_watching(*store_, watcher_cursors(b, true, false));
    ASSERT_TRUE(second);
    EXPECT_EQ(cursor("watcher:other"), "(none)");
    EXPECT_GT(std::stoll(*second), 130000000000000000LL) << "the new domain's watch begins now";
    // Begun once: a restart keeps both.
    EXPECT_EQ(*began_watching(*store_, watcher_cursors(b, true, false)), *second);
}

}  // namespace
}  // namespace pwsync::gateway
