#include "retry.h"

namespace pwsync::win {

std::uint64_t Backoff::delay_ms(unsigned failures) const noexcept {
    if (failures == 0) return 0;
    std::uint64_t d = base_;
    for (unsigned i = 1; i < failures && d < cap_; ++i) d *= 2;
    return d < cap_ ? d : cap_;
}

void RetryState::failed(std::uint64_t now_ms) noexcept {
    if (failures_ < 1000) ++failures_;
    next_ms_ = now_ms + backoff_.delay_ms(failures_);
}

bool too_old(std::uint64_t created_s, std::uint64_t now_s, std::uint64_t max_age_s) noexcept {
    return max_age_s != 0 && now_s > created_s && now_s - created_s > max_age_s;
}

}  // namespace pwsync::win
