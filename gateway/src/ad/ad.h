// Active Directory as the gateway uses it: resolving accounts and writing
// passwords for full sync, over one shared, lazily (re)opened connection.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>

#include "pwsync/adapter.h"
#include "pwsync/directory.h"

namespace pwsync::gateway {

class Ad {
public:
    Ad(directory::Settings settings, directory::ConnectOptions options)
        : settings_(std::move(settings)), options_(std::move(options)), domain_(directory::domain_of(settings_)) {}

    // Admin reset of the account's password. Errc::refused: AD said no (policy,
    // no such user: permanent); Errc::unavailable: try again later.
    Status write_password(std::string_view account, const Secret& password);
    // sam, DOMAIN\sam, UPN and {GUID} of an account, lower-cased, from what
    // the watcher has seen. Never asks the DC: this runs inside the DC's own
    // password change (the capture hook), when a single-process DC cannot
    // answer until the hook returns.
    std::vector<std::string> aliases(std::string_view account);
    // The watcher's view of an account (full sync, renames, changes).
    void remember(const directory::Event& e);
    // The sam of a GUID the watcher has seen, or empty.
    std::string sam_of(std::string_view guid);
    directory::LdapResult<directory::Account> resolve(std::string_view account);
    const directory::Settings& settings() const { return settings_; }
    const directory::Domain& domain() const { return domain_; }
    directory::ConnectOptions connect_options() const { return options_.clone(); }

private:
    directory::LdapResult<directory::Connection*> connection();
    // After a write failed for want of AD, later writes fail at once for a
    // few seconds instead of each waiting its own timeout behind the lock
    // (the engine queues them; the dispatcher retries with backoff).
    Status unreachable_recently() const;
    void note_unreachable(const std::string& why);
    std::mutex mutex_;
    std::atomic<std::int64_t> down_until_{0};  // steady_clock ticks
    mutable std::mutex down_mutex_;
    std::string down_reason_;
    directory::Settings settings_;
    directory::ConnectOptions options_;
    directory::Domain domain_;
    std::optional<directory::Connection> conn_;

    struct Names {
        std::string sam, upn, guid;
    };
    std::mutex names_mutex_;
    std::map<std::string, Names> by_guid_;        // guid -> names
    std::map<std::string, std::string> to_guid_;  // lower(sam | DOMAIN\sam | upn | guid) -> guid
};

// The built-in dispatcher target "@windows": queued AD writes of full sync.
class AdTarget final : public Adapter {
public:
    using BeforeWrite = std::function<Status(std::string_view account, const Secret& password, std::string_view origin)>;
    AdTarget(Ad& ad, BeforeWrite before) : ad_(ad), before_(std::move(before)) {}
    DeliveryResult deliver(const Delivery& d) override;

private:
    Ad& ad_;
    BeforeWrite before_;  // renews the echo markers of a late write
};

}  // namespace pwsync::gateway
