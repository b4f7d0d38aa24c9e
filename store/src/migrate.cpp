// `pwsync store migrate`: the whole store into another location (another
// backend, typically LMDB <-> PostgreSQL), all or nothing, verified record
// by record. The records are copied as bytes: sealed secrets stay sealed
// with the same master key and their associated data (which names the
// table, key and field, never the backend) still matches.
#include <vector>

#include "impl.h"

namespace pwsync::store {
namespace {

using Entry = std::pair<std::string, std::string>;

// Rows that are a backend's, not the store's (compared through last_id).
bool backend_row(Table t, std::string_view key) {
    return t == tables().settings && key == kLmdbNextIdSetting;
}

// Up to `n` of the store's own entries of `t` from `from` on (inclusive).
Status read_chunk(const KvTxn& txn, Table t, const std::string& from, std::size_t n, std::vector<Entry>& out) {
    out.clear();
    return txn.scan(t, "", [&](std::string_view k, std::string_view v) -> Result<bool> {
        if (!backend_row(t, k)) out.emplace_back(std::string(k), std::string(v));
        return out.size() < n;
    }, from);
}

// The target's own entries of `t` from `from` on, up to and including `last`
// (all of them when `last` is nullopt), and at most `n` + 1.
Status read_until(const KvTxn& txn, Table t, const std::string& from, const std::optional<std::string>& last,
                  std::size_t n, std::vector<Entry>& out) {
    out.clear();
    return txn.scan(t, "", [&](std::string_view k, std::string_view v) -> Result<bool> {
        if (last && k > *last) return false;
        if (!backend_row(t, k)) out.emplace_back(std::string(k), std::string(v));
        return out.size() <= n;
    }, from);
}

// Every entry of `t` in the source is in the target with the same value,
// and the target has no other: compared in chunks (both sorted by key).
Result<std::size_t> compare_table(const KvTxn& source, const KvTxn& target, Table t, const char* name) {
    constexpr std::size_t kChunk = 4096;
    std::vector<Entry> a, b;
    std::string from;
    std::size_t count = 0;
    for (;;) {
        PWSYNC_TRY(read_chunk(source, t, from, kChunk, a));
        const std::optional<std::string> last =
            a.size() == kChunk ? std::optional<std::string>(a.back().first) : std::nullopt;
        PWSYNC_TRY(read_until(target, t, from, last, kChunk, b));
        if (a != b) {
            std::size_t i = 0;
            while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
            const std::string what = i < a.size() && i < b.size() && a[i].first == b[i].first ? "differs"
                                     : i < a.size() ? "is missing or out of place"
                                                    : "has an extra record";
            return fail(Errc::corrupt, std::string("the copy does not match the source: table ") + name +
                                           ", record " + std::to_string(count + i + 1) + " " + what);
        }
        count += a.size();
        if (!last) return count;
        from = *last + '\0';  // the first key after it
    }
}

// The highest id the source has handed out: its sequence, and (in case a
// record outran it) the last job, dead letter and capture.
Result<std::uint64_t> highest_id(const KvTxn& txn, const Dbs& d) {
    PWSYNC_ASSIGN(std::uint64_t high, txn.last_id(Sequence::ids));
    for (Table t : {d.outbox, d.dead, d.pending}) {
        PWSYNC_ASSIGN(auto last, txn.last_key(t));
        if (last && last->size() == 8) high = std::max(high, audit_id(*last));
    }
    return high;
}

Status copy_all(const KvTxn& source, KvTxn& target, std::uint64_t last_id) {
    constexpr std::size_t kBatch = 512;  // rows per put_many (PostgreSQL: per round trip)
    std::vector<Entry> batch;
    for (std::size_t i = 0; i < kDatabaseCount; ++i) {
        const Table t = tables().*kDatabases[i].member;
        PWSYNC_TRY(source.scan(t, "", [&](std::string_view k, std::string_view v) -> Result<bool> {
            if (!backend_row(t, k)) batch.emplace_back(std::string(k), std::string(v));
            if (batch.size() == kBatch) {
                PWSYNC_TRY(target.put_many(t, batch));
                batch.clear();
            }
            return true;
        }));
        PWSYNC_TRY(target.put_many(t, batch));
        batch.clear();
    }
    PWSYNC_TRY(target.advance(Sequence::ids, last_id));
    return target.commit();
}

}  // namespace

Result<MigrateReport> Store::migrate(const std::string& target_uri, std::string_view actor) const {
    PWSYNC_ASSIGN(auto uri, resolve_backend(target_uri));
    PWSYNC_TRY(uri.type->check_vacant(uri.location));
    PWSYNC_ASSIGN(auto source, impl_->backend->begin(false));  // one snapshot throughout
    MigrateReport rep;
    PWSYNC_ASSIGN(rep.last_id, highest_id(*source, impl_->dbs));

    PWSYNC_ASSIGN(auto target, uri.type->create(uri.location));
    rep.target = target->location();
    rep.target_key_file = uri.type->default_key_file(uri.location);
    auto copy = [&]() -> Status {
        {
            PWSYNC_ASSIGN(auto w, target->begin(true));
            PWSYNC_TRY(copy_all(*source, *w, rep.last_id));
        }
        PWSYNC_ASSIGN(auto r, target->begin(false));
        for (std::size_t i = 0; i < kDatabaseCount; ++i) {
            PWSYNC_ASSIGN(auto n, compare_table(*source, *r, impl_->dbs.*kDatabases[i].member, kDatabases[i].name));
            rep.tables.emplace_back(kDatabases[i].name, n);
        }
        PWSYNC_ASSIGN(auto next, r->last_id(Sequence::ids));
        if (next < rep.last_id)
            return fail(Errc::corrupt, "the copy's id sequence is behind the source's (" + std::to_string(next) + " < " +
                                           std::to_string(rep.last_id) + ")");
        r.reset();
        target.reset();
        // Opened as a store with this store's key: the schema version and
        // the key check value work there, and the audit says what happened.
        StoreOptions o;
        o.uri = target_uri;
        o.key_file = impl_->key_file;
        o.clock = impl_->clock;
        PWSYNC_ASSIGN(auto copied, Store::open(o));
        std::size_t records = 0;
        for (const auto& [name, n] : rep.tables) records += n;
        return copied.transact(actor, [&](WriteTxn& w) -> Status {
            return w.audit("store.migrate", rep.target,
                           "from " + impl_->dir + ": " + std::to_string(records) + " records verified, sealed with key " +
                               crypto::key_id_hex(impl_->keys()->current));
        });
    };
    if (auto st = copy(); !st) {
        target.reset();
        if (auto gone = uri.type->discard(uri.location); !gone)
            return fail(st.error().code, st.error().message + "; the partial copy could not be removed either (" +
                                             gone.error().message + ")");
        return std::unexpected(st.error());
    }
    return rep;
}

}  // namespace pwsync::store
