// Slows down failed simple binds per bind DN and per peer address (see
// BindThrottleOptions in listener.h). Pure bookkeeping on an injected clock:
// the caller does the waiting, so one slowed key never blocks another.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "listener.h"
#include "pwsync/util.h"

namespace pwsync::gateway {

class BindThrottle {
public:
    BindThrottle(const BindThrottleOptions& options, const Clock& clock);

    // Called before a bind is checked. Returns how long this attempt must
    // wait before it is checked (zero when the keys are not throttled), and
    // books that slot so concurrent attempts queue behind each other; or
    // nullopt when the wait would exceed max_delay (answer busy at once).
    std::optional<std::chrono::milliseconds> admit(std::string_view dn, std::string_view peer);
    void failed(std::string_view dn, std::string_view peer);
    void succeeded(std::string_view dn);

    // Keys currently remembered (tests).
    std::size_t tracked() const;

    // Bind DNs differ in case and spacing without naming another entry.
    static std::string dn_key(std::string_view dn);

private:
    struct Entry {
        unsigned failures = 0;
        TimePoint last_failure{};
        TimePoint next_slot{};  // earliest start of the next attempt
    };
    std::chrono::milliseconds delay(const ThrottleLimits& limits, unsigned failures) const;
    Entry* find(const std::string& key, const ThrottleLimits& limits, TimePoint now);
    void record_failure(const std::string& key, const ThrottleLimits& limits, TimePoint now);
    void make_room(TimePoint now);

    BindThrottleOptions options_;
    const Clock& clock_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, Entry> entries_;  // "d:<dn>" or "p:<address>"
};

}  // namespace pwsync::gateway
