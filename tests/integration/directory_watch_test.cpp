// The change watcher against the real Samba DC, in both modes (DirSync and
// uSNChanged polling), with the notification control waking it up.
#include <chrono>
#include <thread>

#include "dc_fixture.h"

namespace pwsync::test {
namespace {

using namespace std::chrono_literals;

struct Seen {
    std::vector<dir::Event> events;
    std::vector<std::string> cookies;
    bool any_full = false;
};

class Watch : public DirectoryTest, public ::testing::WithParamInterface<dir::WatchMode> {
protected:
    dir::WatchOptions options() {
        dir::WatchOptions w;
        w.mode = GetParam();
        w.base = env("PWSYNC_TEST_DC_BASE");
        w.poll_interval = 60s;  // the floor; notifications must do better
        return w;
    }
    dir::Watcher watcher(std::string cookie = {}) {
        auto w = dir::Watcher::open(svc_simple_options(), options(), std::move(cookie));
        if (!w) {
            ADD_FAILURE() << w.error().message;
            throw std::runtime_error("no watcher");
        }
        return std::move(*w);
    }
    Seen poll(dir::Watcher& w) {
        Seen s;
        auto r = w.poll([&](dir::Batch& b) -> Status {
            s.events.insert(s.events.end(), b.events.begin(), b.events.end());
            s.cookies.push_back(b.cookie);
            s.any_full |= b.full_sync;
            return {};
        });
        EXPECT_TRUE(r) << r.error().message;
        return s;
    }
    // The events about one account, in order.
    static std::vector<dir::EventKind> kinds(const Seen& s, const std::string& guid) {
        std::vector<dir::EventKind> out;
        for (const auto& e : s.events)
            if (e.guid == guid) out.push_back(e.kind);
        return out;
    }
    static const dir::Event* find(const Seen& s, const std::string& guid, dir::EventKind k) {
        for (const auto& e : s.events)
            if (e.guid == guid && e.kind == k) return &e;
        return nullptr;
    }
};

using K = dir::EventKind;

TEST_P(Watch, FullSyncThenAPasswordChangeWithinTwoSeconds) {
    auto u = make_user("wpw");
    auto w = watcher();
    auto first = poll(w);
    EXPECT_TRUE(first.any_full);
    ASSERT_EQ(kinds(first, u.guid), std::vector<K>{K::present});
    const auto* p = find(first, u.guid, K::present);
    EXPECT_EQ(p->sam, u.sam);
    EXPECT_EQ(p->enabled, std::optional<bool>(true));
    ASSERT_FALSE(w.cookie().empty());
    ASSERT_EQ(w.cookie(), first.cookies.back());
    EXPECT_TRUE(w.notifications_active()) << "Samba offers the notification control";

    auto c = open(svc_simple_options());
    ASSERT_TRUE(dir::reset_password(c, u.dn, Secret("Watched-Pw.1")));
    const auto t0 = std::chrono::steady_clock::now();
    // The gateway's loop: wait (woken by the DC), poll, until it shows up.
    std::optional<dir::Event> got;
    while (!got && std::chrono::steady_clock::now() - t0 < 10s) {
        auto wake = w.wait(5s);
        ASSERT_TRUE(wake) << wake.error().message;
        auto s = poll(w);
        EXPECT_FALSE(s.any_full);
        if (const auto* e = find(s, u.guid, K::password_changed)) got = *e;
    }
    const auto took = std::chrono::steady_clock::now() - t0;
    ASSERT_TRUE(got) << "no password change reported";
    EXPECT_LT(took, 2s) << "took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
    std::cout << "[ measure ] password change reported after "
              << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
    EXPECT_GT(got->pwd_last_set, p->pwd_last_set);
    auto now = dir::resolve_account(c, domain(), u.guid);
    ASSERT_TRUE(now);
    EXPECT_EQ(got->pwd_last_set, now->pwd_last_set);
}

// A password written after the caller began to watch, but before (or while)
// the first read sees the account, is a change, not the account's state: a
// capture taken then is confirmed, an uncaptured one marked stale. One
// written just before is only the state.
TEST_P(Watch, TheFirstReadReportsWhatChangedSinceTheWatchBegan) {
    auto before = make_user("wfb");
    auto during = make_user("wfd");
    auto c = open(svc_simple_options());
    ASSERT_TRUE(dir::reset_password(c, before.dn, Secret("Just-Before-Pw.1")));
    std::this_thread::sleep_for(20ms);
    auto o = options();
    o.catch_up_not_before = to_filetime(SystemClock().now());  // the gateway began to watch
    ASSERT_TRUE(dir::reset_password(c, during.dn, Secret("While-Reading-Pw.1")));
    auto w = dir::Watcher::open(svc_simple_options(), o, {});
    ASSERT_TRUE(w) << w.error().message;
    auto first = poll(*w);
    EXPECT_TRUE(first.any_full);
    EXPECT_EQ(kinds(first, during.guid), (std::vector<K>{K::present, K::password_changed}));
    EXPECT_EQ(kinds(first, before.guid), std::vector<K>{K::present}) << "written 20 ms before the watch began (most often in the same second)";
    // Once read, nothing is reported again.
    auto second = poll(*w);
    EXPECT_TRUE(kinds(second, during.guid).empty());
}

TEST_P(Watch, RenameDisableEnableCreateDelete) {
    auto ren = make_user("wren");
    auto sam = make_user("wsam");
    auto dis = make_user("wdis");
    auto del = make_user("wdel");
    auto w = watcher();
    poll(w);
    auto& a = admin();
    const std::string base = env("PWSYNC_TEST_DC_BASE");
    const std::string new_cn = unique_name("wrenamed");
    ASSERT_TRUE(a.rename(ren.dn, "CN=" + new_cn));
    cleanup_dc_.push_back("CN=" + new_cn + ",CN=Users," + base);
    const std::string new_sam = unique_name("wsam2");
    ASSERT_TRUE(a.modify(sam.dn, {{dir::Mod::replace, "sAMAccountName", {new_sam}}}));
    ASSERT_TRUE(a.modify(dis.dn, {{dir::Mod::replace, "userAccountControl", {"514"}}}));
    ASSERT_TRUE(a.remove(del.dn));
    auto created = make_user("wnew");

    auto s = poll(w);
    EXPECT_EQ(kinds(s, ren.guid), std::vector<K>{K::renamed});
    EXPECT_EQ(kinds(s, sam.guid), std::vector<K>{K::renamed});
    EXPECT_EQ(kinds(s, dis.guid), std::vector<K>{K::disabled});
    EXPECT_EQ(kinds(s, del.guid), std::vector<K>{K::deleted});
    // A new account: created (its password, set right after, is part of it).
    const auto nk = kinds(s, created.guid);
    ASSERT_FALSE(nk.empty());
    EXPECT_EQ(nk.front(), K::created);
    if (const auto* e = find(s, ren.guid, K::renamed)) {
        EXPECT_NE(e->dn.find(new_cn), std::string::npos) << e->dn;
    }
    if (const auto* e = find(s, sam.guid, K::renamed)) {
        EXPECT_EQ(e->sam, new_sam);
    }
    if (const auto* e = find(s, dis.guid, K::disabled)) {
        EXPECT_EQ(e->enabled, std::optional<bool>(false));
    }

    ASSERT_TRUE(a.modify(dis.dn, {{dir::Mod::replace, "userAccountControl", {"512"}}}));
    s = poll(w);
    EXPECT_EQ(kinds(s, dis.guid), std::vector<K>{K::enabled});
    // Nothing else about the others: each change is reported once.
    EXPECT_TRUE(kinds(s, ren.guid).empty());
    EXPECT_TRUE(kinds(s, del.guid).empty());
}

TEST_P(Watch, RestartWithTheSavedCookieMissesNothingAndRepeatsNothing) {
    auto u1 = make_user("wr1");
    auto u2 = make_user("wr2");
    auto u3 = make_user("wr3");
    auto c = open(svc_simple_options());
    std::string saved;
    {
        auto w = watcher();
        auto s = poll(w);
        saved = s.cookies.back();
        ASSERT_TRUE(dir::reset_password(c, u1.dn, Secret("Before-Stop-Pw.1")));
        s = poll(w);
        EXPECT_EQ(kinds(s, u1.guid), std::vector<K>{K::password_changed});
        saved = s.cookies.back();  // what the gateway persists
    }
    // While no watcher runs: a password change and a rename.
    ASSERT_TRUE(dir::reset_password(c, u2.dn, Secret("While-Stopped-Pw.1")));
    const std::string new_sam = unique_name("wr3b");
    ASSERT_TRUE(admin().modify(u3.dn, {{dir::Mod::replace, "sAMAccountName", {new_sam}}}));

    auto w = watcher(saved);
    auto s = poll(w);
    EXPECT_FALSE(s.any_full) << "a restart with a cookie must not start over";
    EXPECT_TRUE(kinds(s, u1.guid).empty()) << "repeated a change from before the stop";
    EXPECT_EQ(kinds(s, u2.guid), std::vector<K>{K::password_changed}) << "missed a change made while stopped";
    EXPECT_EQ(kinds(s, u3.guid), std::vector<K>{K::renamed});
    s = poll(w);
    EXPECT_TRUE(kinds(s, u2.guid).empty());
    EXPECT_TRUE(kinds(s, u3.guid).empty());
}

TEST_P(Watch, AFailedDeliveryKeepsTheCookie) {
    auto u = make_user("wfail");
    auto w = watcher();
    poll(w);
    const std::string before = w.cookie();
    auto c = open(svc_simple_options());
    ASSERT_TRUE(dir::reset_password(c, u.dn, Secret("Undelivered-Pw.1")));
    auto r = w.poll([](dir::Batch&) -> Status { return fail(Errc::storage, "disk full"); });
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::storage);
    EXPECT_EQ(w.cookie(), before);
    auto s = poll(w);  // the same change again
    EXPECT_EQ(kinds(s, u.guid), std::vector<K>{K::password_changed});
}

std::int64_t filetime_now() { return to_filetime(SystemClock().now()); }

TEST_P(Watch, AResetWithMustChangeAtNextLogonIsATemporaryPasswordChange) {
    auto u = make_user("wtmp");
    auto w = watcher();
    poll(w);
    // What ADUC's "User must change password at next logon" sends with a
    // reset: the password and pwdLastSet 0, in one modify.
    auto value = dir::encode_unicode_pwd("Temporary-Pw.1");
    ASSERT_TRUE(value);
    const std::int64_t before = filetime_now();
    ASSERT_TRUE(admin().modify(u.dn, {{dir::Mod::replace, "unicodePwd", {std::string(value->view())}},
                                      {dir::Mod::replace, "pwdLastSet", {"0"}}}));
    auto s = poll(w);
    ASSERT_EQ(kinds(s, u.guid), std::vector<K>{K::password_changed}) << "the reset was not reported";
    const auto* e = find(s, u.guid, K::password_changed);
    EXPECT_TRUE(e->temporary_password);
    EXPECT_EQ(e->pwd_last_set, 0);
    // The metadata's time (whole seconds) stands in for pwdLastSet.
    EXPECT_GE(e->password_changed_at, before - 20'000'000);
    EXPECT_LE(e->password_changed_at, filetime_now() + 20'000'000);

    // The flag alone is no password change: cleared (pwdLastSet -1 = now),
    // then set again (0).
    ASSERT_TRUE(admin().modify(u.dn, {{dir::Mod::replace, "pwdLastSet", {"-1"}}}));
    s = poll(w);
    EXPECT_EQ(find(s, u.guid, K::password_changed), nullptr) << "pwdLastSet -1 alone reported as a password change";
    ASSERT_TRUE(admin().modify(u.dn, {{dir::Mod::replace, "pwdLastSet", {"0"}}}));
    s = poll(w);
    EXPECT_EQ(find(s, u.guid, K::password_changed), nullptr) << "a bare must-change flag reported as a password change";

    // An ordinary reset after it: a password change, not temporary.
    auto c = open(svc_simple_options());
    ASSERT_TRUE(dir::reset_password(c, u.dn, Secret("Ordinary-Pw.2")));
    s = poll(w);
    ASSERT_EQ(kinds(s, u.guid), std::vector<K>{K::password_changed});
    e = find(s, u.guid, K::password_changed);
    EXPECT_FALSE(e->temporary_password);
    EXPECT_NE(e->pwd_last_set, 0);
}

TEST_P(Watch, WithoutNotificationsWaitSleepsTheWholeTime) {
    dir::WatchOptions o = options();
    o.notifications = false;
    auto w = dir::Watcher::open(svc_simple_options(), o, {});
    ASSERT_TRUE(w) << w.error().message;
    EXPECT_FALSE(w->notifications_active());
    const auto t0 = std::chrono::steady_clock::now();
    auto r = w->wait(300ms);
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, dir::Watcher::Wake::timeout);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 300ms);
}

TEST_P(Watch, ThePollIntervalIsTheFloor) {
    ManualClock clock(from_unix_micros(1'000'000'000'000));
    dir::WatchOptions o = options();
    o.clock = &clock;
    o.poll_interval = 30s;
    auto w = dir::Watcher::open(svc_simple_options(), o, {});
    ASSERT_TRUE(w) << w.error().message;
    EXPECT_EQ(w->until_next_poll(), 0ms);  // never polled: due now
    ASSERT_TRUE(w->poll([](dir::Batch& b) -> Status {
        EXPECT_EQ(to_unix_micros(b.observed), 1'000'000'000'000);
        return {};
    }));
    EXPECT_EQ(w->until_next_poll(), 30s);
    clock.advance(20s);
    EXPECT_EQ(w->until_next_poll(), 10s);
    clock.advance(15s);
    EXPECT_EQ(w->until_next_poll(), 0ms);
}

INSTANTIATE_TEST_SUITE_P(Modes, Watch, ::testing::Values(dir::WatchMode::dirsync, dir::WatchMode::usn),
                         [](const ::testing::TestParamInfo<dir::WatchMode>& p) {
                             return p.param == dir::WatchMode::dirsync ? "dirsync" : "usn";
                         });

class WatchUsn : public DirectoryTest {};

TEST_F(WatchUsn, AnotherInvocationIdStartsOver) {
    auto u = make_user("winv");
    dir::WatchOptions o;
    o.mode = dir::WatchMode::usn;
    o.base = env("PWSYNC_TEST_DC_BASE");
    std::string cookie;
    {
        auto w = dir::Watcher::open(svc_simple_options(), o, {});
        ASSERT_TRUE(w) << w.error().message;
        ASSERT_TRUE(w->poll([](dir::Batch&) -> Status { return {}; }));
        cookie = w->cookie();
    }
    ASSERT_TRUE(cookie.starts_with("usn:{")) << cookie;
    // "usn:{invocationId}:USN:WRITTEN"
    const auto usn_at = cookie.find(':', 4) + 1, written_at = cookie.find(':', usn_at) + 1;
    ASSERT_GT(written_at, usn_at) << cookie;
    const std::int64_t written = std::stoll(cookie.substr(written_at));
    EXPECT_GE(written, to_filetime(SystemClock().now()) - 600'000'000) << "written in the last minute";
    EXPECT_LE(written, to_filetime(SystemClock().now()));
    // The same USN from a different DC (or a restored one) means nothing;
    // a cursor saved before it carried its time (no catch-up possible).
    const std::string other =
        "usn:{00000000-1111-2222-3333-444444444444}:" + cookie.substr(usn_at, written_at - 1 - usn_at);
    auto w = dir::Watcher::open(svc_simple_options(), o, other);
    ASSERT_TRUE(w) << w.error().message;
    bool full = false, present = false;
    ASSERT_TRUE(w->poll([&](dir::Batch& b) -> Status {
        full |= b.full_sync;
        for (const auto& e : b.events) present |= e.guid == u.guid && e.kind == dir::EventKind::present;
        return {};
    }));
    EXPECT_TRUE(full);
    EXPECT_TRUE(present);
    EXPECT_NE(w->cookie(), other);
    EXPECT_EQ(w->cookie().substr(0, 42), cookie.substr(0, 42));  // the DC's real invocationId again
}

// pwsyncd restarted while its DC was down, its watcher now opening on
// another DC with the first one's cursor: a full read that reports the
// passwords written since the cursor was (less the margin, never before
// catch_up_not_before), as a DirSync cookie's creation time allows.
TEST_F(WatchUsn, ACursorFromAnotherDcCatchesUpFromWhenItWasWritten) {
    auto before = make_user("wqui");
    auto after = make_user("wcat");
    dir::WatchOptions o;
    o.mode = dir::WatchMode::usn;
    o.base = env("PWSYNC_TEST_DC_BASE");
    const std::int64_t written = to_filetime(SystemClock().now());
    o.catch_up_not_before = written;  // the margin would also take in the users just made
    // Replication metadata counts whole seconds.
    std::this_thread::sleep_for(1100ms);
    auto c = open(svc_simple_options());
    ASSERT_TRUE(dir::reset_password(c, after.dn, Secret("Caught-Up-Pw.1")));
    const std::string foreign = "usn:{00000000-1111-2222-3333-444444444444}:987654:" + std::to_string(written);
    auto w = dir::Watcher::open(svc_simple_options(), o, foreign);
    ASSERT_TRUE(w) << w.error().message;
    std::vector<dir::EventKind> got_after, got_before;
    bool full = false;
    ASSERT_TRUE(w->poll([&](dir::Batch& b) -> Status {
        full |= b.full_sync;
        for (const auto& e : b.events) {
            if (e.guid == after.guid) got_after.push_back(e.kind);
            if (e.guid == before.guid) got_before.push_back(e.kind);
        }
        return {};
    }));
    EXPECT_TRUE(full);
    EXPECT_EQ(got_after, (std::vector<dir::EventKind>{dir::EventKind::present, dir::EventKind::password_changed}))
        << "the reset made after the cursor was written is reported";
    EXPECT_EQ(got_before, std::vector<dir::EventKind>{dir::EventKind::present}) << "nothing older is";
}

TEST_F(WatchUsn, ACookieThatIsNotOursIsRefused) {
    dir::WatchOptions o;
    o.base = env("PWSYNC_TEST_DC_BASE");
    auto w = dir::Watcher::open(svc_simple_options(), o, "garbage");
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().reason, dir::Reason::invalid_request);
}

}  // namespace
}  // namespace pwsync::test
