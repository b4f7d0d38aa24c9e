#include "ad.h"

#include <algorithm>

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

Status Ad::write_password(std::string_view account, const Secret& password) {
    // Held across the write: full-sync writes to AD go one at a time. The
    // DC's capture hook, called during the write, reaches the listener and
    // the engine, which never take this lock.
    std::lock_guard lock(mutex_);
    auto c = connection();
    if (!c) return fail(Errc::unavailable, c.error().message);
    auto a = directory::resolve_account(**c, domain_, account);
    if (!a) {
        if (a.error().retryable()) conn_.reset();
        return fail(a.error().retryable() ? Errc::unavailable : Errc::refused, a.error().message);
    }
    auto st = directory::reset_password(**c, a->dn, password);
    if (st) return {};
    if (st.error().retryable()) conn_.reset();
    return fail(st.error().retryable() ? Errc::unavailable : Errc::refused,
                st.error().server_text.empty() ? st.error().message : st.error().server_text);
}

std::vector<std::string> Ad::aliases(std::string_view account) {
    std::vector<std::string> out{ascii_lower(account)};
    auto a = resolve(account);
    if (!a) return out;
    for (const auto& n : {a->sam, domain_.netbios.empty() ? std::string() : domain_.netbios + "\\" + a->sam, a->upn, a->guid})
        if (!n.empty() && std::find(out.begin(), out.end(), ascii_lower(n)) == out.end()) out.push_back(ascii_lower(n));
    return out;
}

DeliveryResult AdTarget::deliver(const Delivery& d) {
    auto st = ad_.write_password(d.windows, *d.password);
    if (st) return {Outcome::done, "set in Active Directory"};
    return {st.error().code == Errc::refused ? Outcome::permanent : Outcome::retry, st.error().message};
}

}  // namespace pwsync::gateway
