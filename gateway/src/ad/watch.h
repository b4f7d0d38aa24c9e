// The directory watcher's loop: follows AD's changes (DirSync or uSN
// polling, woken by change notifications), keeps the store's account names
// current and hands each page of password changes to the engine.
#pragma once

#include <atomic>
#include <functional>
#include <string_view>

#include "account_events.h"
#include "ad.h"
#include "engine.h"
#include "pwsync/store.h"

namespace pwsync::gateway {

// What the loop reports; the daemon wires these to its log and metrics.
struct WatchHooks {
    std::function<void()> polled;  // a poll ended well
    std::function<void()> down;    // the directory could not be watched
    std::function<void(std::string_view)> info;
    std::function<void(std::string_view)> error;
    AccountEvents* events = nullptr;  // told of every account an event names
};

// The store cursor the watcher resumes from.
inline constexpr std::string_view kWatcherCursor = "watcher";
// When the watcher first read the domain (100 ns units since 1601): a
// catch-up after a move to another DC reports nothing older.
inline constexpr std::string_view kWatcherBaselineCursor = "watcher-baseline";
// The cursors of one domain's watcher: the names above for a gateway of one
// domain; with several, each domain's of its own ("watcher:NAME").
struct WatcherCursors {
    std::string cursor{kWatcherCursor}, baseline{kWatcherBaselineCursor};
    // The first of several domains takes over a gateway of one domain's
    // cursors when it has none yet (a second [directory NAME] was added).
    bool inherit = false;
};
WatcherCursors watcher_cursors(const Ad& ad, bool several, bool first);

// Notes when the gateway began to watch the domain, unless it has (or it
// has a cursor already): before it serves, so that every change a DC could
// have captured is after it, and the watcher's first read reports the
// passwords written since as changes. Returns the time kept (empty: a
// cursor exists). Cursors to inherit are copied first.
Result<std::string> began_watching(store::Store& store, const WatcherCursors& cursors);

// Runs until `stopping`: opens a watcher from the stored cursor, applies
// every page (its effects and its cursor commit together, so a restart
// resumes exactly), and reopens after a failure with a growing pause
// (1 s doubling to 60 s).
void watch_directory(store::Store& store, Ad& ad, const WatcherCursors& cursors, Engine& engine,
                     const WatchHooks& hooks, const std::atomic<bool>& stopping);

}  // namespace pwsync::gateway
