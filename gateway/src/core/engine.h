// The sync engine: decides what a password change means and where it goes.
// It answers the listener (bind, Password Modify) and the directory watcher
// (confirmed or uncaptured changes). A change is "stored" — and the sender
// told success — only once it is committed to the store.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "account_locks.h"
#include "outcomes.h"
#include "user_identity.h"
#include "pwsync/adapter.h"
#include "pwsync/store.h"
#include "safe_scope.h"
#include "verified_secrets.h"

namespace pwsync::gateway {

// Writes a password into AD (full sync). Permanent refusals (policy) come
// back as Errc::refused with AD's text; unreachable as Errc::unavailable.
using AdWriter = std::function<Status(std::string_view windows_account, const Secret& password)>;

// Looks a Windows account up in the directory (sam, DOMAIN\sam, UPN, DN or
// {GUID}): its objectGUID and current names. Errc::not_found: no such
// account; Errc::unavailable: the directory cannot be asked now.
using AccountResolver = std::function<Result<store::AccountNames>(std::string_view account)>;

struct EngineOptions {
    const Clock* clock = nullptr;
    std::string domain;                                   // NetBIOS name, for DOMAIN\sam (one domain)
    // Several domains: accounts are named DOMAIN\sam, never by a bare sam,
    // which may name an account in each.
    bool several_domains = false;
    // The domain (NetBIOS name) a capture principal captures for; empty:
    // not tied to one. nullptr: none is.
    std::function<std::string(std::string_view principal)> capture_domain;
    // The domain (NetBIOS name) an account name says it is in (DOMAIN\sam,
    // UPN suffix, DN); empty: it does not say. nullptr: not checked.
    std::function<std::string(std::string_view account)> domain_of_name;
    std::chrono::seconds pending_ttl{120};                // pre-commit captures wait this long
    std::chrono::seconds damping_window{600};             // same change again within: dropped
    std::chrono::seconds echo_window{600};
    // A principal that proved its secret is not made to pay scrypt again
    // for this long (the DC hooks bind for every change); 0: always verify.
    std::chrono::seconds verified_secret_ttl{300};
    std::chrono::seconds ad_retry_delay{60};             // a failed inline AD write is retried after this
    AdWriter ad_writer;                                   // nullptr: full sync queues every AD write
    // nullptr: no directory; a name the store does not know matches the
    // mappings made with that name (and DOMAIN\sam <-> sam).
    AccountResolver resolve;
    AccountOfDn account_of_dn;                            // a windows principal's DN -> account; nullptr: as sent
    // Whether the account is disabled or privileged, asked of the directory
    // (no transaction open) before a change of a mapped account is sent:
    // Errc::not_found: no such account (nothing withheld); Errc::unavailable
    // or Errc::timeout (an outage) leaves the change to be confirmed later;
    // another error (this account's: ambiguous, no access) withholds the
    // watcher's deliveries of it, and a post-commit capture is answered
    // unavailable. nullptr: nothing is checked.
    std::function<Result<AccountState>(std::string_view account)> account_state;
    std::function<void()> queued;                         // new jobs: wake the dispatcher
};

// A password change the directory watcher saw. Times in AD's 100 ns units
// since 1601; 0: unknown.
struct DirectoryChange {
    std::string account;
    std::int64_t pwd_last_set = 0;  // 0 also when the user must change it at next logon
    std::int64_t changed_at = 0;    // when the DC committed the password, from its metadata
    bool temporary = false;         // set with "user must change password at next logon"
    std::string dc{};               // the DC it was made on (empty: unknown), for the DC health view
};

// Name of the built-in dispatcher target that writes AD passwords.
inline constexpr std::string_view kWindowsTarget = "@windows";

// A store error that asking again may cure: the disk, a database failing
// over, a concurrent writer (LDAP 52 to the sender, not 80).
inline bool store_may_answer_later(const Error& e) {
    return e.code == Errc::storage || e.code == Errc::io || e.code == Errc::unavailable || e.code == Errc::timeout ||
           e.code == Errc::busy;
}

class Engine {
public:
    Engine(store::Store& store, EngineOptions options);

    // Bind DN "cn=NAME,…" or plain NAME: the principal's name, or
    // Errc::permission for invalid credentials (no such principal, a wrong
    // secret, no principal with this certificate). Any other error is the
    // store's: it could not tell (a database failing over, a record that
    // does not decode), which is not a failed bind.
    Result<std::string> authenticate(std::string_view bind_dn, const Secret& secret);
    Result<std::string> authenticate_certificate(std::string_view subject);

    // Password Modify from an authenticated principal.
    ChangeResult change(const std::string& principal, std::string_view identity, const Secret* old_password,
                        const Secret& new_password);

    // The watcher saw `account`'s pwdLastSet advance to `pwd_last_set` (AD's
    // 100 ns units since 1601; 0: unknown). Confirms the newest pending
    // capture taken before that moment (later ones stay pending: AD may yet
    // refuse them), or marks the account's mappings stale when nothing
    // explains the change. A value already handled is ignored, so a watcher
    // batch replayed after a crash changes nothing.
    Status password_changed(std::string_view account, std::int64_t pwd_last_set = 0);
    // One page of the watcher: every change and the watcher's cursor in one
    // transaction (one fsync), so a crash keeps all of the page or none.
    Status watcher_page(const std::vector<DirectoryChange>& changes, std::string_view cursor, std::string_view cookie);
    // Called just before a queued AD write (dispatcher, "@windows"): checks
    // again that the account is neither disabled nor privileged (unless
    // `app` allows it) — it may have become so while the write waited —
    // refusing with Errc::refused; then renews the markers that keep the
    // DC's capture of it from bouncing back.
    Status before_ad_write(std::string_view account, const Secret& password, std::string_view origin_principal,
                           std::string_view app = {});
    // The Windows account `account` names, held against full sync's writes
    // of it here and on every other gateway of the store, until the hold
    // ends: a queued write into AD (the "@windows" target) takes it, so it
    // never interleaves with a change being applied.
    struct AccountHold {
        AccountLocks::Ticket ticket;
        store::Store::KeyLocks across;
    };
    Result<AccountHold> hold_account(std::string_view account);
    // Drops pre-commit captures that were never confirmed. Returns how many.
    Result<std::size_t> expire_pending();

    // Every name the account is known by: from the store's account names
    // when it knows the account, else what the text itself says.
    std::vector<std::string> aliases(const store::ReadTxn& r, std::string_view account) const;

private:
    // `t`: where the change's time goes (ChangeTimes), added to as it runs.
    ChangeResult change(const std::string& principal, std::string_view identity, const Secret* old_password,
                        const Secret& new_password, ChangeTimes& t);
    ChangeResult from_windows(const store::Principal& p, std::string_view account, const Secret& password, ChangeTimes& t);
    ChangeResult from_adapter(const store::Principal& p, std::string_view identity, const Secret* old_password,
                              const Secret& password, ChangeTimes& t);
    // Runs `f`, adding the time it took to `into` (the injected clock).
    template <class F>
    auto timed(std::chrono::nanoseconds& into, F&& f) {
        const auto from = clock_->elapsed();
        auto r = std::forward<F>(f)();
        into += std::max(clock_->elapsed() - from, std::chrono::nanoseconds{0});
        return r;
    }
    // Damping, echo, fan-out; inside the caller's transaction. `known`: the
    // account's mappings when the caller read them in this transaction (a
    // read less per change: a round trip on PostgreSQL).
    // `checks`: the safe-scope facts of this change (safe_scope.h); the
    // mappings it withholds from get their status set. The mappings the
    // change reached (queued, or echo-suppressed: it came from them) are
    // marked current (MappingStatus::ok).
    struct Checks {
        const AccountState* state = nullptr;
        bool temporary = false;
        std::string_view unknown{};  // non-empty: the directory could not tell the state (why): withhold all
    };
    Status fan_out(store::WriteTxn& w, std::string_view account, const Secret& password, const std::string& origin,
                   std::string_view skip_adapter, std::size_t& queued,
                   const std::vector<store::Mapping>* known = nullptr, const Checks* checks = nullptr);
    // The account's state from the directory when a change of it may be sent:
    // it has mappings (and, with `pending_only`, a pending capture). nullopt:
    // not asked (no directory, nothing to send) or no such account.
    // `refused`: when given, an error of this account that asking again will
    // not mend (not an outage) is put there, with nullopt, instead of failing.
    Result<bool> our_write(store::WriteTxn& w, const std::string& key, const DirectoryChange& c);
    Result<std::string> captured_in_domain(const store::Principal& p, std::string_view account) const;
    // `asking`: the time spent asking the directory is added there (not the store's reads).
    Result<std::optional<AccountState>> state_of(std::string_view account, bool pending_only,
                                                 std::string* refused = nullptr, std::chrono::nanoseconds* asking = nullptr);
    // The account's state, asked of the directory without looking at the store.
    Result<std::optional<AccountState>> ask_state(std::string_view account, std::string* refused = nullptr);
    Result<std::vector<store::Mapping>> mappings_of(const store::ReadTxn& r, std::string_view account) const;
    // The watcher saw a change: inside the caller's transaction.
    // `unknown`: non-empty when the directory could not tell the account's state (why).
    Status password_changed(store::WriteTxn& w, const DirectoryChange& c, const AccountState* state,
                            std::string_view unknown, std::size_t& queued);
    // One name per account for damping and echo markers: its sAMAccountName
    // when known, whatever form the sender used.
    std::string canonical(const store::ReadTxn& r, std::string_view account) const;
    // A name the store does not know: ask the directory, and keep the
    // account's names when a mapping names it (by another name, not
    // resolved yet) or the store knows it by older names (a rename).
    void learn(std::string_view account, ChangeTimes& t);
    // DOMAIN\sam <-> sam, and a GUID in its one spelling.
    std::vector<std::string> text_aliases(std::string_view account) const;
    Status mark_written(store::WriteTxn& w, std::string_view account, std::string_view password,
                        const std::string& origin_adapter, TimePoint until);
    TimePoint now() const { return clock_->now(); }

    store::Store& store_;
    EngineOptions options_;
    // External -> Windows changes, per account (the capture path never
    // takes these).
    AccountLocks account_locks_;
    VerifiedSecrets verified_;
    SystemClock system_clock_;
    const Clock* clock_;
};

}  // namespace pwsync::gateway
