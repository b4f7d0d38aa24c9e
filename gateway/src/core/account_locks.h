// Per-account serialization for External -> Windows changes: changes of
// different accounts run side by side; changes of one account run one at a
// time, in the order they arrived.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace pwsync::gateway {

class AccountLocks {
public:
    // A place in line for `key` (the sender's account): taken on arrival,
    // before anything slow, so that arrival order decides.
    class Ticket {
    public:
        Ticket(Ticket&& o) noexcept
            : locks_(std::exchange(o.locks_, nullptr)), key_(std::move(o.key_)), number_(o.number_),
              keys_(std::move(o.keys_)) {}
        Ticket& operator=(Ticket&&) = delete;
        ~Ticket() {
            if (locks_ != nullptr) locks_->leave(key_, number_, keys_);
        }

    private:
        friend class AccountLocks;
        Ticket(AccountLocks& l, std::string key, std::uint64_t n) : locks_(&l), key_(std::move(key)), number_(n) {}
        AccountLocks* locks_;
        std::string key_;
        std::uint64_t number_;
        std::vector<std::string> keys_;  // held, once hold() returned
    };

    Ticket arrive(const std::string& key) {
        std::lock_guard lock(mutex_);
        return Ticket(*this, key, lines_[key].next++);
    }

    // Waits for the ticket's turn in its line, then until no other change
    // holds any of `keys` (the Windows accounts it will write), and holds
    // them until the ticket ends. All of them at once: no lock-order cycles.
    void hold(Ticket& t, std::vector<std::string> keys) {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] {
            if (lines_[t.key_].serving != t.number_) return false;
            for (const auto& k : keys)
                if (held_.contains(k)) return false;
            return true;
        });
        for (auto& k : keys)
            if (held_.insert(k).second) t.keys_.push_back(std::move(k));
    }

private:
    void leave(const std::string& key, std::uint64_t number, const std::vector<std::string>& keys) {
        {
            std::lock_guard lock(mutex_);
            for (const auto& k : keys) held_.erase(k);
            // A ticket may end before its turn (refused before it held
            // anything): its number is skipped when the turn comes.
            auto& line = lines_[key];
            line.done.insert(number);
            while (line.done.erase(line.serving) > 0) ++line.serving;
            if (line.serving == line.next) lines_.erase(key);
        }
        cv_.notify_all();
    }

    struct Line {
        std::uint64_t next = 0;     // the number the next arrival gets
        std::uint64_t serving = 0;  // whose turn it is
        std::set<std::uint64_t> done;  // ended, at or after `serving`
    };
    std::mutex mutex_;
    std::condition_variable cv_;
    std::map<std::string, Line> lines_;
    std::set<std::string> held_;
};

}  // namespace pwsync::gateway
