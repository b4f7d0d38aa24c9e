// Internals shared by the store's source files: the backend and its
// tables, the key ring, and the state behind a transaction handle.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <vector>
#include <mutex>
#include <string>
#include <utility>

#include "backend.h"
#include "crypto.h"
#include "pwsync/store.h"
#include "records.h"

namespace pwsync::store {

// Setting names.
inline constexpr std::string_view kSettingSchema = "schema";
inline constexpr std::string_view kSettingKeyCheck = "keycheck";
inline constexpr std::string_view kKeyCheckText = "pwsync key check";

// The writers waiting for a shared transaction (Store::transact). A
// waiting writer sleeps on its own condition variable and is woken once:
// when its request is written, or when it is handed the lead of the next
// batch. One condition variable for all woke every waiter at every batch;
// with dozens of writers that was a fifth of the core's CPU in futex and
// scheduling. (Not a semaphore: libstdc++'s spins with sched_yield first.)
struct GroupCommit {
    struct Request {
        std::string_view actor;
        const std::function<Status(WriteTxn&)>* body = nullptr;
        Durability durability = Durability::durable;
        // Not answered until the leader sets it: an error with no message
        // (none allocated), which the writer reads as "did not run".
        Status result = std::unexpected(Error{Errc::internal, {}});
        // Its own lock, not the queue's: a finished batch's writers are woken
        // while the next batch runs, and none of them queues for `mutex` to
        // return. The waker holds `m` while it notifies, so the request (on
        // its writer's stack) outlives the notification.
        std::mutex m;
        std::condition_variable wake;
        bool done = false;  // under `m`, as is `lead`
        bool lead = false;  // handed the next batch
    };
    std::mutex mutex;
    std::vector<Request*> queue;
    bool leader = false;  // a thread runs a batch or has been handed the next
    // The leader gathering late writers before its commit (store/src/
    // group_commit.cpp): woken once `queue` holds `want` writers; 0: not
    // gathering. Under `mutex`.
    std::condition_variable gathered;
    std::size_t want = 0;
    // The last commit's units and how long it took (ns). Atomics, written
    // after the commit without taking `mutex` (nothing after a commit may
    // fail), read by the next leader.
    std::atomic<std::size_t> last_units{0};
    std::atomic<std::int64_t> last_commit{0};
};

struct Store::Impl {
    std::string dir;       // the backend's location, for `store info`
    std::string key_file;
    std::unique_ptr<Backend> backend;
    const Dbs& dbs = tables();
    SystemClock system_clock;
    const Clock* clock = nullptr;
    std::function<double()> random;  // empty: prng below
    std::mutex random_mutex;
    std::uint64_t prng = 0;
    double jitter();  // [0, 1)

    GroupCommit group;
    std::atomic<std::uint64_t> commits{0};          // Store::commits()
    std::atomic<std::uint64_t> durable_commits{0};  // Store::durable_commits()
    // Store::writer_time(), in nanoseconds.
    std::atomic<std::uint64_t> writer_batches{0}, writer_units{0}, writer_running{0}, writer_committing{0},
        writer_gathering{0};

    mutable std::mutex key_mutex;
    mutable std::shared_ptr<const crypto::KeyRing> ring;

    std::shared_ptr<const crypto::KeyRing> keys() const;
    // Reads the key file(s) again, e.g. after another process rotated.
    Result<std::shared_ptr<const crypto::KeyRing>> reload_keys(std::uint32_t current) const;
};

struct TxnState {
    Store::Impl* store = nullptr;
    std::unique_ptr<KvTxn> txn;
    bool write = false;
    std::string actor;
    std::shared_ptr<const crypto::KeyRing> ring;
    std::uint64_t last_audit = 0;
    bool in_unit = false;  // a body of Store::transact: the store commits

    KvTxn& kv() const { return *txn; }
    const Dbs& db() const { return store->dbs; }
    TimePoint now() const { return store->clock->now(); }
    // Opens a sealed value, re-reading the key file once if its key is unknown.
    Result<Secret> open_sealed(std::string_view sealed, std::string_view context);
    Result<std::string> seal(std::string_view plaintext, std::string_view context) const;
};

// Loads and decodes one record; not_found with `missing` when it is absent.
template <class Decode>
auto load(const TxnState& s, Table dbi, std::string_view key, Decode decode, const std::string& missing)
    -> decltype(decode(std::string_view{})) {
    auto v = s.kv().get(dbi, key);
    if (!v) return std::unexpected(v.error());
    if (!*v) return fail(Errc::not_found, missing);
    return decode(**v);
}

// Decodes every record of a database (or those under a key prefix).
template <class Decode>
auto load_all(const TxnState& s, Table dbi, Decode decode, std::string_view prefix = {})
    -> Result<std::vector<typename decltype(decode(std::string_view{}))::value_type>> {
    std::vector<typename decltype(decode(std::string_view{}))::value_type> out;
    PWSYNC_TRY(s.kv().scan(dbi, prefix, [&](std::string_view, std::string_view v) -> Result<bool> {
        auto rec = decode(v);
        if (!rec) return std::unexpected(rec.error());
        out.push_back(std::move(*rec));
        return true;
    }));
    return out;
}

// Named quote, not quoted: for a std::string argument ADL would pick std::quoted,
// which libstdc++ 14 declares wherever <chrono> is included (via <iomanip>).
inline std::string quote(std::string_view s) { return "'" + std::string(s) + "'"; }

// Record keys.
std::string app_key(std::string_view app);
std::string mapping_key(std::string_view app, std::string_view windows);
std::string ext_index_key(std::string_view app, std::string_view external, std::string_view windows);
std::string win_index_key(std::string_view windows, std::string_view app);
std::string guid_index_key(std::string_view guid, std::string_view app, std::string_view windows);
std::string audit_key(std::uint64_t id);  // also job, capture and dead-letter ids
std::uint64_t audit_id(std::string_view key);

// A mapping's entries in the objectGUID index and the unresolved list.
Status index_mapping_account(TxnState& s, const Mapping& m);
Status unindex_mapping_account(TxnState& s, const Mapping& m);

// The queued jobs of a mapping that is deleted (`external` null: they are
// dropped, audited) or gets another external id (they follow it): a
// password queued for the old link must not reach an account that is no
// longer, or differently, mapped.
Status settle_mapping_jobs(TxnState& s, WriteTxn& w, const Mapping& m, const std::string* external);

// A mapping's credential: the associated data it is sealed with, and
// storing one sealed already (under the transaction's current key).
std::string credential_context(const MappingKey& k);
Status put_sealed_credential(TxnState& s, WriteTxn& w, const MappingKey& key, std::string sealed);

// Names of apps, adapters, groups, principals, accounts: printable UTF-8.
Status check_name(std::string_view what, std::string_view name);

// Key files.
Result<Secret> read_key_file(const std::string& path);
Status write_key_file(const std::string& path, const crypto::Key& key);
Result<crypto::KeyRing> load_key_ring(const std::string& key_file);
Status fsync_dir_of(const std::string& path);

}  // namespace pwsync::store
