// What the directory watcher saw while the background resolution's lookups
// were out: each account (objectGUID) a watcher event named, numbered in
// the order seen. An answer asked before an event on its account is older
// than what the watcher knows (the account renamed or deleted meanwhile,
// perhaps not recorded because no mapping named it yet) and is not written:
// the mapping is looked up again at the next pass. Memory only: after a
// restart no lookup is in flight.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "pwsync/util.h"

namespace pwsync::gateway {

class AccountEvents {
public:
    // Bounded: past `keep` accounts the oldest numbers are forgotten, and
    // an answer asked before them counts as outdated (asked again).
    explicit AccountEvents(std::size_t keep = 10000) : keep_(keep) {}

    // The number of the last event: taken before a lookup is asked.
    std::uint64_t mark() const {
        std::lock_guard lock(mutex_);
        return last_;
    }
    void note(std::string_view guid) {
        if (guid.empty()) return;
        std::lock_guard lock(mutex_);
        if (seen_.size() >= keep_) {
            seen_.clear();
            floor_ = last_;
        }
        seen_[ascii_lower(guid)] = ++last_;
    }
    // Whether an event named the account after `mark`.
    bool since(std::string_view guid, std::uint64_t mark) const {
        std::lock_guard lock(mutex_);
        if (mark < floor_) return true;
        const auto it = seen_.find(ascii_lower(guid));
        return it != seen_.end() && it->second > mark;
    }

private:
    const std::size_t keep_;
    mutable std::mutex mutex_;
    std::uint64_t last_ = 0, floor_ = 0;
    std::unordered_map<std::string, std::uint64_t> seen_;
};

}  // namespace pwsync::gateway
