#include "bind_throttle.h"

#include <algorithm>

namespace pwsync::gateway {
namespace {

using std::chrono::milliseconds;

std::string principal_key(std::string_view dn) { return "d:" + BindThrottle::dn_key(dn); }
std::string peer_key(std::string_view peer) { return "p:" + std::string(peer); }

}  // namespace

BindThrottle::BindThrottle(const BindThrottleOptions& options, const Clock& clock)
    : options_(options), clock_(clock) {
    if (options_.max_tracked == 0) options_.max_tracked = 1;
}

std::string BindThrottle::dn_key(std::string_view dn) {
    std::string key;
    key.reserve(dn.size());
    for (char c : ascii_lower(dn))
        if (c != ' ') key.push_back(c);
    return key;
}

milliseconds BindThrottle::delay(const ThrottleLimits& limits, unsigned failures) const {
    if (failures < limits.free_failures) return milliseconds(0);
    const unsigned doublings = std::min(failures - limits.free_failures, 30U);
    const auto d = limits.base_delay * (std::int64_t{1} << doublings);
    return std::min(d, limits.max_delay);
}

BindThrottle::Entry* BindThrottle::find(const std::string& key, const ThrottleLimits& limits, TimePoint now) {
    const auto it = entries_.find(key);
    if (it == entries_.end()) return nullptr;
    // Failures older than the window are forgiven; a booked slot still
    // in the future keeps the entry alive until it passes.
    if (now - it->second.last_failure > limits.window && now >= it->second.next_slot) {
        entries_.erase(it);
        return nullptr;
    }
    return &it->second;
}

std::optional<milliseconds> BindThrottle::admit(std::string_view dn, std::string_view peer) {
    const std::lock_guard lock(mutex_);
    const TimePoint now = clock_.now();
    struct Keyed {
        Entry* entry;
        const ThrottleLimits* limits;
    };
    const std::string dkey = principal_key(dn), pkey = peer_key(peer);
    const Keyed keys[] = {{find(dkey, options_.per_principal, now), &options_.per_principal},
                          {find(pkey, options_.per_peer, now), &options_.per_peer}};
    TimePoint start = now;
    milliseconds longest_allowed(0);
    bool throttled = false;
    for (const auto& k : keys) {
        if (k.entry == nullptr || k.entry->failures < k.limits->free_failures) continue;
        throttled = true;
        start = std::max(start, k.entry->next_slot);
        longest_allowed = std::max(longest_allowed, k.limits->max_delay);
    }
    if (!throttled) return milliseconds(0);
    const auto wait = std::chrono::ceil<milliseconds>(start - now);
    if (wait > longest_allowed) return std::nullopt;
    for (const auto& k : keys)
        if (k.entry != nullptr && k.entry->failures >= k.limits->free_failures)
            k.entry->next_slot = start + delay(*k.limits, k.entry->failures);
    return wait;
}

void BindThrottle::record_failure(const std::string& key, const ThrottleLimits& limits, TimePoint now) {
    Entry* e = find(key, limits, now);
    if (e == nullptr) {
        make_room(now);
        e = &entries_[key];
    }
    if (e->failures < 1000) ++e->failures;
    e->last_failure = now;
    if (e->failures >= limits.free_failures) e->next_slot = std::max(e->next_slot, now + delay(limits, e->failures));
}

void BindThrottle::failed(std::string_view dn, std::string_view peer) {
    const std::lock_guard lock(mutex_);
    const TimePoint now = clock_.now();
    record_failure(principal_key(dn), options_.per_principal, now);
    record_failure(peer_key(peer), options_.per_peer, now);
}

void BindThrottle::succeeded(std::string_view dn) {
    const std::lock_guard lock(mutex_);
    entries_.erase(principal_key(dn));
}

void BindThrottle::make_room(TimePoint now) {
    if (entries_.size() < options_.max_tracked) return;
    std::erase_if(entries_, [&](const auto& kv) {
        const auto& limits = kv.first[0] == 'd' ? options_.per_principal : options_.per_peer;
        return now - kv.second.last_failure > limits.window && now >= kv.second.next_slot;
    });
    if (entries_.size() < options_.max_tracked) return;
    // Still full (someone sprays names): forget the stalest key.
    const auto oldest = std::min_element(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) {
        return a.second.last_failure < b.second.last_failure;
    });
    entries_.erase(oldest);
}

std::size_t BindThrottle::tracked() const {
    const std::lock_guard lock(mutex_);
    return entries_.size();
}

}  // namespace pwsync::gateway
