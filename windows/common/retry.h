// When the agent tries the gateway again, and when a change is too old to
// keep trying. Pure functions of an injected "now" (milliseconds).
#pragma once

#include <cstdint>

namespace pwsync::win {

// Doubling delays from `base` up to `cap`: base, 2 base, 4 base, ... cap.
class Backoff {
public:
    Backoff(std::uint64_t base_ms, std::uint64_t cap_ms) : base_(base_ms), cap_(cap_ms < base_ms ? base_ms : cap_ms) {}
    std::uint64_t delay_ms(unsigned failures) const noexcept;

private:
    std::uint64_t base_, cap_;
};

// The gateway's reachability as the agent sees it.
class RetryState {
public:
    explicit RetryState(Backoff b) : backoff_(b) {}
    bool due(std::uint64_t now_ms) const noexcept { return now_ms >= next_ms_; }
    // Milliseconds until the next attempt (0 if due).
    std::uint64_t wait_ms(std::uint64_t now_ms) const noexcept { return due(now_ms) ? 0 : next_ms_ - now_ms; }
    void failed(std::uint64_t now_ms) noexcept;
    void succeeded() noexcept { failures_ = 0, next_ms_ = 0; }
    unsigned failures() const noexcept { return failures_; }

private:
    Backoff backoff_;
    unsigned failures_ = 0;
    std::uint64_t next_ms_ = 0;
};

// A change captured at `created` (Unix seconds) has outlived the configured
// age limit; max_age_s 0 means no limit (the default: never drop).
bool too_old(std::uint64_t created_s, std::uint64_t now_s, std::uint64_t max_age_s) noexcept;

}  // namespace pwsync::win
