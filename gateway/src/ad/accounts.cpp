#include "accounts.h"

#include <algorithm>

namespace pwsync::gateway {
namespace {

// Does a mapping name this account by one of these names (not resolved yet)?
Result<bool> named_by_a_mapping(const store::ReadTxn& r, const store::AccountNames& a) {
    for (const auto& n : a.names()) {
        PWSYNC_ASSIGN(auto found, r.account_mappings(n));
        if (!found.empty()) return true;
    }
    return false;
}

Status record(store::Store& store, const store::AccountNames& a) {
    return store.transact("pwsyncd", [&](store::WriteTxn& w) -> Status {
        PWSYNC_TRY(w.note_account(a));
        return {};
    });
}

}  // namespace

Result<std::string> note_event(store::Store& store, Ad& ad, const directory::Event& e) {
    if (e.guid.empty()) return ad.account_name(e.sam);
    store::AccountNames seen;
    seen.guid = e.guid;
    seen.sam = e.sam;
    seen.domain = ad.domain().netbios;
    seen.upn = e.upn;
    seen.dn = e.dn;
    seen.sam_alone = !ad.qualified();  // several domains: a bare sam names no one account
    std::optional<store::AccountNames> known;
    bool waiting = false;
    {
        PWSYNC_ASSIGN(auto r, store.read());
        PWSYNC_ASSIGN(known, r.account(e.guid));
        if (e.kind == directory::EventKind::deleted) {
            PWSYNC_ASSIGN(auto mapped, r.account_mappings(e.guid));
            if (!known && mapped.empty()) return ad.account_name(e.sam);
        } else if (!known) {
            PWSYNC_ASSIGN(auto unresolved, r.unresolved_mappings(1));
            waiting = !unresolved.empty();
        }
    }
    if (e.kind == directory::EventKind::deleted) {
        PWSYNC_TRY(store.transact("pwsyncd", [&](store::WriteTxn& w) { return w.forget_account(e.guid); }));
        return known && !known->sam.empty() ? ad.account_name(known->sam) : e.guid;
    }
    if (known) {
        // Incremental results carry only what changed: empty fields keep theirs.
        const auto differs = [](const std::string& now, const std::string& kept) { return !now.empty() && now != kept; };
        if (differs(seen.sam, known->sam) || differs(seen.upn, known->upn) || differs(seen.dn, known->dn) ||
            differs(seen.domain, known->domain))
            PWSYNC_TRY(record(store, seen));
        return ad.account_name(seen.sam.empty() ? known->sam : seen.sam);
    }
    // Not an account the store keeps. Its names are needed when a mapping
    // may name it, or to tell the engine who changed a password.
    if (e.sam.empty() && (waiting || e.kind == directory::EventKind::password_changed)) {
        // The watcher is not inside a DC password change: it may ask.
        if (auto full = ad.lookup(e.guid)) seen = std::move(*full);
    }
    if (waiting) {
        PWSYNC_ASSIGN(auto r, store.read());
        PWSYNC_ASSIGN(bool named, named_by_a_mapping(r, seen));
        if (named) PWSYNC_TRY(record(store, seen));
    }
    return seen.sam.empty() ? e.guid : ad.account_name(seen.sam);
}

Result<std::size_t> resolve_unresolved(store::Store& store, const Lookup& lookup, std::set<std::string>& reported,
                                       const std::function<void(std::string_view)>& log) {
    std::vector<store::Mapping> todo;
    {
        PWSYNC_ASSIGN(auto r, store.read());
        PWSYNC_ASSIGN(todo, r.unresolved_mappings());
    }
    const auto id_of = [](const store::Mapping& m) { return m.app + "/" + m.windows; };
    // The accounts found are written a batch at a time: 20,000 mappings
    // imported at once must not cost 20,000 commits (fsyncs) beside the
    // captures. Deferrable: lost to a crash, they are only looked up again.
    std::vector<std::pair<store::Mapping, store::AccountNames>> found;
    std::size_t recorded = 0, written = 0;
    const auto write_found = [&]() -> Status {
        if (found.empty()) return {};
        PWSYNC_TRY(store.transact("pwsyncd", [&](store::WriteTxn& w) -> Status {
            written = 0;
            for (const auto& [m, a] : found) {
                auto now = w.mapping({m.app, m.windows});
                if (!now && now.error().code == Errc::not_found) continue;  // deleted meanwhile: not kept
                if (!now) return std::unexpected(now.error());
                PWSYNC_TRY(w.note_account(a));
                ++written;
                // Named in a form that is not one of the account's names (an
                // implicit UPN, DNS-domain\sam): resolved by the directory's word.
                if (ascii_lower(now->object_guid) != ascii_lower(a.guid))
                    PWSYNC_TRY(w.set_mapping_guid({m.app, m.windows}, a.guid));
            }
            return {};
        }, store::Durability::deferrable));
        for (const auto& f : found) reported.erase(id_of(f.first));
        recorded += written;
        found.clear();
        return {};
    };
    std::set<std::string> done;  // names of the accounts recorded in this pass
    for (const auto& m : todo) {
        const std::string id = id_of(m);
        const std::string name = m.object_guid.empty() ? m.windows : m.object_guid;
        if (done.contains(ascii_lower(name))) continue;  // recorded with an earlier mapping
        // With no transaction open: the directory may be slow.
        auto a = lookup(name);
        if (!a && a.error().code == Errc::unavailable) {
            PWSYNC_TRY(write_found());  // what was found before the outage stays found
            return std::unexpected(a.error());
        }
        if (!a && a.error().code == Errc::not_found && !m.object_guid.empty()) {
            // Its account was deleted while nobody watched: not for a namesake.
            PWSYNC_TRY(store.transact("pwsyncd", [&](store::WriteTxn& w) { return w.forget_account(m.object_guid); }));
            log("mapping " + id + ": its account " + m.object_guid + " is no longer in the directory");
            continue;
        }
        if (!a) {
            if (reported.insert(id).second) log("mapping " + id + " stays unresolved: " + a.error().message);
            continue;
        }
        for (const auto& n : a->names()) done.insert(n);
        found.emplace_back(m, std::move(*a));
        if (found.size() == kResolvedPerCommit) PWSYNC_TRY(write_found());
    }
    PWSYNC_TRY(write_found());
    return recorded;
}

}  // namespace pwsync::gateway
