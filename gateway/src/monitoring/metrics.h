// What the daemon reports to monitoring: counters it keeps since it
// started, plus figures read from the store at the time of asking. The same
// figures are served as the read-only cn=monitor subtree on the listener and
// as Prometheus text on the optional loopback /metrics endpoint.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "listener.h"  // SearchEntry
#include "outcomes.h"
#include "pwsync/dc_health.h"
#include "pwsync/store.h"
#include "pwsync/util.h"

namespace pwsync::gateway {

inline constexpr std::array<std::string_view, 4> kModes = {"windows", "full", "partial", "external"};
// stored; refused (policy, no mapping, sync off); denied (credentials,
// rights); failed (store or server trouble: the sender retries).
inline constexpr std::array<std::string_view, 4> kResults = {"stored", "refused", "denied", "failed"};

class Metrics {
public:
    explicit Metrics(const Clock& clock) : clock_(clock), started_(clock.now()) {}

    // A Password Modify for a change in `mode` that came to `outcome`;
    // `took`: from the request to the answer, `parts` of it.
    void change(std::string_view mode, ChangeOutcome outcome, std::chrono::nanoseconds took = {},
                ChangeTimes parts = {}) noexcept;
    // Several domains: one watcher each, named (before they start; at most
    // kMaxWatchers). One: unnamed.
    static constexpr std::size_t kMaxWatchers = 32;  // directory::kMaxDirectories
    void set_watchers(std::vector<std::string> names) { watcher_names_ = std::move(names); }
    void watcher_polled(std::size_t i = 0) noexcept {
        if (i >= kMaxWatchers) return;
        watchers_[i].last_poll.store(clock_.now().time_since_epoch().count());
        watchers_[i].up = true;
    }
    void watcher_down(std::size_t i = 0) noexcept {
        if (i < kMaxWatchers) watchers_[i].up = false;
    }
    // Pre-commit captures the directory never confirmed within pending-ttl.
    void pending_expired(std::uint64_t n) noexcept { pending_expired_.fetch_add(n, std::memory_order_relaxed); }

    struct Snapshot {
        std::array<std::array<std::uint64_t, kResults.size()>, kModes.size()> changes{};
        // Per mode, the time its changes took in all, and asking the
        // directory and the store within it (ChangeTimes).
        struct Times {
            std::chrono::nanoseconds all{0}, directory{0}, store{0};
        };
        std::array<Times, kModes.size()> times{};
        bool watcher_configured = false;
        bool watcher_up = false;               // every domain's watcher
        std::chrono::seconds watcher_lag{-1};  // since the last successful poll (the longest); -1: never
        struct Watcher {
            std::string name;
            bool up = false;
            std::chrono::seconds lag{-1};
        };
        std::vector<Watcher> watchers;         // several domains: each one's
        std::chrono::seconds uptime{0};
        std::uint64_t pending_expired = 0;
    };
    Snapshot snapshot(bool watcher_configured) const;
    const Clock& clock() const { return clock_; }

private:
    const Clock& clock_;
    TimePoint started_;
    std::array<std::array<std::atomic<std::uint64_t>, kResults.size()>, kModes.size()> changes_{};
    struct TimeSums {
        std::atomic<std::int64_t> all{0}, directory{0}, store{0};  // ns
    };
    std::array<TimeSums, kModes.size()> times_{};
    struct WatcherSlot {
        std::atomic<TimePoint::rep> last_poll{0};
        std::atomic<bool> up{false};
    };
    std::array<WatcherSlot, kMaxWatchers> watchers_{};
    std::vector<std::string> watcher_names_;
    std::atomic<std::uint64_t> pending_expired_{0};
};

// Store figures per adapter ("@windows" is the built-in AD writer).
struct AdapterFigures {
    std::uint64_t queued = 0;
    std::uint64_t dead_letters = 0;
    std::chrono::seconds oldest_queued{0};
};

// Several gateways on one store (docs/HA.md): this one's role, and every
// gateway the store heard from lately.
struct GatewayRole {
    bool shared = false;                 // the store allows several gateways
    std::string name;                    // this gateway's
    bool active = true;                  // runs the watcher and the dispatcher
    std::uint64_t epoch = 0;
    std::int64_t active_since = 0;       // Unix seconds; 0: not active
    std::int64_t contact_age_ms = -1;    // since this gateway's last answered heartbeat; -1: none yet
    std::string holder;                  // the active gateway, when another
    std::vector<store::GatewayStatus> gateways;
};

struct Figures {
    Metrics::Snapshot counters;
    GatewayRole role;
    std::map<std::string, AdapterFigures> adapters;
    std::uint64_t queued = 0, dead_letters = 0, pending_captures = 0, stale_mappings = 0, mappings = 0;
    std::uint64_t rule_conflicts = 0;  // as the rules' last evaluations found them
    // Which DC is not capturing: per DC, as the watcher counted.
    std::vector<store::DcHealth> dcs;
    TimePoint now{};  // when collected: the DCs' 24 h window ends here
    std::uint64_t awaiting_change_mappings = 0;  // temporary passwords held for the user's own change
    // The store's single writer since pwsyncd opened it: is it the limit,
    // and how much of its turn is the commit (the disk)?
    store::Store::WriterTime writer;
};

// Reads the store's side. Counting stale mappings walks every mapping, so
// the result is kept for `stale_refresh` between calls.
class FigureSource {
public:
    FigureSource(store::Store& store, const Metrics& metrics, bool watcher_configured,
                 std::chrono::seconds stale_refresh = std::chrono::seconds(60))
        : store_(store), metrics_(metrics), watcher_(watcher_configured), stale_refresh_(stale_refresh) {}
    Result<Figures> collect();
    // Several gateways: where this gateway's role comes from.
    void set_role(std::function<GatewayRole()> role) { role_ = std::move(role); }

private:
    std::function<GatewayRole()> role_;
    store::Store& store_;
    const Metrics& metrics_;
    bool watcher_;
    std::chrono::seconds stale_refresh_;
    std::mutex mutex_;
    TimePoint stale_at_{};
    std::uint64_t stale_ = 0;
    std::uint64_t awaiting_ = 0;
};

std::vector<SearchEntry> monitor_entries(const Figures& f);
std::string prometheus_text(const Figures& f);

}  // namespace pwsync::gateway
