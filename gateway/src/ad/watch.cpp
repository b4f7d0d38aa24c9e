#include "watch.h"

#include <cstdlib>
#include <vector>

#include "accounts.h"
#include "pwsync/stop_flag.h"

namespace pwsync::gateway {
namespace {

// Polls and waits until the watcher fails or the loop is asked to stop.
void follow(directory::Watcher& watcher, store::Store& store, Ad& ad, std::string_view cursor, Engine& engine,
            const WatchHooks& hooks, const std::atomic<bool>& stopping) {
    bool poll_now = true;
    std::string reading = watcher.uri();
    while (!stopping) {
        if (!poll_now) {
            // Wake on a notification, or when the next poll is due; look at
            // the stop flag at least every second.
            auto woke = watcher.wait(std::min(watcher.until_next_poll(), std::chrono::milliseconds(1000)));
            if (!woke) {
                hooks.error("directory watcher: " + woke.error().message);
                return;
            }
            poll_now = *woke == directory::Watcher::Wake::notified ||
                       watcher.until_next_poll() == std::chrono::milliseconds(0);
            continue;
        }
        poll_now = false;
        auto polled = watcher.poll([&](directory::Batch& b) -> Status {
            // Names first, outside the store's write transaction (they may ask the DC).
            std::vector<DirectoryChange> changes;
            for (const auto& e : b.events) {
                // The store's account names follow renames and deletions.
                PWSYNC_ASSIGN(const std::string account, note_event(store, ad, e));
                if (e.kind != directory::EventKind::password_changed) continue;
                changes.push_back({account, e.pwd_last_set, e.password_changed_at, e.temporary_password, e.origin_dc});
            }
            return engine.watcher_page(changes, cursor, b.cookie);
        });
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
