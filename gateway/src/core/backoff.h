// Exponential backoff with jitter for retryable delivery failures.
#pragma once

#include <chrono>
#include <cstdint>

namespace pwsync::gateway {

inline constexpr std::chrono::seconds kMaxRetryDelay{3600};

// The wait after the `failures`-th failure (1, 2, ...): base * 2^(failures-1),
// capped at an hour, then scaled into [50 %, 100 %) by `unit_random` in [0, 1)
// so that many jobs failing together do not retry together.
inline std::chrono::milliseconds retry_delay(std::uint32_t failures, std::uint32_t base_seconds, double unit_random) {
    const std::uint32_t doublings = failures == 0 ? 0 : (failures - 1 > 20 ? 20 : failures - 1);
    std::int64_t ms = static_cast<std::int64_t>(base_seconds) * 1000 * (std::int64_t{1} << doublings);
    const std::int64_t cap = std::chrono::duration_cast<std::chrono::milliseconds>(kMaxRetryDelay).count();
    if (ms > cap) ms = cap;
    if (unit_random < 0) unit_random = 0;
    if (unit_random >= 1) unit_random = 0.999999;
    return std::chrono::milliseconds(static_cast<std::int64_t>(static_cast<double>(ms) * (0.5 + unit_random / 2)));
}

}  // namespace pwsync::gateway
