#include "watch.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <vector>

#include "accounts.h"
#include "pwsync/stop_flag.h"

namespace pwsync::gateway {
namespace {

// A poll makes the DC work out what changed since the last one, and Samba
// does that in time that grows with the domain (docs/BENCHMARKS.md: 4 ms on
// 300 objects, 150 ms on 20,000). During a burst of changes (a full-sync
// wave: a notification for each) a poll per notification kept the DC busy
// with polls; now, after a poll whose DC part took d, the next one waits
// until kRestPerPoll x d has passed, so polls keep a DC busy a fifth of the
// time at most, and one poll collects the burst. A change after a quiet
// spell is still read at once. The rest is capped: changes wait at most
// kLongestRest longer.
constexpr int kRestPerPoll = 4;
constexpr std::chrono::milliseconds kLongestRest{1000};

// Polls and waits until the watcher fails or the loop is asked to stop.
void follow(directory::Watcher& watcher, store::Store& store, Ad& ad, std::string_view cursor, Engine& engine,
            const WatchHooks& hooks, const std::atomic<bool>& stopping) {
    using Steady = std::chrono::steady_clock;
    bool poll_now = true, notified = false;
    Steady::time_point rested{};  // the DC has rested enough after the last poll
    std::string reading = watcher.uri();
    while (!stopping) {
        if (!poll_now) {
            // Wake on a notification, or when the next poll is due; look at
            // the stop flag at least every second.
            auto budget = std::min(watcher.until_next_poll(), std::chrono::milliseconds(1000));
            if (notified)  // a notification waits for the DC's rest
                budget = std::min(budget, std::chrono::ceil<std::chrono::milliseconds>(
                                              std::max(rested - Steady::now(), Steady::duration::zero())));
            using Wake = directory::Watcher::Wake;
            auto woke = budget.count() > 0 ? watcher.wait(budget) : directory::LdapResult<Wake>(Wake::timeout);
            if (!woke) {
                hooks.error("directory watcher: " + woke.error().message);
                return;
            }
            notified = notified || *woke == Wake::notified;
            poll_now = (notified && Steady::now() >= rested) || watcher.until_next_poll() == std::chrono::milliseconds(0);
            continue;
        }
        poll_now = notified = false;
        const auto began = Steady::now();
        Steady::duration ours{};  // the engine's share of the poll, not the DC's
        auto polled = watcher.poll([&](directory::Batch& b) -> Status {
            const auto delivering = Steady::now();
            struct Count {
                Steady::duration& ours;
                Steady::time_point from;
                ~Count() { ours += Steady::now() - from; }
            } count{ours, delivering};
            // Names first, outside the store's write transaction (they may ask the DC).
            std::vector<DirectoryChange> changes;
            for (const auto& e : b.events) {
                // The store's account names follow renames and deletions.
                PWSYNC_ASSIGN(const std::string account, note_event(store, ad, e, hooks.events));
                if (e.kind != directory::EventKind::password_changed) continue;
                changes.push_back({account, e.pwd_last_set, e.password_changed_at, e.temporary_password, e.origin_dc});
            }
            return engine.watcher_page(changes, cursor, b.cookie);
        });
        const auto dc = std::max(Steady::now() - began - ours, Steady::duration::zero());
        rested = Steady::now() + std::min<Steady::duration>(kRestPerPoll * dc, kLongestRest);
        if (!polled) {
            hooks.down();
            hooks.error("directory watcher: " + polled.error().message);
            return;  // reopened at once; a failing open waits
        }
        hooks.polled();
        // The connection moves to the next URI by itself when its DC stops
        // answering: say so, as the watcher now reads another DC's changes.
        if (std::string now = watcher.uri(); now != reading) {
            hooks.info("directory watcher now reads " + now + " (was " + reading + ")");
            reading = std::move(now);
        }
    }
}

}  // namespace

WatcherCursors watcher_cursors(const Ad& ad, bool several, bool first) {
    WatcherCursors c;
    if (!several) return c;
    const std::string name = ascii_lower(ad.settings().name);
    c.cursor += ":" + name;
    c.baseline += ":" + name;
    c.inherit = first;
    return c;
}

Result<std::string> began_watching(store::Store& store, const WatcherCursors& cursors) {
    std::string baseline;
    PWSYNC_TRY(store.transact("pwsyncd", [&](store::WriteTxn& w) -> Status {
        PWSYNC_ASSIGN(auto cookie, w.cursor(cursors.cursor));
        PWSYNC_ASSIGN(auto kept, w.cursor(cursors.baseline));
        if (!cookie && !kept && cursors.inherit) {
            // Its watch goes on where the gateway of one domain left it: no
            // change made meanwhile is lost (its cookie names its DC, so a
            // cookie of another domain's DC is dropped and caught up from).
            PWSYNC_ASSIGN(cookie, w.cursor(kWatcherCursor));
            PWSYNC_ASSIGN(kept, w.cursor(kWatcherBaselineCursor));
            if (cookie) PWSYNC_TRY(w.set_cursor(cursors.cursor, *cookie));
            if (kept) PWSYNC_TRY(w.set_cursor(cursors.baseline, *kept));
        }
        if (kept) baseline = *kept;
        if ((cookie && !cookie->empty()) || !baseline.empty()) return {};
        baseline = std::to_string(to_filetime(SystemClock{}.now()));
        return w.set_cursor(cursors.baseline, baseline);
    }));
    return baseline;
}

void watch_directory(store::Store& store, Ad& ad, const WatcherCursors& cursors, Engine& engine,
                     const WatchHooks& hooks, const std::atomic<bool>& stopping) {
    std::chrono::milliseconds backoff{1000};
    while (!stopping) {
        std::string cookie, baseline;
        if (auto r = store.read()) {
            if (auto c = r->cursor(cursors.cursor); c && *c) cookie = **c;
            if (auto c = r->cursor(cursors.baseline); c && *c) baseline = **c;
        }
        if (cookie.empty() && baseline.empty()) {  // pwsyncd did not say when it began (an older start)
            auto began = began_watching(store, cursors);
            if (!began) hooks.error("directory watcher: " + began.error().message);
            else baseline = *began;
        }
        directory::WatchOptions wo;
        wo.mode = ad.settings().watch;
        wo.base = ad.domain().base;
        wo.dirsync_flags = ad.settings().dirsync_flags;
        wo.poll_interval = ad.settings().poll_interval;
        wo.catch_up_not_before = baseline.empty() ? 0 : std::strtoll(baseline.c_str(), nullptr, 10);
        auto watcher = directory::Watcher::open(ad.connect_options(), wo, cookie);
        if (!watcher) {
            hooks.down();
            hooks.error("directory watcher: " + watcher.error().message);
            sleep_unless_stopped(stopping, backoff);
            backoff = std::min(backoff * 2, std::chrono::milliseconds(60000));
            continue;
        }
        backoff = std::chrono::milliseconds(1000);
        hooks.info("directory watcher" + (cursors.cursor == kWatcherCursor ? std::string() : " of " + directory::section_label(ad.settings())) + " started on " + watcher->uri() + (cookie.empty() ? " (full sync)" : " (resuming)") +
                   (watcher->notifications_active() ? ", with change notifications" : ""));
        follow(*watcher, store, ad, cursors.cursor, engine, hooks, stopping);
    }
}

}  // namespace pwsync::gateway
