#include "ad.h"

#include <chrono>
#include <utility>

namespace pwsync::gateway {

class Ad::Lease {
public:
    Lease(Ad& ad, directory::Connection c) : ad_(&ad), conn_(std::move(c)) {}
    Lease(Lease&& o) noexcept : ad_(std::exchange(o.ad_, nullptr)), conn_(std::move(o.conn_)), broken_(o.broken_) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
        if (ad_ == nullptr) return;
        std::lock_guard lock(ad_->pool_mutex_);
        // A connection that failed is closed: the next lease opens a fresh one.
        if (!broken_ && conn_) ad_->idle_.push_back(std::move(*conn_));
        --ad_->leased_;
        ad_->pool_cv_.notify_one();
    }
    directory::Connection& operator*() { return *conn_; }
    void broken() { broken_ = true; }

private:
    Ad* ad_;
    std::optional<directory::Connection> conn_;
    bool broken_ = false;
};

directory::LdapResult<Ad::Lease> Ad::lease() {
    {
        std::unique_lock lock(pool_mutex_);
        pool_cv_.wait(lock, [&] { return leased_ < kMaxConnections; });
        ++leased_;
        if (!idle_.empty()) {
            directory::Connection c = std::move(idle_.back());
            idle_.pop_back();
            return Lease(*this, std::move(c));
        }
    }
    // Opened outside the lock: connecting may take a while.
    auto c = directory::Connection::open(options_.clone());
    if (!c) {
        std::lock_guard lock(pool_mutex_);
        --leased_;
        pool_cv_.notify_one();
        return std::unexpected(c.error());
    }
    return Lease(*this, std::move(*c));
}

directory::LdapResult<directory::Account> Ad::resolve(std::string_view account) {
    auto c = lease();
    if (!c) return std::unexpected(c.error());
    auto a = directory::resolve_account(**c, domain_, account);
    if (!a && a.error().retryable()) c->broken();
    return a;
}

Result<std::pair<directory::Account, std::string>> Ad::state(std::string_view account, std::string_view guid) {
    auto c = lease();
    if (!c) return fail(Errc::unavailable, c.error().message);
    const auto failed = [&](const directory::LdapError& e) -> Error {
        if (e.retryable()) {
            c->broken();
            return Error{Errc::unavailable, e.message};
        }
        return Error{e.reason == directory::Reason::no_such_object ? Errc::not_found : Errc::refused, e.message};
    };
    if (!guid.empty()) {
        // No such object: deleted, or the store's GUID is out of date; the
        // name decides below.
        auto known = directory::read_account_by_guid(**c, guid);
        if (known || known.error().reason != directory::Reason::no_such_object) {
            if (!known) return std::unexpected(failed(known.error()));
            return std::move(*known);
        }
    }
    auto a = directory::resolve_account(**c, domain_, account);
    if (!a) return std::unexpected(failed(a.error()));
    auto why = directory::privileged_reason(**c, *a);
    if (!why) return std::unexpected(failed(why.error()));
    return std::pair{std::move(*a), std::move(*why)};
}

namespace {
constexpr std::chrono::seconds kFailFast{10};
}

Status Ad::unreachable_recently() const {
    if (clock_->now().time_since_epoch().count() >= down_until_.load()) return {};
    std::lock_guard lock(down_mutex_);
    return fail(Errc::unavailable, "Active Directory was unreachable moments ago: " + down_reason_);
}

void Ad::note_unreachable(const std::string& why) {
    {
        std::lock_guard lock(down_mutex_);
        down_reason_ = why;
    }
    down_until_ = (clock_->now() + kFailFast).time_since_epoch().count();
}

Status Ad::write_password(std::string_view account, const Secret& password,
                          std::chrono::steady_clock::time_point until, std::string_view guid) {
    PWSYNC_TRY(unreachable_recently());
    // The DC's capture hook, called during the write, reaches the listener
    // and the engine, which never wait for a connection of this pool.
    auto c = lease();
    // Waiting for a connection while an earlier write timed out: do not time out again.
    PWSYNC_TRY(unreachable_recently());
    if (!c) {
        note_unreachable(c.error().message);
        return fail(Errc::unavailable, c.error().message);
    }
    // The pooled connection goes back without the limit.
    struct Unlimit {
        directory::Connection& conn;
        ~Unlimit() { conn.limit_until({}); }
    } unlimit{**c};
    (**c).limit_until(until);
    const auto ad_failed = [&](const directory::LdapError& e) -> Status {
        if (e.retryable()) {
            c->broken();
            note_unreachable(e.message);
        }
        return fail(e.retryable() ? Errc::unavailable : Errc::refused, e.server_text.empty() ? e.message : e.server_text);
    };
    if (auto dn = directory::guid_dn(guid)) {
        // AD takes <GUID=...> as the DN of a modify (a rename or move does
        // not matter). No such object: the store's GUID is out of date, and
        // the name decides below, as it would have without it.
        auto st = directory::reset_password(**c, *dn, password);
        if (st) return {};
        if (st.error().reason != directory::Reason::no_such_object) return ad_failed(st.error());
    }
    auto a = directory::resolve_account(**c, domain_, account);
    if (!a) {
        if (a.error().retryable()) {
            c->broken();
            note_unreachable(a.error().message);
        }
        return fail(a.error().retryable() ? Errc::unavailable : Errc::refused, a.error().message);
    }
    auto st = directory::reset_password(**c, a->dn, password);
    if (st) return {};
    return ad_failed(st.error());
}

store::AccountNames Ad::names_of(const directory::Account& a) const {
    store::AccountNames n;
    n.guid = a.guid;
    n.sam = a.sam;
    n.domain = domain_.netbios;
    n.upn = a.upn;
    n.dn = a.dn;
    n.sam_alone = !qualified_;
    return n;
}

Result<store::AccountNames> Ad::lookup(std::string_view account) {
    PWSYNC_TRY(unreachable_recently());
    auto a = resolve(account);
    if (a) return names_of(*a);
    if (a.error().retryable()) {
        note_unreachable(a.error().message);
        return fail(Errc::unavailable, a.error().message);
    }
    return fail(a.error().reason == directory::Reason::no_such_object ? Errc::not_found : Errc::refused, a.error().message);
}

DeliveryResult AdTarget::deliver(const Delivery& d) {
    std::shared_ptr<void> held;
    if (hold_) {
        auto h = hold_(d.windows);
        if (!h) return {Outcome::retry, h.error().message};
        held = std::move(*h);
    }
    if (before_) {
        if (auto b = before_(d.windows, *d.password, d.origin, d.app); !b)
            return {b.error().code == Errc::refused ? Outcome::permanent : Outcome::retry, b.error().message};
    }
    auto ad = route_(d.windows);
    if (!ad) return {ad.error().code == Errc::unavailable ? Outcome::retry : Outcome::permanent, ad.error().message};
    auto st = (*ad)->write_password(d.windows, *d.password, d.deadline);
    if (st) return {Outcome::done, "set in Active Directory"};
    return {st.error().code == Errc::refused ? Outcome::permanent : Outcome::retry, st.error().message};
}

}  // namespace pwsync::gateway
