// Binds that proved their secret recently, so a principal that binds for
// every password change (pwsync notify on a DC) pays scrypt once per
// `ttl`, not once per change.
//
// Nothing here can give a secret back: an entry is an HMAC-SHA256 of the
// principal's name, the version of its stored secret and the secret, under
// a key drawn at random when the cache is made and held only in this
// process's memory (wiped on destruction). A principal deleted and created
// again, or given a new secret, has a new version: old entries no longer
// match. A wrong secret never
// matches and takes the slow path (and the bind throttle) as before.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "pwsync/util.h"

namespace pwsync::gateway {

class VerifiedSecrets {
public:
    VerifiedSecrets(std::chrono::seconds ttl, std::size_t max_entries);
    ~VerifiedSecrets();
    VerifiedSecrets(const VerifiedSecrets&) = delete;
    VerifiedSecrets& operator=(const VerifiedSecrets&) = delete;

    // True when this principal, its stored secret at `version`, proved this
    // secret less than `ttl` before `now`. Compared in constant time.
    bool known(std::string_view principal, std::string_view version, const Secret& secret, TimePoint now);
    // Records a secret the slow path verified.
    void remember(std::string_view principal, std::string_view version, const Secret& secret, TimePoint now);

private:
    std::string mac(std::string_view principal, std::string_view version, const Secret& secret) const;

    struct Entry {
        std::string mac;
        TimePoint expires{};
    };
    std::chrono::seconds ttl_;
    std::size_t max_entries_;
    unsigned char key_[32];
    std::mutex mutex_;
    std::map<std::string, Entry> entries_;  // lower(principal) -> its last verified secret
};

}  // namespace pwsync::gateway
