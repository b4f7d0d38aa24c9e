// The running gateway: store, engine, dispatcher, listener, and — when a
// [directory] is configured — the AD writer and the change watcher.
#pragma once

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "config.h"
#include "pwsync/util.h"

namespace pwsync::gateway {

class Daemon {
public:
    // Opens everything and starts serving; with `check_only`, opens and
    // checks everything, then stops without serving.
    static Result<std::unique_ptr<Daemon>> start(const DaemonConfig& config, bool check_only);
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;
    ~Daemon();
    // Stops accepting, finishes deliveries in flight, stops the watcher.
    void stop();

    struct Parts;

private:
    Daemon() = default;
    // The parts only the active gateway runs: the dispatcher, the directory
    // watcher, account resolution and pending-capture expiry. One gateway
    // on its store: started at once. Several (a shared store): while this
    // one holds the lease (lease_loop).
    void start_active();
    void stop_active();
    void lease_loop();
    void housekeeping_loop();
    void watch_loop(std::size_t domain);  // one per domain
    void resolve_loop();
    void rules_loop();
    std::unique_ptr<Parts> parts_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> active_stop_{true};  // the active parts are (to be) stopped
    bool active_ = false;                  // they run (lease thread, or start/stop only)
    std::thread housekeeping_, resolver_, rules_, lease_;
    std::vector<std::thread> watchers_;
};

}  // namespace pwsync::gateway
