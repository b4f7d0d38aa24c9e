#include "leadership.h"

#include <signal.h>

#include <algorithm>
#include <cerrno>

namespace pwsync::gateway {
namespace {

// Whether a process with this pid exists (EPERM: it does, not ours).
bool process_alive(std::uint32_t pid) {
    return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH;
}

}  // namespace

LeaseTimings lease_timings(std::chrono::milliseconds failover_timeout) {
    using std::chrono::milliseconds;
    // failover <= ttl (the dead holder's lease runs out) + renew_every (the
    // standby's next heartbeat) + settle; margin covers the two clocks'
    // rates over one ttl and the heartbeat's own time.
    const milliseconds ttl = failover_timeout * 2 / 3;
    return {ttl, ttl / 5, ttl / 10, ttl / 10};
}

Leadership::Leadership(store::Store& store, store::GatewayIdentity me, LeadershipOptions options)
    : store_(store), me_(std::move(me)), options_(std::move(options)), t_(lease_timings(options_.failover_timeout)) {
    // This gateway's previous instance, when it ran on this host and its
    // process is gone (killed, crashed): its lease is taken over at once.
    if (auto seen = store_.gateways(std::chrono::hours(24)); seen) {
        for (const auto& g : *seen) {
            if (g.name != me_.name || g.instance == me_.instance || g.host != me_.host || g.pid == me_.pid) continue;
            if (!process_alive(g.pid)) predecessor_ = g.instance;
        }
    }
}

SteadyTime Leadership::beat(bool want) {
    const SteadyTime sent = now();
    auto lease = store_.heartbeat(me_, t_.ttl, want, predecessor_);
    std::string line;
    std::function<void(std::string_view)>* to = &options_.info;
    {
        std::lock_guard lock(mutex_);
        if (!lease) {
            // No answer: the right runs out on its own (until_ stays).
            if (!lost_contact_said_) {
                line = "cannot reach the store for the heartbeat: " + lease.error().message +
                       (epoch_ != 0 && until_ > sent ? " (still active for at most " +
                                                           std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(until_ - sent).count()) +
                                                           " ms)"
                                                     : "");
                to = &options_.warn;
                lost_contact_said_ = true;
            }
        } else {
            lost_contact_said_ = false;
            contact_ = true;
            last_contact_ = now();
            predecessor_.clear();
            if (lease->held) {
                if (lease->epoch != epoch_ || until_ <= sent) {
                    // A new term: what the last holder may still have on the
                    // wire settles first (not after a clean hand-over).
                    settled_ = lease->settle ? sent + t_.settle : sent;
                    since_ = std::chrono::system_clock::now();
                    line = "active: this gateway runs the directory watcher and the dispatcher (lease epoch " +
                           std::to_string(lease->epoch) + ")";
                }
                epoch_ = lease->epoch;
                until_ = sent + lease->valid_for - t_.margin;
                holder_.clear();
            } else {
                if (epoch_ != 0 && until_ > sent)
                    line = "standby: the lease went to " + (lease->holder.empty() ? std::string("another gateway")
                                                                                   : lease->holder);
                else if (holder_ != lease->holder || epoch_ != 0)
                    line = "standby: " + (lease->holder.empty() ? std::string("no gateway is active yet")
                                                                : lease->holder + " is the active gateway");
                epoch_ = 0;
                until_ = {};
                holder_ = lease->holder;
            }
        }
    }
    if (!line.empty()) say(*to, line);
    // Beat again in renew_every; sooner when the right would run out first.
    SteadyTime next = sent + t_.renew_every;
    std::lock_guard lock(mutex_);
    if (epoch_ != 0 && until_ > now()) next = std::min(next, until_);
    return next;
}

void Leadership::release() {
    std::uint64_t epoch = 0;
    {
        std::lock_guard lock(mutex_);
        epoch = epoch_;
        epoch_ = 0;
        until_ = {};
    }
    if (epoch == 0) return;
    if (auto st = store_.release_lease(me_, epoch); !st)
        say(options_.warn, "cannot give the lease up (another gateway takes over when it expires): " + st.error().message);
    else
        say(options_.info, "standby: this gateway gave the lease up (stopping)");
}

std::optional<Fence> Leadership::fence() const {
    std::lock_guard lock(mutex_);
    if (epoch_ == 0 || now() >= until_) return std::nullopt;
    return Fence{me_.instance, epoch_, until_};
}

bool Leadership::may_deliver() const {
    std::lock_guard lock(mutex_);
    const SteadyTime t = now();
    return epoch_ != 0 && t < until_ && t >= settled_;
}

Leadership::State Leadership::state() const {
    std::lock_guard lock(mutex_);
    State s;
    const SteadyTime t = now();
    s.active = epoch_ != 0 && t < until_;
    s.epoch = s.active ? epoch_ : 0;
    s.active_since = s.active ? since_ : std::chrono::system_clock::time_point{};
    if (contact_) s.contact_age = std::chrono::duration_cast<std::chrono::milliseconds>(t - last_contact_);
    s.holder = holder_;
    return s;
}

}  // namespace pwsync::gateway
