// Which of several gateways on one shared store is the active one: the one
// that runs the directory watcher and the dispatcher (docs/HA.md). Every
// gateway reports to the store every `renew_every`; the active one renews
// its lease then, a standby takes the lease once it has expired.
//
// The right to act as the active gateway is kept on this process's
// monotonic clock, never compared with another machine's: it ends
// `ttl - margin` after the heartbeat that granted it was SENT, which is
// before the lease expires on the database's clock (the database set the
// expiry later than that, to its own now + ttl). Deliveries never outlast
// the right (Delivery::deadline), and a gateway that takes over waits
// `settle` before it delivers, for what was already on the wire. So two
// gateways never deliver at once, and per-account order holds.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "dispatcher.h"  // Fence
#include "pwsync/store.h"

namespace pwsync::gateway {

using SteadyTime = std::chrono::steady_clock::time_point;

struct LeadershipOptions {
    // A dead, hung or cut-off active gateway is replaced within this.
    std::chrono::milliseconds failover_timeout{15000};
    std::function<SteadyTime()> now;              // nullptr: steady_clock
    std::function<void(std::string_view)> info;   // role changes
    std::function<void(std::string_view)> warn;   // lost contact, ...
};

// The timings a failover-timeout gives (docs/HA.md explains the sum).
struct LeaseTimings {
    std::chrono::milliseconds ttl, renew_every, margin, settle;
};
LeaseTimings lease_timings(std::chrono::milliseconds failover_timeout);

class Leadership {
public:
    Leadership(store::Store& store, store::GatewayIdentity me, LeadershipOptions options);

    // One heartbeat: reports this gateway, takes or renews the lease when
    // `want`. Returns when to beat next.
    SteadyTime beat(bool want);
    // Gives the lease up (a clean stop, after the dispatcher has stopped).
    void release();

    // The right as it stands now; nullopt when this gateway is not active.
    std::optional<Fence> fence() const;
    // Active, and past the settling wait of a new term: deliveries may start.
    bool may_deliver() const;

    struct State {
        bool active = false;
        std::uint64_t epoch = 0;
        std::chrono::system_clock::time_point active_since{};  // this process's clock, for display
        std::optional<std::chrono::milliseconds> contact_age;  // since the last answered heartbeat
        std::string holder;                                      // when another gateway is active
    };
    State state() const;
    const store::GatewayIdentity& identity() const { return me_; }
    const LeaseTimings& timings() const { return t_; }

private:
    SteadyTime now() const { return options_.now ? options_.now() : std::chrono::steady_clock::now(); }
    void say(const std::function<void(std::string_view)>& to, const std::string& line) const {
        if (to) to(line);
    }

    store::Store& store_;
    store::GatewayIdentity me_;
    LeadershipOptions options_;
    LeaseTimings t_;
    std::string predecessor_;  // this gateway's previous instance, found dead at start

    mutable std::mutex mutex_;
    std::uint64_t epoch_ = 0;
    SteadyTime until_{}, settled_{}, last_contact_{};
    bool contact_ = false, lost_contact_said_ = false;
    std::chrono::system_clock::time_point since_{};
    std::string holder_;
};

}  // namespace pwsync::gateway
