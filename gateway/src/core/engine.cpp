#include "engine.h"

#include <algorithm>
#include <map>

#include "pwsync/dc_health.h"
#include "pwsync/directory.h"
#include <cstdlib>
#include <set>

namespace pwsync::gateway {

// Principals whose proven secret is kept: one per DC, adapter or agent.
constexpr std::size_t kVerifiedSecretsMax = 4096;
namespace {

// An account's key in the locks: its objectGUID once resolved, else the name it was mapped with.
std::string account_key(std::string_view guid_or_name) { return ascii_lower(guid_or_name); }

// What the audit and the dispatcher call the sender of a change.
constexpr std::string_view kPwsyncWrote = "\x01pwsync wrote this account";

ChangeResult reply(ChangeOutcome outcome, std::string message) { return {outcome, std::move(message)}; }

// A store error: unavailable (52) when asking again may work (the disk, a
// database failing over, a concurrent writer), else failed (80). The
// directory's outages do not come here: they are handled where asked.
ChangeResult from_error(const Error& e) {
    if (store_may_answer_later(e))
        return reply(ChangeOutcome::unavailable, "the change could not be stored: " + e.message);
    return reply(ChangeOutcome::failed, e.message);
}

Error invalid_credentials() { return {Errc::permission, "invalid credentials"}; }
// not_found: the principal is gone, an answer; anything else the store
// could not tell.
Error cannot_tell_or_invalid(const Error& e) { return e.code == Errc::not_found ? invalid_credentials() : e; }

std::string lower_trimmed(std::string_view s) { return ascii_lower(s); }

// AD keeps pwdLastSet in 100 ns units since 1601-01-01.
// The DC's clock and ours may differ a little.
constexpr auto kClockSlack = std::chrono::seconds(2);

// sam, not DOMAIN\sam, a UPN, a DN or a GUID.
// The directory could not be asked now: asking again may work. The
// directory library's retryable errors come back as these two.
bool outage(const Error& e) { return e.code == Errc::unavailable || e.code == Errc::timeout; }

}  // namespace

Engine::Engine(store::Store& store, EngineOptions options)
    : store_(store), options_(std::move(options)), verified_(options_.verified_secret_ttl, kVerifiedSecretsMax),
      clock_(options_.clock ? options_.clock : &system_clock_) {}

std::vector<std::string> Engine::text_aliases(std::string_view account) const {
    std::vector<std::string> out{lower_trimmed(account)};
    const std::string acc = out.front();
    if (auto g = directory::parse_guid(acc)) {
        out.push_back(directory::format_guid(*g));
        return out;
    }
    if (acc.find('=') != std::string::npos) return out;  // a DN: no other spelling
    if (options_.several_domains) return out;  // DOMAIN\sam is not the sam of every domain
    const auto slash = acc.find('\\');
    const std::string domain = ascii_lower(options_.domain);
    if (slash != std::string::npos) {
        out.push_back(acc.substr(slash + 1));
    } else if (acc.find('@') == std::string::npos && !domain.empty()) {
        out.push_back(domain + "\\" + acc);
    }
    return out;
}

std::vector<std::string> Engine::aliases(const store::ReadTxn& r, std::string_view account) const {
    std::vector<std::string> out = text_aliases(account);
    for (std::size_t i = 0, n = out.size(); i < n; ++i) {
        auto known = r.account(out[i]);
        if (!known || !*known) continue;
        for (auto& name : (*known)->names())
            if (std::find(out.begin(), out.end(), name) == out.end() &&
                !(options_.several_domains && directory::is_bare_sam(name)))
                out.push_back(std::move(name));
        break;
    }
    return out;
}

std::string Engine::canonical(const store::ReadTxn& r, std::string_view account) const {
    for (const auto& n : text_aliases(account))
        if (auto known = r.account(n); known && *known && !(*known)->sam.empty()) {
            if (!options_.several_domains) return ascii_lower((*known)->sam);
            return ascii_lower((*known)->domain + "\\" + (*known)->sam);
        }
    std::string acc = ascii_lower(account);
    if (options_.several_domains) return acc;
    const auto slash = acc.find('\\');
    return slash == std::string::npos ? acc : acc.substr(slash + 1);
}

void Engine::learn(std::string_view account, ChangeTimes& t) {
    if (!options_.resolve) return;
    {
        auto r = store_.read();
        if (!r) return;
        for (const auto& n : text_aliases(account))
            if (auto known = r->account(n); !known || *known) return;  // known (or the store cannot tell)
    }
    auto a = timed(t.directory, [&] { return options_.resolve(account); });
    if (!a) return;  // unknown to the directory too, or it cannot be asked: match by the text
    // Only accounts the mappings name are kept: not every account of the domain.
    (void)timed(t.store, [&] { return store_.transact("pwsyncd", [&](store::WriteTxn& w) -> Status {
        for (const auto& n : a->names()) {
            PWSYNC_ASSIGN(auto found, w.account_mappings(n));
            if (!found.empty()) {
                PWSYNC_TRY(w.note_account(*a));
                return {};
            }
        }
        return {};
    }); });
}

// Whether the change is pwsync's own write (full sync), which explains one
// change seen after it, not every change for the echo window: the marker is
// spent, and later changes nobody captured are stale again. A change older
// than the marker (read while we wrote) is not ours, and leaves the marker
// to the write it stands for. A change of unknown time is taken as ours.
Result<bool> Engine::our_write(store::WriteTxn& w, const std::string& key, const DirectoryChange& c) {
    PWSYNC_ASSIGN(auto marker, w.marker(store::MarkerKind::echo, key, kPwsyncWrote, now()));
    if (!marker) return false;
    const std::int64_t at = c.pwd_last_set != 0 ? c.pwd_last_set : c.changed_at;
    if (at == 0) return true;
    if (marker->expires - options_.echo_window > from_filetime(at) + kClockSlack) return false;
    PWSYNC_TRY(w.set_marker(store::MarkerKind::echo, key, kPwsyncWrote, store::Marker{marker->origin, now()}));
    return true;
}

Status Engine::mark_written(store::WriteTxn& w, std::string_view account, std::string_view password,
                            const std::string& origin_adapter, TimePoint until) {
    const std::string key = canonical(w, account);
    PWSYNC_TRY(w.set_marker(store::MarkerKind::echo, key, password, {origin_adapter, until}));
    return w.set_marker(store::MarkerKind::echo, key, kPwsyncWrote, {origin_adapter, until});
}

Result<std::vector<store::Mapping>> Engine::mappings_of(const store::ReadTxn& r, std::string_view account) const {
    std::vector<store::Mapping> out;
    std::set<std::pair<std::string, std::string>> seen;
    std::set<std::string> accounts;  // known accounts read already: their mappings are all in
    for (const auto& alias : text_aliases(account)) {
        PWSYNC_ASSIGN(auto known, r.account(alias));
        if (known && !accounts.insert(known->guid).second) continue;
        PWSYNC_ASSIGN(auto found, r.account_mappings(alias));
        for (auto& m : found)
            if (seen.emplace(ascii_lower(m.app), ascii_lower(m.windows)).second) out.push_back(std::move(m));
    }
    return out;
}

Result<std::string> Engine::authenticate(std::string_view bind_dn, const Secret& secret) {
    std::string name(bind_dn);
    if (name.size() > 3 && ascii_lower(name.substr(0, 3)) == "cn=") name = name.substr(3, name.find(',') - 3);
    PWSYNC_ASSIGN(auto r, store_.read());
    auto p = r.principal(name);
    if (!p) {
        if (p.error().code != Errc::not_found) return std::unexpected(p.error());
        (void)r.verify_principal_secret(name, secret.view());  // as slow as a wrong secret
        return std::unexpected(invalid_credentials());
    }
    const auto version = r.principal_secret_version(name);
    if (version && verified_.known(p->name, *version, secret, now())) return p->name;
    auto ok = r.verify_principal_secret(name, secret.view());
    if (!ok) return std::unexpected(cannot_tell_or_invalid(ok.error()));
    if (!*ok) return std::unexpected(invalid_credentials());
    if (version) verified_.remember(p->name, *version, secret, now());
    return p->name;
}

Result<std::string> Engine::authenticate_certificate(std::string_view subject) {
    if (subject.empty()) return std::unexpected(invalid_credentials());
    PWSYNC_ASSIGN(auto r, store_.read());
    auto name = r.principal_with_certificate(subject);
    if (!name && name.error().code == Errc::not_found) return std::unexpected(Error{Errc::permission, name.error().message});
    return name;
}

ChangeResult Engine::change(const std::string& principal, std::string_view identity, const Secret* old_password,
                            const Secret& new_password) {
    ChangeTimes t;
    auto r = change(principal, identity, old_password, new_password, t);
    r.times = t;
    return r;
}

ChangeResult Engine::change(const std::string& principal, std::string_view identity, const Secret* old_password,
                            const Secret& new_password, ChangeTimes& t) {
    if (new_password.empty()) return reply(ChangeOutcome::incomplete, "a new password is required");
    if (!valid_utf8(new_password.view()) || new_password.size() > 1024)
        return reply(ChangeOutcome::bad_password, "the new password is not valid UTF-8 or is too long");
    if (identity.empty()) return reply(ChangeOutcome::incomplete, "userIdentity is required: name the account");
    store::Principal p;
    {
        auto r = store_.read();
        if (!r) return from_error(r.error());
        auto found = r->principal(principal);
        // Only a principal that is gone is a refusal; a store that cannot
        // answer (a database failing over) is a failure the sender retries.
        if (!found && found.error().code != Errc::not_found) return from_error(found.error());
        if (!found) return reply(ChangeOutcome::denied, "principal '" + principal + "' no longer exists");
        p = std::move(*found);
    }
    if (p.kind == store::PrincipalKind::monitor)
        return reply(ChangeOutcome::denied, "a monitor principal may only read cn=monitor");
    if (p.kind == store::PrincipalKind::windows) {
        // A DN the store knows as an account's name needs no directory search;
        // nor does any DN in a pre-commit capture, which must not ask the DC
        // (it is inside this very change): the store's names, or the watcher
        // before it confirms, resolve it.
        std::string named(identity);
        AccountOfDn search = options_.account_of_dn;
        if (auto parsed = parse_user_identity(identity); parsed && parsed->is_dn) {
            if (auto dn = parse_dn(parsed->value)) {
                const std::string canonical = canonical_dn(*dn);
                bool known = p.capture == store::CaptureMode::pre_commit;
                if (!known)
                    if (auto r = store_.read())
                        if (auto a = r->account(canonical); a && a->has_value()) known = true;
                if (known) {
                    named = "dn:" + canonical;
                    search = nullptr;
                }
            }
        }
        auto account = timed(t.directory, [&] { return windows_account(named, search); });
        if (account && options_.several_domains) {
            auto in_domain = captured_in_domain(p, *account);
            if (!in_domain) return reply(ChangeOutcome::refused, in_domain.error().message);
            account = std::move(*in_domain);
        }
        auto r = account ? from_windows(p, *account, new_password, t) : reply(account.error().outcome, account.error().message);
        r.mode = "windows";
        return r;
    }
    return from_adapter(p, identity, old_password, new_password, t);
}

// Several domains: a capture principal reports its own domain's accounts.
// A bare sam is taken as its domain's; a name of another domain is refused.
Result<std::string> Engine::captured_in_domain(const store::Principal& p, std::string_view account) const {
    const std::string domain = options_.capture_domain ? options_.capture_domain(p.name) : std::string();
    const std::string named = options_.domain_of_name ? options_.domain_of_name(account) : std::string();
    // DOMAIN\sam under the NetBIOS name the watcher uses, however DOMAIN was
    // written (its DNS name too).
    const auto netbios_form = [&](const std::string& netbios) {
        const auto slash = account.find('\\');
        if (netbios.empty() || slash == std::string_view::npos || account.find('=') != std::string_view::npos)
            return std::string(account);
        return netbios + std::string(account.substr(slash));
    };
    if (domain.empty()) {
        if (!directory::is_bare_sam(account)) return netbios_form(named);
        return fail(Errc::refused, "principal '" + p.name + "' is tied to no domain (capture-principals = in a [directory NAME]) "
                                   "and '" + std::string(account) + "' does not say its domain");
    }
    if (directory::is_bare_sam(account)) return domain + "\\" + std::string(account);
    if (!named.empty() && ascii_lower(named) != ascii_lower(domain))
        return fail(Errc::refused, "principal '" + p.name + "' captures for domain " + domain + ", not for '" +
                                   std::string(account) + "' (domain " + named + ")");
    return netbios_form(named.empty() ? std::string() : domain);
}

Result<std::optional<AccountState>> Engine::state_of(std::string_view account, bool pending_only, std::string* refused,
                                                     std::chrono::nanoseconds* asking) {
    if (!options_.account_state) return std::nullopt;
    {
        PWSYNC_ASSIGN(auto r, store_.read());
        PWSYNC_ASSIGN(auto mappings, mappings_of(r, account));
        if (mappings.empty()) return std::nullopt;
        bool pending = !pending_only;
        for (const auto& n : aliases(r, account)) {
            if (pending) break;
            PWSYNC_ASSIGN(auto found, r.pending_captures(n));
            pending = !found.empty();
        }
        if (!pending) return std::nullopt;
    }
    if (asking != nullptr) return timed(*asking, [&] { return ask_state(account, refused); });
    return ask_state(account, refused);
}

Result<std::optional<AccountState>> Engine::ask_state(std::string_view account, std::string* refused) {
    if (!options_.account_state) return std::nullopt;
    auto s = options_.account_state(account);
    if (!s && s.error().code == Errc::not_found) return std::nullopt;
    if (!s && refused != nullptr && !outage(s.error())) {
        *refused = s.error().message.empty() ? errc_name(s.error().code) : s.error().message;
        return std::nullopt;
    }
    if (!s) return std::unexpected(s.error());
    return std::optional<AccountState>(std::move(*s));
}

Status Engine::fan_out(store::WriteTxn& w, std::string_view account, const Secret& password, const std::string& origin,
                       std::string_view skip_adapter, std::size_t& queued, const std::vector<store::Mapping>* known,
                       const Checks* checks) {
    const TimePoint t = now();
    const std::string key = canonical(w, account);
    PWSYNC_ASSIGN(const auto place, w.marker_place(key, password.view()));  // one keyed hash for the three
    PWSYNC_ASSIGN(auto damped, w.marker(store::MarkerKind::damping, place, t));
    if (damped) return w.audit("change.damped", std::string(account), "the same change was seen within the damping window");
    PWSYNC_TRY(w.set_marker(store::MarkerKind::damping, place, store::Marker{origin, t + options_.damping_window}));
    PWSYNC_ASSIGN(auto echo, w.marker(store::MarkerKind::echo, place, t));
    PWSYNC_ASSIGN(auto sync, w.sync_settings());
    if (!sync.windows) return w.audit("change.not-sent", std::string(account), "Windows -> External sync is disabled");
    // A mapping the change reached (queued, or it came from its adapter) is
    // current again: stale or awaiting the user's change no longer.
    const auto reached = [&](const store::Mapping& m) -> Status {
        return m.status == store::MappingStatus::ok ? Status{} : w.set_mapping_status({m.app, m.windows}, store::MappingStatus::ok);
    };
    std::vector<store::Mapping> read;
    if (known == nullptr) {
        PWSYNC_ASSIGN(read, mappings_of(w, account));
    }
    const auto& mappings = known != nullptr ? *known : read;
    for (const auto& m : mappings) {
        // Every mapping left out is accounted for in the audit.
        auto skip = [&](const std::string& why) { return w.audit("change.not-sent", m.app + "/" + m.windows, why); };
        if (!m.enabled) { PWSYNC_TRY(skip("mapping disabled")); continue; }
        PWSYNC_ASSIGN(store::App app, w.app(m.app));
        if (!app.enabled) { PWSYNC_TRY(skip("application disabled")); continue; }
        if (app.adapter.empty()) { PWSYNC_TRY(skip("application has no adapter")); continue; }
        PWSYNC_ASSIGN(store::Adapter adapter, w.adapter(app.adapter));
        if (!adapter.flags.enabled) { PWSYNC_TRY(skip("adapter " + adapter.name + " disabled")); continue; }
        if (!adapter.flags.sync_to_adapter) { PWSYNC_TRY(skip("adapter " + adapter.name + " has sync-to-adapter off")); continue; }
        const std::string name = ascii_lower(adapter.name);
        if (name == ascii_lower(skip_adapter) || (echo && name == ascii_lower((*echo).origin))) {
            PWSYNC_TRY(w.audit("change.echo-suppressed", m.app + "/" + m.windows, "came from adapter " + adapter.name));
            PWSYNC_TRY(reached(m));
            continue;
        }
        if (checks != nullptr)
            if (auto why = !checks->unknown.empty() ? std::optional(state_unknown(checks->unknown))
                                                    : withhold(checks->state, checks->temporary, app, adapter)) {
                PWSYNC_TRY(w.audit(why->action, m.app + "/" + m.windows, why->reason));
                if (m.status != why->status) PWSYNC_TRY(w.set_mapping_status({m.app, m.windows}, why->status));
                continue;
            }
        store::Job job;
        job.adapter = adapter.name;
        job.app = m.app;
        job.windows = m.windows;
        job.external = m.external;
        job.origin = origin;
        std::optional<Secret> old;
        if (m.has_credential) {
            auto c = w.mapping_credential({m.app, m.windows});
            if (c) old = std::move(*c);
        }
        PWSYNC_TRY(w.enqueue_job(job, password, old ? &*old : nullptr));
        ++queued;
        PWSYNC_TRY(reached(m));
    }
    return {};
}

ChangeResult Engine::from_windows(const store::Principal& p, std::string_view account, const Secret& password,
                                  ChangeTimes& t) {
    // Group commit: concurrent captures share one transaction and one fsync;
    // each sender is answered only after the commit holding its change.
    // A name the store does not know is asked of the directory first, with
    // no transaction open — but not during a pre-commit capture: the DC is
    // inside this very change, and a single-process DC cannot answer until
    // its hook returns. Such a capture waits as pending; the watcher, which
    // may ask, resolves the account before it confirms the change.
    const bool pre_commit = p.capture == store::CaptureMode::pre_commit;
    if (!pre_commit) learn(account, t);
    // The account's mappings are found before the writer's turn, which only
    // reads each again by its key (gone meanwhile: left out; changed: as it
    // is now). A mapping made meanwhile gets the account's next change, as
    // if this one had come first. An account with none takes no turn.
    std::vector<store::Mapping> before;
    {
        auto r = store_.read();
        if (!r) return from_error(r.error());
        auto sync = r->sync_settings();
        if (!sync) return from_error(sync.error());
        if (!sync->windows) return reply(ChangeOutcome::refused, "Windows -> External sync is disabled (pwsync sync enable windows)");
        auto found = mappings_of(*r, account);
        if (!found) return from_error(found.error());
        before = std::move(*found);
    }
    if (before.empty() && !pre_commit)
        return reply(ChangeOutcome::no_mapping, "no mapping for Windows account '" + std::string(account) + "'");
    std::optional<AccountState> state;
    if (!pre_commit) {
        auto s = timed(t.directory, [&] { return ask_state(account); });
        if (!s) return reply(ChangeOutcome::unavailable, "the directory cannot tell the account's state: " + s.error().message);
        state = std::move(*s);
    }
    ChangeResult out;
    std::size_t queued = 0;
    auto st = timed(t.store, [&] { return store_.transact(p.name, [&](store::WriteTxn& w) -> Status {
        queued = 0;
        PWSYNC_ASSIGN(auto sync, w.sync_settings());
        if (!sync.windows) {
            out = reply(ChangeOutcome::refused, "Windows -> External sync is disabled (pwsync sync enable windows)");
            return {};
        }
        std::vector<store::Mapping> mappings;
        if (before.empty()) {
            PWSYNC_ASSIGN(mappings, mappings_of(w, account));
        }
        for (const auto& m : before) {
            auto now_there = w.mapping({m.app, m.windows});
            if (!now_there && now_there.error().code == Errc::not_found) continue;
            if (!now_there) return std::unexpected(now_there.error());
            mappings.push_back(std::move(*now_there));
        }
        bool unresolved = false;
        if (mappings.empty() && pre_commit && options_.resolve) {
            // Some mapping may name this account by another name, not resolved yet.
            PWSYNC_ASSIGN(auto known, w.account(account));
            PWSYNC_ASSIGN(auto waiting, w.unresolved_mappings(1));
            unresolved = !known && !waiting.empty();
        }
        if (mappings.empty() && !unresolved) {
            out = reply(ChangeOutcome::no_mapping, "no mapping for Windows account '" + std::string(account) + "'");
            return {};
        }
        if (pre_commit) {
            store::PendingCapture c;
            c.account = account;
            c.principal = p.name;
            c.expires = now() + options_.pending_ttl;
            PWSYNC_TRY(w.add_pending_capture(c, password));
            out = reply(ChangeOutcome::stored, "stored; pending until the directory confirms the change");
        } else {
            // After the commit the directory already says whether the
            // password is temporary ("must change at next logon").
            const Checks checks{state ? &*state : nullptr, state && state->must_change, {}};
            PWSYNC_TRY(fan_out(w, account, password, p.name, {}, queued, &mappings, &checks));
            out = reply(ChangeOutcome::stored, "stored; queued for " + std::to_string(queued) + " application(s)");
        }
        return {};
    }); });
    if (!st) return from_error(st.error());
    if (queued > 0 && options_.queued) options_.queued();
    return out;
}

ChangeResult Engine::from_adapter(const store::Principal& p, std::string_view identity, const Secret* old_password,
                                  const Secret& password, ChangeTimes& t) {
    store::Adapter adapter;
    std::string external;  // the user id `identity` names
    store::SyncSettings sync;
    std::vector<store::Mapping> mappings;
    {
        auto r = store_.read();
        if (!r) return from_error(r.error());
        auto a = r->adapter(p.adapter);
        if (!a) return reply(ChangeOutcome::refused, a.error().message);
        adapter = std::move(*a);
        auto id = external_user_id(identity, adapter);
        if (!id) return reply(id.error().outcome, id.error().message);
        external = std::move(*id);
        auto s = r->sync_settings();
        if (!s) return from_error(s.error());
        sync = *s;
        auto apps = r->adapter_apps(adapter.name);
        if (!apps) return from_error(apps.error());
        for (const auto& app : *apps) {
            auto found = r->mappings_by_external(app, external);
            if (!found) return from_error(found.error());
            for (auto& m : *found)
                if (m.enabled) mappings.push_back(std::move(m));
        }
    }
    // Changes of one external user go one at a time, in arrival order, and
    // no two changes write one Windows account at once: the old-password
    // check, the AD write and the store update of one change must not
    // interleave with another's. Other accounts' changes run alongside.
    auto turn = account_locks_.arrive(ascii_lower(adapter.name) + '\0' + ascii_lower(external));
    std::vector<std::string> accounts;
    for (const auto& m : mappings) accounts.push_back(account_key(m.object_guid.empty() ? m.windows : m.object_guid));
    account_locks_.hold(turn, accounts);
    // The same accounts on the other gateways of a shared store.
    auto across = store_.lock_keys(std::move(accounts));
    if (!across) return from_error(across.error());
    if (!adapter.flags.enabled) return reply(ChangeOutcome::refused, "adapter '" + adapter.name + "' is disabled");
    const bool full = adapter.flags.change_windows_password && sync.full && options_.ad_writer;
    const bool partial = adapter.flags.sync_from_adapter && sync.partial;
    if (adapter.flags.change_windows_password && sync.full && !options_.ad_writer && !partial)
        return reply(ChangeOutcome::refused, "full sync needs a [directory] section in pwsyncd.conf");
    if (!full && !partial)
        return reply(ChangeOutcome::refused,
                     "External -> Windows sync is disabled for adapter '" + adapter.name +
                         "' (adapter flags sync-from-adapter / change-windows-password and pwsync sync enable partial|full)");
    if (mappings.empty())
        return reply(ChangeOutcome::no_mapping, "no mapping for external user '" + std::string(external) + "' in adapter '" +
                                                  adapter.name + "'");
    if (mappings.size() > 1 && !adapter.flags.allow_mapping_conflicts)
        return reply(ChangeOutcome::refused, "external user '" + std::string(external) + "' is mapped to " +
                                                        std::to_string(mappings.size()) +
                                                        " Windows accounts and adapter '" + adapter.name +
                                                        "' does not allow mapping conflicts");
    if (adapter.flags.verify_old_password) {
        if (old_password == nullptr || old_password->empty())
            return reply(ChangeOutcome::refused, "adapter '" + adapter.name + "' verifies old passwords: send oldPasswd");
        auto r = store_.read();
        if (!r) return from_error(r.error());
        for (const auto& m : mappings) {
            auto stored = r->mapping_credential({m.app, m.windows});
            if (!stored) return reply(ChangeOutcome::wrong_old_password, "no stored credential to verify the old password against");
            if (!constant_time_equal(stored->view(), old_password->view()))
                return reply(ChangeOutcome::wrong_old_password, "the old password does not match the stored one");
        }
    }

    // Full sync sets no AD password of a disabled account, nor of a
    // privileged one unless the mapping's application allows privileged
    // accounts: an external system must not take over a domain admin. Asked
    // before anything is written. A directory that cannot tell for good
    // (ambiguous, no access) refuses the change; one that is down now lets
    // it go on unchecked, so that the AD write is queued; the queued write
    // is checked again just before it is made (before_ad_write).
    std::map<std::string, std::optional<AccountState>> states;  // lower(windows)
    if (full) {
        auto r = store_.read();
        if (!r) return from_error(r.error());
        for (const auto& m : mappings) {
            auto& st = states[ascii_lower(m.windows)];
            if (!st) {
                auto s = state_of(m.windows, false, nullptr, &t.directory);
                if (!s && !outage(s.error())) return from_error(s.error());
                if (s) st = std::move(*s);
            }
            if (!st) continue;
            auto app = r->app(m.app);
            if (!app) return from_error(app.error());
            if (auto why = withhold(&*st, false, *app, adapter))
                return reply(ChangeOutcome::refused,
                             "pwsync does not set the Active Directory password of " + m.windows + ": " + why->reason);
        }
    }

    std::vector<std::string> ad_queue;  // Windows accounts whose AD write must be retried
    std::string ad_error;
    if (full) {
        {
            // Markers first: the DC's capture of our own write may come back
            // before this change is committed, and must not bounce to `adapter`.
            auto st = timed(t.store, [&] { return store_.transact(p.name, [&](store::WriteTxn& w) -> Status {
                for (const auto& m : mappings) {
                    PWSYNC_TRY(mark_written(w, m.windows, password.view(), adapter.name, now() + options_.echo_window));
                    // An AD write still queued from an earlier change is older than
                    // this one: it must not land after it.
                    PWSYNC_ASSIGN(auto queued, w.jobs_for_target(kWindowsTarget, m.windows));
                    for (const auto& j : queued) PWSYNC_TRY(w.job_superseded(j.id, 0));
                }
                return {};
            }); });
            if (!st) return from_error(st.error());
        }
        std::set<std::string> written;
        for (const auto& m : mappings) {
            if (!written.insert(ascii_lower(m.windows)).second) continue;
            if (!options_.ad_writer) { ad_queue.push_back(m.windows); continue; }
            // No store transaction is open here: AD's capture hook calls back into us.
            auto st = timed(t.directory, [&] { return options_.ad_writer(m.windows, password); });
            if (st) continue;
            if (st.error().code == Errc::refused || st.error().code == Errc::invalid_argument) {
                // Nothing was written: the markers must not hide a real change.
                (void)store_.transact(p.name, [&](store::WriteTxn& w) {
                    return mark_written(w, m.windows, password.view(), adapter.name, now());
                });
                return reply(ChangeOutcome::refused_by_ad, "Active Directory refused the password: " + st.error().message);
            }
            ad_error = st.error().message;
            ad_queue.push_back(m.windows);
        }
    }

    // Sent on to the account's other applications with the states read
    // before AD was written: the safe-scope checks apply.
    std::size_t queued = 0;
    auto stored = timed(t.store, [&] { return store_.transact(p.name, [&](store::WriteTxn& w) -> Status {
        queued = 0;  // a retried run counts afresh
        for (const auto& m : mappings) PWSYNC_TRY(w.set_mapping_credential({m.app, m.windows}, password));
        if (full) {
            std::set<std::string> done;
            for (const auto& m : mappings) {
                if (!done.insert(ascii_lower(m.windows)).second) continue;
                const auto& st = states[ascii_lower(m.windows)];
                const Checks checks{st ? &*st : nullptr, false, {}};
                PWSYNC_TRY(fan_out(w, m.windows, password, p.name, adapter.name, queued, nullptr, &checks));
            }
            for (const auto& account : ad_queue) {
                store::Job job;
                job.adapter = std::string(kWindowsTarget);
                job.app = mappings.front().app;
                job.windows = account;
                job.external = account;
                job.origin = p.name;
                if (options_.ad_writer) {
                    // The inline write was the first attempt: the queued one waits
                    // for the retry delay instead of hitting a DC that just failed.
                    job.attempts = 1;
                    job.last_error = ad_error;
                    job.next_attempt = now() + options_.ad_retry_delay;
                }
                PWSYNC_TRY(w.enqueue_job(job, password));
                ++queued;
            }
        }
        return w.audit(full ? "change.full" : "change.partial", adapter.name + ":" + std::string(external),
                       std::to_string(mappings.size()) + " mapping(s)" +
                           (ad_queue.empty() ? "" : "; AD write queued for retry"));
    }); });
    if (!stored) return from_error(stored.error());
    if (queued > 0 && options_.queued) options_.queued();
    auto done = reply(ChangeOutcome::stored, full ? (ad_queue.empty() ? "stored and set in Active Directory"
                                                            : "stored; Active Directory is unreachable, the write is queued")
                                        : "stored");
    done.mode = full ? "full" : "partial";
    return done;
}

Status Engine::password_changed(std::string_view account, std::int64_t pwd_last_set) {
    return watcher_page({DirectoryChange{std::string(account), pwd_last_set, 0, false}}, {}, {});
}

Status Engine::watcher_page(const std::vector<DirectoryChange>& changes, std::string_view cursor, std::string_view cookie) {
    // The directory is asked before the transaction opens; an outage fails
    // the page, which the watcher then delivers again (captures stay pending).
    // An error of one account (ambiguous, no access) would fail it forever:
    // that account's deliveries are withheld instead, and the page goes on.
    std::vector<std::optional<AccountState>> states;
    std::vector<std::string> unknown(changes.size());
    for (std::size_t i = 0; i < changes.size(); ++i) {
        PWSYNC_ASSIGN(auto s, state_of(changes[i].account, true, &unknown[i]));
        states.push_back(std::move(s));
    }
    std::size_t queued = 0;
    PWSYNC_TRY(store_.transact("pwsyncd", [&](store::WriteTxn& w) -> Status {
        queued = 0;  // a retried run counts afresh
        for (std::size_t i = 0; i < changes.size(); ++i)
            PWSYNC_TRY(password_changed(w, changes[i], states[i] ? &*states[i] : nullptr, unknown[i], queued));
        if (!cursor.empty()) PWSYNC_TRY(w.set_cursor(cursor, cookie));
        return {};
    }));
    if (queued > 0 && options_.queued) options_.queued();
    return {};
}

Status Engine::password_changed(store::WriteTxn& w, const DirectoryChange& c, const AccountState* state,
                                std::string_view unknown, std::size_t& queued) {
    const std::string_view account = c.account;
    const std::int64_t pwd_last_set = c.pwd_last_set;
    const auto names = aliases(w, account);
    const std::string key = canonical(w, account);
    // Seen already (a batch replayed after a crash): nothing to do.
    const std::string seen_name = "pwdlastset/" + key;
    if (pwd_last_set != 0) {
        PWSYNC_ASSIGN(auto seen, w.cursor(seen_name));
        if (seen && std::strtoll(seen->c_str(), nullptr, 10) >= pwd_last_set) return {};
        PWSYNC_TRY(w.set_cursor(seen_name, std::to_string(pwd_last_set)));
    }
    std::vector<store::PendingCapture> pending;
    for (const auto& n : names) {
        PWSYNC_ASSIGN(auto found, w.pending_captures(n));
        for (auto& p : found)
            if (std::none_of(pending.begin(), pending.end(), [&](const auto& x) { return x.id == p.id; }))
                pending.push_back(std::move(p));
    }
    // Captures taken after the change the DC committed are candidates for
    // a later change (or refused ones): leave them pending. A temporary
    // password leaves pwdLastSet at 0: the metadata's time stands in.
    if (const std::int64_t at = pwd_last_set != 0 ? pwd_last_set : c.changed_at; at != 0) {
        const TimePoint changed = from_filetime(at) + kClockSlack;
        std::erase_if(pending, [&](const auto& p) { return p.created > changed; });
    }
    const std::string temporary = c.temporary ? "temporary password (the user must change it at next logon)" : "";
    PWSYNC_ASSIGN(const bool ours, our_write(w, key, c));
    if (pending.empty()) {
        if (!ours) {
            // Nobody captured this change: the external systems are now behind.
            PWSYNC_ASSIGN(auto mappings, mappings_of(w, account));
            bool fresh = true;  // in step until now: "stale since" starts here
            for (const auto& m : mappings)
                if (m.status != store::MappingStatus::stale)
                    PWSYNC_TRY(w.set_mapping_status({m.app, m.windows}, store::MappingStatus::stale));
                else
                    fresh = false;
            // Only a mapped account's change could have been captured (an
            // unmapped one's capture is answered no_mapping, never kept): the
            // others say nothing of the DC.
            if (!mappings.empty()) {
                PWSYNC_TRY(store::record_dc_change(w, c.dc, false, now()));
                PWSYNC_TRY(store::note_stale(w, key, c.dc, now(), fresh));
            }
            PWSYNC_TRY(w.audit("change.uncaptured", std::string(account),
                               std::to_string(mappings.size()) + " mapping(s) marked stale" +
                                   (temporary.empty() ? "" : "; " + temporary) +
                                   (c.dc.empty() ? "" : "; made on DC " + c.dc)));
        }
        return {};
    }
    // The newest capture before the change is the password that committed;
    // older ones were refused by AD (history, policy) or replaced.
    std::sort(pending.begin(), pending.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    const auto& newest = pending.back();
    PWSYNC_ASSIGN(Secret pw, w.pending_password(newest.id));
    for (const auto& p : pending)
        PWSYNC_TRY(w.remove_pending_capture(p.id, p.id == newest.id ? "confirmed" : "superseded",
                                            p.id == newest.id ? temporary : std::string()));
    // fan_out marks the mappings the change reached current; the others keep
    // their status (withheld ones were marked; nothing reached the rest:
    // mapping, application or adapter disabled, sync off; a damped change
    // reached them in the fan-out that set the damping marker).
    const Checks checks{state, c.temporary, unknown};
    PWSYNC_TRY(fan_out(w, newest.account, pw, newest.principal, {}, queued, nullptr, &checks));
    PWSYNC_TRY(store::record_dc_change(w, c.dc, true, now(), newest.principal));
    // `pwsync stale list` keeps "since" while any mapping is still behind.
    PWSYNC_ASSIGN(auto mappings, mappings_of(w, account));
    if (std::ranges::any_of(mappings, [](const auto& m) { return m.status == store::MappingStatus::stale; })) return {};
    return store::clear_stale(w, key);
}

Result<Engine::AccountHold> Engine::hold_account(std::string_view account) {
    std::string key = account_key(account);
    {
        PWSYNC_ASSIGN(auto r, store_.read());
        PWSYNC_ASSIGN(auto names, r.account(account));
        if (names && !names->guid.empty()) key = account_key(names->guid);
    }
    // A line of its own (no sender's order to keep), then the account itself.
    auto ticket = account_locks_.arrive("@windows\0" + key);
    account_locks_.hold(ticket, {key});
    PWSYNC_ASSIGN(auto across, store_.lock_keys({key}));
    return AccountHold{std::move(ticket), std::move(across)};
}

Status Engine::before_ad_write(std::string_view account, const Secret& password, std::string_view origin_principal,
                               std::string_view app) {
    if (!app.empty()) {
        auto s = state_of(account, false);
        if (!s && outage(s.error())) return std::unexpected(s.error());
        if (!s)
            return fail(Errc::refused, "pwsync does not set the Active Directory password of " + std::string(account) +
                                           ": the directory cannot tell the account's state: " + s.error().message);
        if (*s) {
            PWSYNC_ASSIGN(auto r, store_.read());
            PWSYNC_ASSIGN(store::App a, r.app(app));
            if (auto why = withhold(&**s, false, a, store::Adapter{}))
                return fail(Errc::refused, "pwsync does not set the Active Directory password of " + std::string(account) +
                                               ": " + why->reason);
        }
    }
    return store_.transact("pwsyncd", [&](store::WriteTxn& w) -> Status {
        std::string origin_adapter;
        if (auto p = w.principal(origin_principal)) origin_adapter = p->adapter;
        PWSYNC_TRY(mark_written(w, account, password.view(), origin_adapter, now() + options_.echo_window));
        // The fan-out already happened when the change was accepted.
        return w.set_marker(store::MarkerKind::damping, canonical(w, account), password.view(),
                            {std::string(origin_principal), now() + options_.damping_window});
    });
}

Result<std::size_t> Engine::expire_pending() {
    std::size_t n = 0;
    PWSYNC_TRY(store_.transact("pwsyncd", [&](store::WriteTxn& w) -> Status {
        n = 0;  // a retried run counts afresh
        PWSYNC_ASSIGN(auto all, w.pending_captures());
        for (const auto& c : all)
            if (c.expires <= now()) {
                // Not sent anywhere: the audit says so, the caller counts it.
                PWSYNC_TRY(w.remove_pending_capture(c.id, "expired",
                                                    "from " + c.principal + ": the directory never confirmed it; not sent"));
                ++n;
            }
        PWSYNC_TRY(w.purge_markers(now()));
        return {};
    }));
    return n;
}

}  // namespace pwsync::gateway
