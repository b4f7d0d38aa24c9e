#include "accounts.h"

#include <algorithm>
#include <span>

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

Result<std::string> note_event(store::Store& store, Ad& ad, const directory::Event& e, AccountEvents* events) {
    if (e.guid.empty()) return ad.account_name(e.sam);
    // Before the store is read: a resolution that reads it afterwards is told.
    if (events) events->note(e.guid);
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

namespace {

// A store error that passes (an outage, a concurrent writer): the pass stops
// and is tried again. Any other stops only the entry that met it.
bool store_outage(const Error& e) {
    return e.code == Errc::unavailable || e.code == Errc::timeout || e.code == Errc::busy;
}

}  // namespace

Result<std::size_t> resolve_unresolved(store::Store& store, const Clock& clock, AccountEvents* events,
                                       const Lookup& lookup, std::set<std::string>& reported,
                                       const std::function<void(std::string_view)>& log, const ResolveGuard& guard) {
    std::vector<store::Mapping> todo;
    {
        PWSYNC_ASSIGN(auto r, store.read());
        PWSYNC_ASSIGN(todo, r.unresolved_mappings());
    }
    const auto id_of = [](const store::MappingKey& k) { return k.app + "/" + k.windows; };
    struct Found {
        store::MappingKey key;
        std::string guid_before;
        store::AccountNames account;
        TimePoint asked;
        std::uint64_t mark;  // the watcher's events before the lookup
    };
    // The accounts found are written a batch at a time: 20,000 mappings
    // imported at once must not cost 20,000 commits (fsyncs) beside the
    // captures. Deferrable: lost to a crash, they are only looked up again.
    std::vector<Found> found;
    std::size_t recorded = 0;
    // Every write is the active gateway's: refused once its lease is gone
    // (`lease_lost` tells that refusal from one entry's).
    bool lease_lost = false;
    const auto transact = [&](const std::function<Status(store::WriteTxn&)>& body, store::Durability d) -> Status {
        std::optional<Fence> right;
        if (guard.fence) {
            right = guard.fence();
            if (!right) {
                lease_lost = true;
                return fail(Errc::refused, "not the active gateway any more: the resolution is left to the new one");
            }
        }
        return store.transact("pwsyncd", [&](store::WriteTxn& w) -> Status {
            if (right) {
                // Refused is the lease's answer; another error here (the
                // unsent writes of the batch it shares) is not, and a retry
                // that passes clears it.
                auto held = w.require_lease(right->instance, right->epoch);
                lease_lost = !held && held.error().code == Errc::refused;
                PWSYNC_TRY(held);
            }
            return body(w);
        }, d);
    };
    const auto write = [&](std::span<const Found> batch) -> Result<std::size_t> {
        std::size_t written = 0;
        PWSYNC_TRY(transact([&](store::WriteTxn& w) -> Status {
            written = 0;
            for (const auto& f : batch) {
                // The watcher saw the account since the question: this
                // answer may be out of date; asked again at the next pass.
                if (events && events->since(f.account.guid, f.mark)) continue;
                PWSYNC_ASSIGN(bool kept, w.record_resolution(f.key, f.guid_before, f.account, f.asked));
                written += kept ? 1 : 0;
            }
            return {};
        }, store::Durability::deferrable));
        for (const auto& f : batch) reported.erase(id_of(f.key));
        return written;
    };
    const auto write_found = [&]() -> Status {
        if (found.empty()) return {};
        auto n = write(found);
        if (!n && (store_outage(n.error()) || lease_lost)) return std::unexpected(n.error());
        if (n) recorded += *n;
        else {
            // One entry the store refuses (a record of a newer release, a
            // name too long for a key) must not keep the others out at every
            // pass: each alone, the refused ones reported once. When every
            // one is refused as the batch was, the trouble is the store's
            // (full): the pass stops there, with one error.
            std::vector<std::pair<const Found*, Error>> refused;
            for (const auto& f : found) {
                auto one = write(std::span(&f, 1));
                if (!one && (store_outage(one.error()) || lease_lost)) return std::unexpected(one.error());
                if (one) recorded += *one;
                else refused.emplace_back(&f, std::move(one).error());
            }
            const bool all_alike = found.size() > 1 && refused.size() == found.size() &&
                                   std::all_of(refused.begin(), refused.end(),
                                               [&](const auto& r) { return r.second.code == n.error().code; });
            if (all_alike) return std::unexpected(n.error());
            for (const auto& [f, e] : refused)
                if (reported.insert(id_of(f->key)).second)
                    log("mapping " + id_of(f->key) + ": its account " + f->account.guid + " cannot be recorded: " + e.message);
        }
        found.clear();
        return {};
    };
    std::set<std::string> done;  // names of the accounts recorded in this pass
    for (const auto& m : todo) {
        const store::MappingKey key{m.app, m.windows};
        const std::string id = id_of(key);
        const std::string name = m.object_guid.empty() ? m.windows : m.object_guid;
        if (done.contains(ascii_lower(name))) continue;  // recorded with an earlier mapping
        if (guard.stopped && guard.stopped()) break;
        // Before the question: what the watcher records after it is newer.
        const TimePoint asked = clock.now();
        const std::uint64_t mark = events ? events->mark() : 0;
        // With no transaction open: the directory may be slow.
        auto a = lookup(name);
        if (!a && a.error().code == Errc::unavailable) {
            PWSYNC_TRY(write_found());  // what was found before the outage stays found
            return std::unexpected(a.error());
        }
        if (!a && a.error().code == Errc::not_found && !m.object_guid.empty()) {
            // Its account was deleted while nobody watched: not for a namesake.
            PWSYNC_TRY(transact([&](store::WriteTxn& w) { return w.forget_account(m.object_guid); }, store::Durability::durable));
            log("mapping " + id + ": its account " + m.object_guid + " is no longer in the directory");
            continue;
        }
        if (!a) {
            if (reported.insert(id).second) log("mapping " + id + " stays unresolved: " + a.error().message);
            continue;
        }
        for (const auto& n : a->names()) done.insert(n);
        found.push_back(Found{key, m.object_guid, std::move(*a), asked, mark});
        if (found.size() == kResolvedPerCommit) PWSYNC_TRY(write_found());
    }
    PWSYNC_TRY(write_found());
    return recorded;
}

}  // namespace pwsync::gateway
