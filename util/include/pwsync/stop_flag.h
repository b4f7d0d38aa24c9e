// Sleeping in a thread that must notice a stop request within a moment.
#pragma once

#include <atomic>
#include <chrono>
#include <thread>

namespace pwsync {

// Sleeps for `total`, looking at `stopping` every quarter second. Returns
// false when it was asked to stop.
inline bool sleep_unless_stopped(const std::atomic<bool>& stopping, std::chrono::milliseconds total) {
    constexpr std::chrono::milliseconds kStep{250};
    for (std::chrono::milliseconds waited{0}; waited < total; waited += kStep) {
        if (stopping) return false;
        std::this_thread::sleep_for(std::min(kStep, total - waited));
    }
    return !stopping;
}

}  // namespace pwsync
