#include "ad.h"

#include <algorithm>
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
    if (std::chrono::steady_clock::now().time_since_epoch().count() >= down_until_.load()) return {};
    std::lock_guard lock(down_mutex_);
    return fail(Errc::unavailable, "Active Directory was unreachable moments ago: " + down_reason_);
}

void Ad::note_unreachable(const std::string& why) {
    {
        std::lock_guard lock(down_mutex_);
        down_reason_ = why;
    }
    down_until_ = (std::chrono::steady_clock::now() + kFailFast).time_since_epoch().count();
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

void Ad::remember(const directory::Event& e) {
    if (e.guid.empty()) return;
    std::lock_guard lock(names_mutex_);
    Names& n = by_guid_[e.guid];
    n.guid = e.guid;
    if (e.kind == directory::EventKind::deleted) {
        for (auto it = to_guid_.begin(); it != to_guid_.end();) it = it->second == e.guid ? to_guid_.erase(it) : std::next(it);
        by_guid_.erase(e.guid);
        return;
    }
    // Incremental results carry only what changed: keep what we knew.
    if (!e.sam.empty()) n.sam = e.sam;
    if (!e.upn.empty()) n.upn = e.upn;
    for (const auto& name : {n.sam, domain_.netbios.empty() || n.sam.empty() ? std::string() : domain_.netbios + "\\" + n.sam,
                             n.upn, n.guid})
        if (!name.empty()) to_guid_[ascii_lower(name)] = e.guid;
}

std::string Ad::sam_of(std::string_view guid) {
    std::lock_guard lock(names_mutex_);
    auto it = by_guid_.find(std::string(guid));
    return it == by_guid_.end() ? std::string() : it->second.sam;
}

std::vector<std::string> Ad::aliases(std::string_view account) {
    std::vector<std::string> out{ascii_lower(account)};
    auto add = [&](const std::string& n) {
        if (!n.empty() && std::find(out.begin(), out.end(), ascii_lower(n)) == out.end()) out.push_back(ascii_lower(n));
    };
    {
        std::lock_guard lock(names_mutex_);
        if (auto g = to_guid_.find(out.front()); g != to_guid_.end()) {
            const Names& n = by_guid_[g->second];
            add(n.sam);
            if (!domain_.netbios.empty() && !n.sam.empty()) add(domain_.netbios + "\\" + n.sam);
            add(n.upn);
            add(n.guid);
        }
    }
    // What the text itself says (DOMAIN\sam <-> sam), for accounts not seen yet.
    const std::string first = out.front();
    if (const auto slash = first.find('\\'); slash != std::string::npos) add(first.substr(slash + 1));
    else if (first.find('@') == std::string::npos && !domain_.netbios.empty()) add(domain_.netbios + "\\" + first);
    return out;
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
