// Active Directory as the gateway uses it: resolving accounts and writing
// passwords for full sync, over a small pool of lazily (re)opened connections.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "pwsync/adapter.h"
#include "pwsync/directory.h"

namespace pwsync::gateway {

class Ad {
public:
    // `clock`: nullptr for the system clock (tests pass their own).
    // `qualified`: one of several domains, whose accounts are named DOMAIN\sam.
    Ad(directory::Settings settings, directory::ConnectOptions options, const Clock* clock = nullptr, bool qualified = false)
        : settings_(std::move(settings)), options_(std::move(options)), domain_(directory::domain_of(settings_)),
          clock_(clock != nullptr ? clock : &system_clock_), qualified_(qualified) {}

    // Admin reset of the account's password. Errc::refused: AD said no (policy,
    // no such user: permanent); Errc::unavailable: try again later.
    // `until`: no wait for AD past then (Delivery::deadline); default: none.
    // `guid`: the account's objectGUID when the store knows it: the reset
    // names <GUID=...> and needs no search first.
    Status write_password(std::string_view account, const Secret& password,
                          std::chrono::steady_clock::time_point until = {}, std::string_view guid = {});
    directory::LdapResult<directory::Account> resolve(std::string_view account);
    // The account now and why it is privileged (empty: it is not).
    // Errc::not_found: no such account; Errc::unavailable: ask again later.
    // `guid`: the account's objectGUID when the store knows it: one round
    // trip instead of a search by name and a read of its groups.
    Result<std::pair<directory::Account, std::string>> state(std::string_view account, std::string_view guid = {});
    // The account's objectGUID and names as the store keeps them.
    // Errc::not_found: no such account; Errc::unavailable: AD cannot be
    // asked now (and was not asked again for a few seconds after a failure).
    Result<store::AccountNames> lookup(std::string_view account);
    store::AccountNames names_of(const directory::Account& a) const;
    const directory::Settings& settings() const { return settings_; }
    // What the gateway calls the account `sam` of this domain: `sam`, or
    // DOMAIN\sam when it serves several domains (a bare sam is ambiguous).
    bool qualified() const { return qualified_; }
    std::string account_name(std::string_view sam) const {
        return qualified_ && !sam.empty() ? domain_.netbios + "\\" + std::string(sam) : std::string(sam);
    }
    const directory::Domain& domain() const { return domain_; }
    directory::ConnectOptions connect_options() const { return options_.clone(); }

private:
    // A connection of the pool, back in the pool when done unless it failed.
    class Lease;
    directory::LdapResult<Lease> lease();
    // After a write failed for want of AD, later writes fail at once for a
    // few seconds instead of each waiting its own timeout behind the lock
    // (the engine queues them; the dispatcher retries with backoff).
    Status unreachable_recently() const;
    void note_unreachable(const std::string& why);
    // Full-sync writes of different accounts run side by side, each on a
    // connection of its own (the engine keeps one account's changes in order),
    // and so do the state checks of captures arriving together. With 4, 16
    // captures at once queued for a connection: a futex sleep and wake-up
    // per capture (1.3 context switches per change) and ~0.1 ms of the
    // gateway's CPU (docs/BENCHMARKS.md, fourteenth part); now they wait in
    // the DC's own queue, which a gateway could not shorten anyway.
    static constexpr std::size_t kMaxConnections = 16;
    std::mutex pool_mutex_;
    std::condition_variable pool_cv_;
    std::vector<directory::Connection> idle_;
    std::size_t leased_ = 0;
    std::atomic<TimePoint::rep> down_until_{0};  // clock_ ticks
    mutable std::mutex down_mutex_;
    std::string down_reason_;
    directory::Settings settings_;
    directory::ConnectOptions options_;
    directory::Domain domain_;
    SystemClock system_clock_;
    const Clock* clock_;
    bool qualified_;
};

// The built-in dispatcher target "@windows": queued AD writes of full sync.
class AdTarget final : public Adapter {
public:
    // May refuse the write for good (Errc::refused: a dead letter, e.g. the
    // account became privileged while the write was queued); other errors retry.
    using BeforeWrite = std::function<Status(std::string_view account, const Secret& password, std::string_view origin,
                                             std::string_view app)>;
    // Holds the account against other writes of it until the result ends.
    using Hold = std::function<Result<std::shared_ptr<void>>(std::string_view account)>;
    // The domain an account is written in (Domains::route).
    using Route = std::function<Result<Ad*>(std::string_view account)>;
    AdTarget(Route route, BeforeWrite before, Hold hold = {})
        : route_(std::move(route)), before_(std::move(before)), hold_(std::move(hold)) {}
    DeliveryResult deliver(const Delivery& d) override;

private:
    Route route_;
    BeforeWrite before_;  // renews the echo markers of a late write
    Hold hold_;
};

}  // namespace pwsync::gateway
