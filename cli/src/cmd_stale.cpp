// pwsync stale list|expire|clear: the accounts whose mappings went stale (a
// password change no capture explained), and putting them right.
#include <algorithm>
#include <map>

#include "cli.h"
#include "directory_config.h"
#include "pwsync/dc_health.h"
#include "pwsync/directory.h"

namespace pwsync::cli {
namespace {

namespace dir = pwsync::directory;

// One account behind in one or more applications.
struct StaleAccount {
    std::string key;      // the account's name, lower case: DOMAIN\\sam when known (account_key)
    std::string account;  // as the first mapping names it
    std::string guid;     // the account's objectGUID when a mapping knows it: found again after a rename
    std::vector<store::MappingKey> mappings;
    std::optional<store::StaleInfo> info;
    std::string record_key;  // what pwsyncd's stale record of it is kept under
};

// An account's key: DOMAIN\sam (lower case) when the store knows its
// domain or the name says it, else its sAMAccountName. pwsyncd keys its
// stale records so when it serves several domains, and by sam alone when it
// serves one: stale_key() finds either.
std::string account_key(const store::ReadTxn& r, const store::Mapping& m) {
    for (const auto& n : {m.object_guid, m.windows}) {  // the GUID first: a bare sam may be any domain's
        if (n.empty()) continue;
        if (auto known = r.account(n); known && *known && !(*known)->sam.empty())
            return ascii_lower((*known)->domain.empty() ? (*known)->sam : (*known)->domain + "\\" + (*known)->sam);
    }
    return ascii_lower(m.windows);
}

// The key without DOMAIN\.
std::string bare(const std::string& key) {
    const auto slash = key.find('\\');
    return slash == std::string::npos ? key : key.substr(slash + 1);
}

// The key pwsyncd keeps the account's stale record under.
Result<std::string> stale_key(const store::ReadTxn& r, const std::string& key) {
    PWSYNC_ASSIGN(auto info, store::stale_info(r, key));
    return info || bare(key) == key ? key : bare(key);
}

Result<std::vector<StaleAccount>> stale_accounts(const store::ReadTxn& r) {
    std::map<std::string, StaleAccount> by_key;
    std::vector<store::Mapping> stale;
    PWSYNC_TRY(r.for_each_mapping({}, [&](const store::Mapping& m) {
        if (m.status == store::MappingStatus::stale) stale.push_back(m);
        return true;
    }));
    for (const auto& m : stale) {
        const std::string key = account_key(r, m);
        auto& a = by_key[key];
        if (a.key.empty()) {
            a.key = key;
            a.account = m.windows;
            PWSYNC_ASSIGN(a.record_key, stale_key(r, key));
            PWSYNC_ASSIGN(a.info, store::stale_info(r, a.record_key));
        }
        if (a.guid.empty()) a.guid = m.object_guid;
        a.mappings.push_back({m.app, m.windows});
    }
    std::vector<StaleAccount> out;
    for (auto& [k, a] : by_key) out.push_back(std::move(a));
    return out;
}

std::string unix_text(std::int64_t t) { return t == 0 ? "-" : format_iso8601(TimePoint{std::chrono::seconds(t)}); }

// The stale accounts the command names (all when it names none). A named
// account that is not stale is an error: nothing is done for it.
Result<std::vector<StaleAccount>> chosen(Context& c, const store::ReadTxn& r) {
    PWSYNC_ASSIGN(auto all, stale_accounts(r));
    const auto names = c.opt<std::vector<std::string>>("account").value_or(std::vector<std::string>{});
    if (names.empty()) return all;
    std::vector<StaleAccount> out;
    for (const auto& n : names) {
        store::Mapping probe;
        probe.windows = n;
        const std::string key = account_key(r, probe);
        // DOMAIN\sam and sam name each other when one of them says no domain
        // (a mapping not resolved yet); a bare sam that fits accounts of two
        // domains names neither.
        const auto named = [&](const StaleAccount& a) {
            return a.key == key || (bare(a.key) == bare(key) && (bare(key) == key || bare(a.key) == a.key));
        };
        auto it = std::find_if(all.begin(), all.end(), named);
        if (it == all.end()) return fail(Errc::not_found, n + ": no stale mapping (see pwsync stale list)");
        if (std::count_if(all.begin(), all.end(), named) > 1)
            return fail(Errc::invalid_argument, n + ": stale accounts of several domains have this name: name it DOMAIN\\sam");
        if (std::none_of(out.begin(), out.end(), [&](const auto& a) { return a.key == it->key; })) out.push_back(*it);
    }
    return out;
}

std::string apps_of(const StaleAccount& a) {
    std::string out;
    for (const auto& m : a.mappings) out += (out.empty() ? "" : ",") + m.app;
    return out;
}

Status list(Context& c) {
    PWSYNC_ASSIGN(auto s, c.open_store());
    PWSYNC_ASSIGN(auto r, s.read());
    PWSYNC_ASSIGN(auto all, stale_accounts(r));
    if (c.want_json()) {
        json arr = json::array();
        for (const auto& a : all) {
            json apps = json::array();
            for (const auto& m : a.mappings) apps.push_back(m.app);
            arr.push_back({{"account", a.account}, {"applications", apps},
                           {"since", a.info ? json(unix_text(a.info->since)) : json(nullptr)},
                           {"last_uncaptured", a.info ? json(unix_text(a.info->last)) : json(nullptr)},
                           {"dc", a.info ? json(a.info->dc) : json(nullptr)}});
        }
        c.print_json(arr);
        return {};
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& a : all)
        rows.push_back({a.account, apps_of(a), a.info ? unix_text(a.info->since) : "-", a.info ? a.info->dc : "-"});
    print_table(c.out(), {"ACCOUNT", "APPLICATIONS BEHIND", "SINCE", "DC"}, rows);
    return {};
}

Status expire(Context& c) {
    const bool dry = c.vm().count("dry-run") > 0;
    PWSYNC_ASSIGN(auto s, c.open_store());
    std::vector<StaleAccount> accounts;
    {
        PWSYNC_ASSIGN(auto r, s.read());
        PWSYNC_ASSIGN(accounts, chosen(c, r));
    }
    // Stale without an uncaptured change on record: left out of the
    // mappings on purpose (disabled, privileged: safe scope) or marked by
    // hand. Forcing a domain admin to change password is not this
    // command's job unless the administrator names the account.
    const bool named = !c.opt<std::vector<std::string>>("account").value_or(std::vector<std::string>{}).empty();
    if (!named)
        std::erase_if(accounts, [&](const StaleAccount& a) {
            if (a.info) return false;
            c.out() << a.account << ": skipped: stale, but not from an uncaptured change (a disabled or privileged "
                                    "account, or marked by hand); name it to expire it anyway\n";
            return true;
        });
    if (accounts.empty()) {
        c.out() << "no stale accounts to expire\n";
        return {};
    }
    // The [directory] sections of --config: each account in its own domain.
    PWSYNC_ASSIGN(auto sections, load_directories(config_path(c)));
    Directories dirs(c, std::move(sections));
    std::size_t failed = 0;
    for (const auto& a : accounts) {
        std::string result;
        auto found = dirs.resolve(a.guid.empty() ? a.account : a.guid);
        if (!found) {
            result = "failed: " + found.error().message;
        } else if (dry) {
            result = "would set \"must change password at next logon\" on " + found->account.dn;
        } else {
            auto conn = dirs.connection(found->index);
            auto st = conn ? (*conn)->modify(found->account.dn, {{dir::Mod::replace, "pwdLastSet", {"0"}}})
                           : dir::LdapStatus(std::unexpected(conn.error()));
            result = st ? "must change password at next logon (" + found->account.dn + ")" : "failed: " + st.error().message;
        }
        const bool ok = result.rfind("failed", 0) != 0;
        failed += !ok;
        c.out() << a.account << ": " << result << "\n";
        if (dry) continue;
        // Each account's result in the audit, whatever it was.
        PWSYNC_TRY(s.transact(c.actor(), [&](store::WriteTxn& w) -> Status {
            return w.audit(ok ? "stale.expire" : "stale.expire-failed", a.account,
                           result + "; applications behind: " + apps_of(a));
        }));
    }
    if (failed > 0) return fail(Errc::refused, std::to_string(failed) + " of " + std::to_string(accounts.size()) + " account(s) not expired");
    return {};
}

Status clear(Context& c) {
    const bool all = c.vm().count("all") > 0;
    // Refused before any transaction: clearing everything needs saying so.
    if (!all && c.vm().count("account") == 0) throw UsageError{"name the account(s), or --all"};
    PWSYNC_ASSIGN(auto s, c.open_store());
    std::size_t n = 0;
    PWSYNC_TRY(s.transact(c.actor(), [&](store::WriteTxn& w) -> Status {
        n = 0;  // a retried run counts afresh
        PWSYNC_ASSIGN(auto accounts, chosen(c, w));
        for (const auto& a : accounts) {
            for (const auto& m : a.mappings) PWSYNC_TRY(w.set_mapping_status(m, store::MappingStatus::ok));
            PWSYNC_TRY(store::clear_stale(w, a.record_key));
            PWSYNC_TRY(w.audit("stale.clear", a.account, "put right out of band; in step again: " + apps_of(a)));
            ++n;
        }
        return {};
    }));
    c.out() << n << " account(s) cleared\n";
    return {};
}

void account_args(po::options_description& d, po::positional_options_description& p) {
    d.add_options()("account", po::value<std::vector<std::string>>()->multitoken(), "account(s)");
    p.add("account", -1);
}

}  // namespace

json dc_health_json(const std::vector<store::DcHealth>& dcs, TimePoint now) {
    json arr = json::array();
    for (const auto& d : dcs) {
        const auto day = store::dc_window(d, now);
        arr.push_back({{"dc", d.dc}, {"password_changes", d.captured + d.uncaptured}, {"captured", d.captured},
                       {"uncaptured", d.uncaptured}, {"captured_24h", day.captured}, {"uncaptured_24h", day.uncaptured},
                       {"last_capture", d.last_capture ? json(unix_text(d.last_capture)) : json(nullptr)},
                       {"last_capture_principal", d.last_principal.empty() ? json(nullptr) : json(d.last_principal)},
                       {"last_uncaptured", d.last_uncaptured ? json(unix_text(d.last_uncaptured)) : json(nullptr)},
                       {"verdict", store::dc_verdict_name(store::dc_verdict(d, now))}});
    }
    return arr;
}

void print_dc_health(std::ostream& out, const std::vector<store::DcHealth>& dcs, TimePoint now) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& d : dcs) {
        const auto day = store::dc_window(d, now);
        rows.push_back({d.dc, std::to_string(d.captured + d.uncaptured), std::to_string(d.captured), std::to_string(d.uncaptured),
                        std::to_string(day.uncaptured), unix_text(d.last_capture),
                        store::dc_verdict_name(store::dc_verdict(d, now))});
    }
    print_table(out, {"DC", "CHANGES", "CAPTURED", "UNCAPTURED", "UNCAPTURED 24H", "LAST CAPTURE", "VERDICT"}, rows);
}

void add_stale_commands(std::vector<Command>& out) {
    out.push_back({"stale", "list", "[--json]", "accounts whose mappings are stale: applications behind, since when, from which DC",
                   [](auto& d, auto&) { d.add_options()("json", "print JSON"); }, list});
    out.push_back({"stale", "expire", "[--dry-run] [ACCOUNT...]",
                   "set \"user must change password at next logon\" on stale accounts (all when none named)",
                   [](auto& d, auto& p) {
                       d.add_options()("dry-run", "say what would be done; change nothing");
                       account_args(d, p);
                   },
                   expire});
    out.push_back({"stale", "clear", "ACCOUNT... | --all", "mark stale accounts in step again after an out-of-band fix",
                   [](auto& d, auto& p) {
                       d.add_options()("all", "every stale account");
                       account_args(d, p);
                   },
                   clear});
}

}  // namespace pwsync::cli
