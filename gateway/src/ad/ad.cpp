#include "ad.h"

#include <chrono>

namespace pwsync::gateway {

directory::LdapResult<directory::Connection*> Ad::connection() {
    if (!conn_) {
        auto c = directory::Connection::open(options_.clone());
        if (!c) return std::unexpected(c.error());
        conn_.emplace(std::move(*c));
    }
    return &*conn_;
}

directory::LdapResult<directory::Account> Ad::resolve(std::string_view account) {
    std::lock_guard lock(mutex_);
    auto c = connection();
    if (!c) return std::unexpected(c.error());
    auto a = directory::resolve_account(**c, domain_, account);
    if (!a && a.error().retryable()) conn_.reset();
    return a;
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

Status Ad::write_password(std::string_view account, const Secret& password) {
    PWSYNC_TRY(unreachable_recently());
    // Held across the write: full-sync writes to AD go one at a time. The
    // DC's capture hook, called during the write, reaches the listener and
    // the engine, which never take this lock.
    std::lock_guard lock(mutex_);
    // Waiting here while an earlier write timed out: do not time out again.
    PWSYNC_TRY(unreachable_recently());
    auto c = connection();
    if (!c) {
        note_unreachable(c.error().message);
        return fail(Errc::unavailable, c.error().message);
    }
    auto a = directory::resolve_account(**c, domain_, account);
    if (!a) {
        if (a.error().retryable()) {
            conn_.reset();
            note_unreachable(a.error().message);
        }
        return fail(a.error().retryable() ? Errc::unavailable : Errc::refused, a.error().message);
    }
    auto st = directory::reset_password(**c, a->dn, password);
    if (st) return {};
    if (st.error().retryable()) {
        conn_.reset();
        note_unreachable(st.error().message);
    }
    return fail(st.error().retryable() ? Errc::unavailable : Errc::refused,
                st.error().server_text.empty() ? st.error().message : st.error().server_text);
}

store::AccountNames Ad::names_of(const directory::Account& a) const {
    store::AccountNames n;
    n.guid = a.guid;
    n.sam = a.sam;
    n.domain = domain_.netbios;
    n.upn = a.upn;
    n.dn = a.dn;
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
    if (before_) {
        if (auto b = before_(d.windows, *d.password, d.origin); !b) return {Outcome::retry, b.error().message};
    }
    auto st = ad_.write_password(d.windows, *d.password);
    if (st) return {Outcome::done, "set in Active Directory"};
    return {st.error().code == Errc::refused ? Outcome::permanent : Outcome::retry, st.error().message};
}

}  // namespace pwsync::gateway
