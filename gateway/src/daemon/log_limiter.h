// A log line for an event that can repeat at the rate of the requests (a
// bind the store could not check while a database fails over: one per
// sender attempt) is written at most once a period; the ones held back are
// counted in the next line written.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace pwsync::gateway {

class LogLimiter {
public:
    using Now = std::function<std::chrono::steady_clock::time_point()>;
    explicit LogLimiter(std::chrono::steady_clock::duration period, Now now = [] { return std::chrono::steady_clock::now(); })
        : period_(period), now_(std::move(now)) {}

    // The line to write now, or nullopt when one was written less than a
    // period ago (this one is counted).
    std::optional<std::string> admit(std::string_view line) {
        const auto t = now_();
        std::lock_guard lock(mutex_);
        if (last_ && t - *last_ < period_) {
            ++held_;
            return std::nullopt;
        }
        last_ = t;
        std::string out(line);
        if (held_ > 0) out += " (" + std::to_string(held_) + " more like it not logged)";
        held_ = 0;
        return out;
    }

private:
    const std::chrono::steady_clock::duration period_;
    const Now now_;
    std::mutex mutex_;
    std::optional<std::chrono::steady_clock::time_point> last_;
    std::uint64_t held_ = 0;
};

}  // namespace pwsync::gateway
