// The change watcher: DirSync (or uSNChanged polling) for what changed, the
// notification control to wake up at once, a periodic poll as the floor.
// The caller drives it: wait(), then poll(deliver).
#include <openssl/evp.h>

#include <charconv>
#include <cstdlib>
#include <map>
#include <thread>

#include "ber.h"
#include "connection_impl.h"
#include "repl_meta.h"

namespace pwsync::directory {
namespace {

constexpr const char* kNotificationOid = "1.2.840.113556.1.4.528";
constexpr std::int32_t kDirSyncMaxBytes = 1 << 20;
constexpr std::string_view kDirSyncPrefix = "dirsync:";
constexpr std::string_view kUsnPrefix = "usn:";

const std::vector<std::string> kWatchAttributes = {"objectGUID",  "sAMAccountName", "userPrincipalName",
                                                   "userAccountControl", "pwdLastSet", "name",
                                                   "isDeleted", "whenCreated"};

std::string base64(std::string_view bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::optional<std::string> unbase64(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    std::string out(3 * text.size() / 4 + 1, '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
    if (n < 0) return std::nullopt;
    std::size_t len = static_cast<std::size_t>(n);
    // EVP_DecodeBlock counts the padding as zero bytes.
    if (text.size() >= 1 && text[text.size() - 1] == '=') --len;
    if (text.size() >= 2 && text[text.size() - 2] == '=') --len;
    out.resize(len);
    return out;
}

// "usn:{invocationId}:USN:WRITTEN": the DC whose USNs it counts in, its
// high-water USN, and when it was written (100 ns since 1601; cursors saved
// before that field existed have none: 0), so that one read on another DC
// can catch up from that time, as a DirSync cookie's creation time allows.
struct UsnCookie {
    std::string invocation_id;
    std::uint64_t usn = 0;
    std::int64_t written = 0;
};

std::optional<UsnCookie> parse_usn_cookie(std::string_view c) {
    if (!c.starts_with(kUsnPrefix)) return std::nullopt;
    c.remove_prefix(kUsnPrefix.size());
    const auto colon = c.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    UsnCookie u{std::string(c.substr(0, colon)), 0, 0};
    std::string_view rest = c.substr(colon + 1);
    std::optional<std::string_view> written;  // absent in cursors saved before it existed
    if (const auto second = rest.find(':'); second != std::string_view::npos) {
        written = rest.substr(second + 1);
        rest = rest.substr(0, second);
    }
    const auto number = [](std::string_view text, auto& out) {
        const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
        return !text.empty() && ec == std::errc() && p == text.data() + text.size();
    };
    if (!number(rest, u.usn) || (written && !number(*written, u.written)) || !parse_guid(u.invocation_id))
        return std::nullopt;
    return u;
}

bool is_true(const Entry& e, std::string_view attr) { return ascii_lower(e.first(attr)) == "true"; }

// Fills the account fields of an event from whatever the entry carries.
Event event_of(EventKind kind, const Entry& e) {
    const Account a = account_from_entry(e);
    Event ev;
    ev.kind = kind;
    ev.guid = a.guid;
    ev.dn = e.dn;
    ev.sam = a.sam;
    ev.upn = a.upn;
    if (e.has("userAccountControl")) ev.enabled = a.enabled;
    ev.pwd_last_set = a.pwd_last_set;
    return ev;
}

// What changed in one entry, given the set of attributes that changed.
struct Changed {
    bool created = false, deleted = false, password = false, renamed = false, uac = false;
    std::int64_t password_at = 0;  // from the metadata, when known
    std::string password_dc;       // the DC it was made on, when known
};

void push_events(std::vector<Event>& out, const Entry& e, const Changed& c) {
    if (c.deleted) {
        out.push_back(event_of(EventKind::deleted, e));
        return;
    }
    if (c.created) {
        out.push_back(event_of(EventKind::created, e));
        return;
    }
    const Account a = account_from_entry(e);
    if (c.password) {
        Event ev = event_of(EventKind::password_changed, e);
        ev.password_changed_at = c.password_at;
        ev.origin_dc = c.password_dc;
        // pwdLastSet 0 with a new password: "user must change password at
        // next logon" (a helpdesk reset). Still a password change.
        ev.temporary_password = a.pwd_last_set == 0;
        out.push_back(std::move(ev));
    }
    if (c.renamed) out.push_back(event_of(EventKind::renamed, e));
    if (c.uac) out.push_back(event_of(a.enabled ? EventKind::enabled : EventKind::disabled, e));
}

}  // namespace

const char* event_kind_name(EventKind k) noexcept {
    switch (k) {
    case EventKind::present: return "present";
    case EventKind::created: return "created";
    case EventKind::password_changed: return "password-changed";
    case EventKind::renamed: return "renamed";
    case EventKind::disabled: return "disabled";
    case EventKind::enabled: return "enabled";
    case EventKind::deleted: return "deleted";
    }
    return "?";
}

struct Watcher::Impl {
    ConnectOptions connect;
    WatchOptions options;
    SystemClock system_clock;
    const Clock* clock = nullptr;
    std::optional<Connection> conn;
    std::string cookie;
    TimePoint last_poll{};
    // A cookie (DirSync's or uSN's) counts in its DC's own USNs: on another
    // DC it would skip or repeat changes. After the connection moved to
    // another DC the watcher starts over there, and reports as changed every
    // password written since its last good poll on the old one (less a
    // margin): the changes it could not see in between. The engine drops
    // those it has already seen (their pwdLastSet).
    std::string cookie_uri;                      // the DC the cookie is from
    std::optional<TimePoint> last_good_poll;
    std::optional<std::int64_t> catch_up_since;  // pwdLastSet units (100 ns since 1601)
    // The DC's invocationId (formatted): whose USNs a cursor counts in.
    LdapResult<std::string> invocation_id(const RootDse& root) {
        if (root.ds_service_name.empty()) return std::unexpected(client_error(Reason::invalid_request, "the rootDSE has no dsServiceName"));
        Search ntds;
        ntds.base = root.ds_service_name;
        ntds.scope = Scope::base;
        ntds.attributes = {"invocationId"};
        PWSYNC_ASSIGN(auto settings, conn->search(ntds));
        std::string id = settings.empty() ? std::string() : format_guid(settings.front().first("invocationId"));
        if (id.empty()) return std::unexpected(client_error(Reason::invalid_request, "cannot read the DC's invocationId"));
        return id;
    }
    // At open: a saved cookie from another DC (pwsyncd restarted while that
    // DC was down) is dropped, and the watcher reads this one in full and
    // catches up from when the cookie was made, as after a switch while
    // running. Both kinds name their DC: DirSync's inside (with its creation
    // time), ours in the uSN cursor (with the time it was written, if saved
    // since that field exists).
    LdapStatus check_cookie(const RootDse& root) {
        std::string source_id;
        std::int64_t made = 0;
        if (cookie.starts_with(kDirSyncPrefix)) {
            const auto raw = unbase64(std::string_view(cookie).substr(kDirSyncPrefix.size()));
            const auto source = raw ? dirsync_cookie_source(*raw) : std::nullopt;
            if (!source) return {};  // not the layout we know: kept, as before
            source_id = format_guid(source->invocation_id);
            made = source->created;
        } else if (const auto saved = parse_usn_cookie(cookie)) {
            source_id = saved->invocation_id;
            made = saved->written;
        } else {
            return {};
        }
        PWSYNC_ASSIGN(const std::string here, invocation_id(root));
        if (ascii_lower(source_id) == ascii_lower(here)) {
            cookie_uri = conn->uri();
            return {};
        }
        cookie.clear();
        if (made > 0) catch_up_from(made);
        return {};
    }
    // A catch-up from `t` less the margin, never before what the caller
    // first read (catch_up_not_before).
    void catch_up_from(std::int64_t t) { catch_up_since = std::max(t - catch_up_margin(), options.catch_up_not_before); }
    // How far before the last good poll a catch-up starts (100 ns units).
    std::int64_t catch_up_margin() const {
        return std::chrono::duration_cast<std::chrono::microseconds>(options.poll_interval + std::chrono::minutes(5)).count() * 10;
    }
    // A reconnect inside a poll may have moved the connection to another DC,
    // where the cookie counts in the wrong USNs: that poll's results are
    // dropped as if the connection had been lost, and the next poll starts
    // over on the new DC and catches up (Watcher::poll).
    LdapStatus still_on(const std::string& uri) {
        if (conn && conn->uri() == uri) return {};
        LdapError e = client_error(Reason::server_down, "the connection moved to another DC during the poll");
        e.ldap_code = LDAP_SERVER_DOWN;
        return std::unexpected(std::move(e));
    }
    // Whether a password was written at or after `since`. The metadata's
    // time counts whole seconds; pwdLastSet, written with the password, has
    // the precision to tell a change just before `since` from one just
    // after (0: "must change at next logon", the metadata alone decides).
    static bool written_since(std::int64_t metadata_at, std::int64_t pwd_last_set, std::int64_t since) {
        constexpr std::int64_t kSecond = 10'000'000;
        if (metadata_at + kSecond <= since) return false;
        return pwd_last_set <= 0 || pwd_last_set >= since;
    }
    // A full sync that catches up: the entry's password change, if it is
    // newer than catch_up_since; else it is only present.
    LdapStatus push_full(Batch& b, const Entry& e) {
        if (is_true(e, "isDeleted")) return {};
        b.events.push_back(event_of(EventKind::present, e));
        if (!catch_up_since || !e.has("pwdLastSet")) return {};
        Changed c;
        PWSYNC_ASSIGN(const bool moved, dirsync_password_changed(e, std::nullopt, c));
        if (moved && written_since(c.password_at, account_from_entry(e).pwd_last_set, *catch_up_since)) {
            c.password = true;
            push_events(b.events, e, c);
        }
        return {};
    }

    // The notification search, on a connection of its own.
    std::optional<Connection> notify_conn;
    int notify_msgid = -1;
    bool notify_supported = false;
    std::chrono::steady_clock::time_point last_arm_attempt{};

    LdapStatus ensure_conn() {
        if (conn) return {};
        PWSYNC_ASSIGN(Connection c, Connection::open(connect.clone()));
        conn.emplace(std::move(c));
        return {};
    }

    LdapStatus poll_dirsync(const std::function<Status(Batch&)>& deliver);
    LdapResult<bool> dirsync_password_changed(const Entry& e, std::optional<std::uint64_t> after, Changed& c);
    LdapStatus poll_usn(const std::function<Status(Batch&)>& deliver);
    LdapStatus arm_notification();

    // invocationId -> DC name, read again (at most once a minute) when a
    // change names a DC not known yet: a DC joined since, or a restored one.
    std::map<std::string, std::string> dc_names;
    std::optional<std::chrono::steady_clock::time_point> dc_names_read;
    std::string dc_name(std::string_view invocation_id) {
        if (invocation_id.size() != 16) return {};
        const std::string id = format_guid(invocation_id);
        if (auto it = dc_names.find(id); it != dc_names.end()) return it->second;
        const auto now = std::chrono::steady_clock::now();
        if (!dc_names_read || now - *dc_names_read >= std::chrono::minutes(1)) {
            dc_names_read = now;
            if (auto found = domain_controllers(*conn)) dc_names = std::move(*found);
            if (auto it = dc_names.find(id); it != dc_names.end()) return it->second;
        }
        return id;  // unknown: the id itself still tells DCs apart
    }
    void disarm() {
        if (notify_conn && notify_msgid >= 0 && notify_conn->impl().ld)
            ldap_abandon_ext(notify_conn->impl().ld.get(), notify_msgid, nullptr, nullptr);
        notify_msgid = -1;
        notify_conn.reset();
    }
};

// DirSync says only that pwdLastSet moved (it never returns the password's
// attributes): the entry's replication metadata says whether the password
// itself did, after the USN `after` (the previous cookie's high-water mark).
// A bare "must change at next logon" (pwdLastSet 0) or pwdLastSet -1 is no
// password change. Without readable metadata: pwdLastSet non-zero, as ever.
LdapResult<bool> Watcher::Impl::dirsync_password_changed(const Entry& e, std::optional<std::uint64_t> after,
                                                         Changed& c) {
    const bool fallback = account_from_entry(e).pwd_last_set != 0;
    Search s;
    s.base = e.dn;
    s.scope = Scope::base;
    s.attributes = {"replPropertyMetaData"};
    auto found = conn->search(s);
    if (!found) {
        if (found.error().reason == Reason::no_such_object) return fallback;  // moved or gone since
        return std::unexpected(std::move(found).error());
    }
    const auto meta = found->empty() ? std::nullopt : parse_repl_metadata(found->front().first("replPropertyMetaData"));
    const auto pw = meta ? password_meta(*meta) : std::nullopt;
    if (!pw) return fallback;
    c.password_at = pw->changed_at;
    c.password_dc = dc_name(pw->originating_invocation_id);
    if (after) return pw->local_usn > *after;
    // No window known: did the last write of pwdLastSet come with a password?
    for (const auto& m : *meta)
        if (m.attid == kAttidPwdLastSet) return m.local_usn == pw->local_usn;
    return fallback;
}

LdapStatus Watcher::Impl::poll_dirsync(const std::function<Status(Batch&)>& deliver) {
    const std::string uri = conn->uri();
    std::string raw;
    if (cookie.starts_with(kDirSyncPrefix)) {
        auto d = unbase64(std::string_view(cookie).substr(kDirSyncPrefix.size()));
        if (!d) return std::unexpected(client_error(Reason::invalid_request, "the saved DirSync cookie does not decode"));
        raw = std::move(*d);
    }
    Search s;
    s.base = options.base;
    s.scope = Scope::subtree;
    s.filter = options.filter;
    s.attributes = kWatchAttributes;
    for (;;) {
        const bool full = raw.empty();
        const std::string value = ber::dirsync_request(options.dirsync_flags, kDirSyncMaxBytes, raw);
        ControlPtr ctrl = make_control(LDAP_CONTROL_X_DIRSYNC, value, true);
        if (!ctrl) return std::unexpected(client_error(Reason::invalid_request, "cannot build the DirSync control"));
        LDAPControl* ctrls[] = {ctrl.get(), nullptr};
        // Idempotent for a given cookie: a read, retried after a reconnect.
        PWSYNC_ASSIGN(Page page, conn->impl().read([&] { return conn->impl().search_once(s, ctrls); }));
        PWSYNC_TRY(still_on(uri));
        const auto resp_value = page.control(LDAP_CONTROL_X_DIRSYNC);
        if (!resp_value) return std::unexpected(client_error(Reason::invalid_request, "DirSync: the DC sent no response control"));
        auto resp = ber::dirsync_response(*resp_value);
        if (!resp) return std::unexpected(client_error(Reason::invalid_request, "DirSync: malformed response control"));

        Batch b;
        b.full_sync = full;
        b.observed = clock->now();
        b.cookie = std::string(kDirSyncPrefix) + base64(resp->cookie);
        const auto after = dirsync_cookie_usn(raw);
        for (const Entry& e : page.entries) {
            if (full) {
                PWSYNC_TRY(push_full(b, e));
                continue;
            }
            // Incremental results carry only the attributes that changed.
            Changed c;
            c.deleted = is_true(e, "isDeleted");
            c.created = e.has("whenCreated");
            if (e.has("pwdLastSet") && !c.deleted && !c.created) {
                PWSYNC_ASSIGN(c.password, dirsync_password_changed(e, after, c));
            }
            c.renamed = e.has("name") || e.has("sAMAccountName") || e.has("userPrincipalName");
            c.uac = e.has("userAccountControl");
            push_events(b.events, e, c);
        }
        if (auto st = deliver(b); !st) return std::unexpected(from_error(st.error()));
        cookie = b.cookie;
        raw = std::move(resp->cookie);
        if (!resp->more) break;
    }
    return {};
}

LdapStatus Watcher::Impl::poll_usn(const std::function<Status(Batch&)>& deliver) {
    PWSYNC_ASSIGN(RootDse root, conn->root_dse());
    PWSYNC_ASSIGN(const std::string invocation, invocation_id(root));

    // Read before searching: a change after this point is reported next time.
    const std::uint64_t high = root.highest_committed_usn;
    const auto saved = parse_usn_cookie(cookie);
    // No cookie, or another DC (or a restored one): its USNs mean nothing
    // to us, so start over with a full sync.
    const bool full = !saved || ascii_lower(saved->invocation_id) != ascii_lower(invocation);
    const std::uint64_t from = full ? 0 : saved->usn;

    Batch b;
    b.full_sync = full;
    b.cookie = std::string(kUsnPrefix) + invocation + ":" + std::to_string(high) + ":" +
               std::to_string(to_filetime(clock->now()));
    Search s;
    s.base = options.base;
    s.scope = Scope::subtree;
    s.attributes = kWatchAttributes;
    if (full) {
        s.filter = options.filter;
    } else {
        if (high <= from) {  // nothing committed since
            b.observed = clock->now();
            if (auto st = deliver(b); !st) return std::unexpected(from_error(st.error()));
            cookie = b.cookie;
            return {};
        }
        s.filter = "(&" + options.filter + "(uSNChanged>=" + std::to_string(from + 1) + "))";
        s.show_deleted = true;
        for (const char* a : {"uSNChanged", "uSNCreated", "replPropertyMetaData"}) s.attributes.emplace_back(a);
    }
    const std::string uri = conn->uri();
    PWSYNC_TRY(conn->search_paged(s, [&](Entry&& e) -> Status {
        if (full) {
            auto st = push_full(b, e);
            if (!st) return std::unexpected(Error{st.error().code, st.error().message});
            return {};
        }
        // Only what changed inside (from, high] counts now; later changes
        // come with the next poll, so nothing is reported twice or missed.
        const auto in_window = [&](std::uint64_t usn) { return usn > from && usn <= high; };
        const auto meta = parse_repl_metadata(e.first("replPropertyMetaData"));
        const std::uint64_t created = std::strtoull(e.first("uSNCreated").c_str(), nullptr, 10);
        if (!meta) {
            // Without metadata we cannot tell what changed: report the state.
            if (std::strtoull(e.first("uSNChanged").c_str(), nullptr, 10) <= high)
                b.events.push_back(event_of(is_true(e, "isDeleted") ? EventKind::deleted : EventKind::present, e));
            return {};
        }
        Changed c;
        c.created = in_window(created);
        bool pwd_last_set_moved = false;
        for (const auto& m : *meta) {
            if (!in_window(m.local_usn)) continue;
            switch (m.attid) {
            case kAttidIsDeleted: c.deleted = is_true(e, "isDeleted"); break;
            case kAttidPwdLastSet: pwd_last_set_moved = true; break;
            case kAttidName:
            case kAttidSamAccountName:
            case kAttidUserPrincipalName: c.renamed = true; break;
            case kAttidUserAccountControl: c.uac = true; break;
            default: break;
            }
        }
        // The password itself, not pwdLastSet: a reset with "must change at
        // next logon" leaves it 0, and a bare flag moves it alone.
        if (const auto pw = password_meta(*meta)) {
            c.password = in_window(pw->local_usn);
            c.password_at = pw->changed_at;
            if (c.password) c.password_dc = dc_name(pw->originating_invocation_id);
        } else {
            c.password = pwd_last_set_moved && account_from_entry(e).pwd_last_set != 0;
        }
        if (c.created && c.deleted) return {};  // came and went between two polls
        push_events(b.events, e, c);
        return {};
    }));
    PWSYNC_TRY(still_on(uri));
    b.observed = clock->now();
    if (auto st = deliver(b); !st) return std::unexpected(from_error(st.error()));
    cookie = b.cookie;
    return {};
}

LdapStatus Watcher::Impl::arm_notification() {
    last_arm_attempt = std::chrono::steady_clock::now();
    disarm();
    PWSYNC_ASSIGN(Connection c, Connection::open(connect.clone()));
    notify_conn.emplace(std::move(c));
    auto& impl = notify_conn->impl();
    ControlPtr ctrl = make_control(kNotificationOid, {}, true);
    LDAPControl* ctrls[] = {ctrl.get(), nullptr};
    char attr[] = "objectGUID";
    char* attrs[] = {attr, nullptr};
    // Subtree on the naming context, filter (objectClass=*): the form AD and
    // Samba accept for a notification search.
    int msgid = -1;
    const int rc = ldap_search_ext(impl.ld.get(), options.base.c_str(), LDAP_SCOPE_SUBTREE, "(objectClass=*)", attrs, 0,
                                   ctrls, nullptr, nullptr, 0, &msgid);
    if (rc != LDAP_SUCCESS) {
        auto e = impl.handle_error(rc, "notification search on " + options.base);
        notify_conn.reset();
        return std::unexpected(std::move(e));
    }
    notify_msgid = msgid;
    return {};
}

// ---------------------------------------------------------------- Watcher

Watcher::Watcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Watcher::Watcher(Watcher&&) noexcept = default;
Watcher& Watcher::operator=(Watcher&&) noexcept = default;
Watcher::~Watcher() {
    if (impl_) impl_->disarm();
}

LdapResult<Watcher> Watcher::open(ConnectOptions connect, WatchOptions options, std::string cookie) {
    auto impl = std::make_unique<Impl>();
    impl->connect = std::move(connect);
    impl->options = std::move(options);
    impl->clock = impl->options.clock != nullptr ? impl->options.clock : &impl->system_clock;
    impl->cookie = std::move(cookie);
    if (!impl->cookie.empty() && !impl->cookie.starts_with(kDirSyncPrefix) && !impl->cookie.starts_with(kUsnPrefix))
        return std::unexpected(client_error(Reason::invalid_request, "not a pwsync watcher cookie"));
    PWSYNC_TRY(impl->ensure_conn());
    PWSYNC_ASSIGN(RootDse root, impl->conn->root_dse());
    if (impl->options.base.empty()) impl->options.base = root.default_naming_context;
    if (impl->options.mode == WatchMode::dirsync && !root.supports_control(LDAP_CONTROL_X_DIRSYNC))
        return std::unexpected(client_error(Reason::unwilling, "the directory does not offer DirSync: use watch = usn"));
    // A cookie of the other mode is dropped by the first poll.
    if ((impl->options.mode == WatchMode::dirsync) == impl->cookie.starts_with(kDirSyncPrefix)) PWSYNC_TRY(impl->check_cookie(root));
    // A first read (no cookie) reports, besides every account's state, the
    // passwords written since the caller began to watch: a change made just
    // before or while the read runs would otherwise pass for the old state
    // (a capture never confirmed, an uncaptured change never marked stale).
    if (impl->cookie.empty() && !impl->catch_up_since && impl->options.catch_up_not_before > 0)
        impl->catch_up_since = impl->options.catch_up_not_before;
    impl->notify_supported = root.supports_control(kNotificationOid);
    // Armed before the first poll, so no change falls between a poll and
    // the wait that follows it.
    if (impl->options.notifications && impl->notify_supported) (void)impl->arm_notification();
    return Watcher(std::move(impl));
}

LdapStatus Watcher::poll(const std::function<Status(Batch&)>& deliver) {
    auto& i = *impl_;
    PWSYNC_TRY(i.ensure_conn());
    // A cookie of the other mode (the configuration changed): start over.
    const bool dirsync = i.options.mode == WatchMode::dirsync;
    if ((dirsync && i.cookie.starts_with(kUsnPrefix)) || (!dirsync && i.cookie.starts_with(kDirSyncPrefix))) i.cookie.clear();
    if (!i.cookie.empty() && !i.cookie_uri.empty() && i.conn->uri() != i.cookie_uri && i.last_good_poll) {
        i.cookie.clear();
        i.catch_up_from(to_filetime(*i.last_good_poll));
    }
    const std::string polled_uri = i.conn->uri();
    auto r = dirsync ? i.poll_dirsync(deliver) : i.poll_usn(deliver);
    i.last_poll = i.clock->now();
    if (r) {
        i.last_good_poll = i.last_poll;
        // A reconnect inside the poll may have moved it: the cookie is then
        // the new DC's already.
        i.cookie_uri = i.conn ? i.conn->uri() : polled_uri;
        i.catch_up_since.reset();
    }
    if (!r && connection_lost(r.error())) i.conn.reset();  // the next poll reconnects
    return r;
}

LdapResult<Watcher::Wake> Watcher::wait(std::chrono::milliseconds max) {
    auto& i = *impl_;
    const auto deadline = std::chrono::steady_clock::now() + max;
    const auto sleep_rest = [&] {
        const auto now = std::chrono::steady_clock::now();
        if (now < deadline) std::this_thread::sleep_until(deadline);
        return Wake::timeout;
    };
    if (!i.options.notifications || !i.notify_supported) return sleep_rest();
    if (i.notify_msgid < 0) {
        // Re-arm at most once per poll interval while the DC refuses.
        if (std::chrono::steady_clock::now() - i.last_arm_attempt < i.options.poll_interval && i.last_arm_attempt != decltype(i.last_arm_attempt){})
            return sleep_rest();
        if (!i.arm_notification()) return sleep_rest();
    }
    LDAP* ld = i.notify_conn->impl().ld.get();
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() < 0) left = std::chrono::microseconds(0);
        timeval tv{static_cast<time_t>(left.count() / 1000000), static_cast<suseconds_t>(left.count() % 1000000)};
        LDAPMessage* raw = nullptr;
        const int rc = ldap_result(ld, i.notify_msgid, LDAP_MSG_ONE, &tv, &raw);
        MsgPtr msg(raw);
        if (rc == 0) return Wake::timeout;
        if (rc == LDAP_RES_SEARCH_ENTRY) {
            // Drain whatever else is already queued: one wake-up per burst.
            for (;;) {
                timeval zero{0, 0};
                LDAPMessage* more = nullptr;
                const int r2 = ldap_result(ld, i.notify_msgid, LDAP_MSG_ONE, &zero, &more);
                MsgPtr m2(more);
                if (r2 != LDAP_RES_SEARCH_ENTRY) {
                    if (r2 != 0) i.disarm();  // ended or failed: re-armed on the next wait
                    break;
                }
            }
            return Wake::notified;
        }
        if (rc == LDAP_RES_SEARCH_REFERENCE) continue;
        // The search ended (error, DC shutdown) or the connection failed:
        // fall back to the floor; the next wait re-arms. A change may have
        // slipped through while it was down, so poll now.
        i.disarm();
        return Wake::notified;
    }
}

std::chrono::milliseconds Watcher::until_next_poll() const {
    const auto& i = *impl_;
    if (i.last_poll == TimePoint{}) return std::chrono::milliseconds(0);
    const auto due = i.last_poll + i.options.poll_interval;
    const auto now = i.clock->now();
    if (now >= due) return std::chrono::milliseconds(0);
    return std::chrono::duration_cast<std::chrono::milliseconds>(due - now);
}

bool Watcher::notifications_active() const { return impl_->notify_msgid >= 0; }
const std::string& Watcher::cookie() const { return impl_->cookie; }
std::string Watcher::uri() const { return impl_->conn ? impl_->conn->uri() : std::string(); }

}  // namespace pwsync::directory

namespace pwsync::directory {

LdapStatus check_dirsync_rights(Connection& c, std::string_view base, std::uint32_t flags) {
    Search s;
    s.base = std::string(base);
    s.scope = Scope::subtree;
    // Matches nothing, so the answer is quick; the rights check comes first.
    s.filter = "(&(objectClass=user)(sAMAccountName=pwsync-dirsync-probe-none))";
    s.attributes = {"objectGUID"};
    const std::string value = ber::dirsync_request(flags, 1024, {});
    ControlPtr ctrl = make_control(LDAP_CONTROL_X_DIRSYNC, value, true);
    LDAPControl* ctrls[] = {ctrl.get(), nullptr};
    auto& impl = c.impl();
    auto page = impl.read([&] { return impl.search_once(s, ctrls); });
    if (!page) return std::unexpected(std::move(page).error());
    if (!page->control(LDAP_CONTROL_X_DIRSYNC))
        return std::unexpected(client_error(Reason::unwilling, "DirSync on " + s.base + ": the DC sent no DirSync response"));
    return {};
}

}  // namespace pwsync::directory
