// The store's seam: what a storage backend provides. The records, sealing,
// ESSO rules and audit (the rest of store/src) are written against these
// interfaces only; store/src/lmdb_backend.cpp and store/src/pg_backend.cpp
// implement them. A backend implements Backend and KvTxn and registers a
// BackendType under its URI scheme; nothing else changes.
//
// The model is a set of named tables of (key, value) byte strings, ordered
// by key (bytewise), read and written in transactions:
//  - a read transaction is a consistent snapshot;
//  - a write transaction sees its own writes and commits atomically and
//    durably (or, asked to, deferrably: see KvTxn::commit); a backend that
//    serialises writers optimistically fails the commit with Errc::busy,
//    and Store::transact runs the unit of work again;
//  - sequences hand out increasing identifiers without a row that every
//    writer reads and rewrites (LMDB, with one writer at a time, keeps its
//    historical `next-id` row; PostgreSQL would use a SEQUENCE).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pwsync/store.h"
#include "pwsync/util.h"

namespace pwsync::store {

// A table, by its position in kDatabases.
enum class Table : unsigned {};

// The tables, by role. Adding one: a member here, a row in kDatabases
// (names.cpp), and a migration when older stores lack it.
struct Dbs {
    Table settings{};    // setting name -> value
    Table apps{};        // lower(app) -> App
    Table adapters{};    // lower(adapter) -> AdapterRecord
    Table groups{};      // lower(group) -> Group
    Table mappings{};    // lower(app) \0 lower(windows) -> MappingRecord
    Table map_by_ext{};  // lower(app) \0 lower(external) \0 lower(windows) -> ""
    Table map_by_win{};  // lower(windows) \0 lower(app) -> ""
    Table principals{};  // lower(principal) -> PrincipalRecord
    Table audit{};       // big-endian u64 id (unix microseconds, made unique) -> AuditRecord
    // Schema 2: the gateway.
    Table outbox{};      // job id (u64 BE) -> JobRecord
    Table outbox_by_target{};  // lower(adapter) \0 lower(external) \0 job id -> ""
    Table dead{};        // job id -> DeadRecord
    Table pending{};     // capture id -> PendingRecord
    Table markers{};     // kind byte + HMAC(account \0 password) -> Marker
    Table cursors{};     // name -> opaque bytes (DirSync cookie, ...)
    // Schema 3: directory accounts and their names.
    Table accounts{};       // lower(guid) -> AccountNames
    Table account_names{};  // lower(name form) -> lower(guid)
    Table map_by_guid{};    // lower(guid) \0 lower(app) \0 lower(windows) -> ""
    Table map_unresolved{}; // mapping key -> "": the account is not known yet
    // Schema 4: mapping rules.
    Table rules{};          // lower(rule) -> Rule
};

struct DatabaseDef {
    const char* name;
    Table Dbs::*member;
};
extern const DatabaseDef kDatabases[];
extern const std::size_t kDatabaseCount;
// Every member of Dbs set to its table.
const Dbs& tables();

// Identifier sequences. `ids` numbers jobs and pending captures (one space,
// so a dead letter keeps its job's id).
enum class Sequence { ids };

// The settings row in which LMDB keeps the `ids` sequence. It is the
// backend's, not the store's: a copy into another backend (store migrate)
// skips it and carries the sequence over with last_id() and advance().
inline constexpr std::string_view kLmdbNextIdSetting = "next-id";

// One transaction of a backend. Views returned by get() and passed to
// visitors live until the transaction ends.
class KvTxn {
public:
    using Visitor = std::function<Result<bool>(std::string_view key, std::string_view value)>;
    // Returns the new value of a record, or nullopt to leave it as it is.
    using Rewriter = std::function<Result<std::optional<std::string>>(std::string_view key, std::string_view value)>;

    KvTxn() = default;
    KvTxn(const KvTxn&) = delete;
    KvTxn& operator=(const KvTxn&) = delete;
    virtual ~KvTxn() = default;  // aborts unless committed

    // nullopt when the key is absent.
    virtual Result<std::optional<std::string_view>> get(Table t, std::string_view key) const = 0;
    virtual Status put(Table t, std::string_view key, std::string_view value) = 0;
    // Writes many records (a migration's copy); a backend with a round trip
    // per statement sends them together.
    virtual Status put_many(Table t, const std::vector<std::pair<std::string, std::string>>& rows) {
        for (const auto& [k, v] : rows) PWSYNC_TRY(put(t, k, v));
        return {};
    }
    // Reads these records ahead, for get() to answer from: a backend with a
    // round trip per statement asks for them in one (a hint: the others
    // do nothing). Errors are the reads'.
    virtual Status prefetch(std::span<const std::pair<Table, std::string>> keys) const {
        (void)keys;
        return {};
    }
    // Deleting an absent key is not an error.
    virtual Status del(Table t, std::string_view key) = 0;
    // Visits every entry whose key starts with `prefix`, in key order,
    // starting at `from` when it is not empty; `visit` returns false to stop.
    Status scan(Table t, std::string_view prefix, const Visitor& visit, std::string_view from = {}) const {
        return scan_from(t, prefix, visit, from);
    }
    // Rewrites records in place while walking the whole table.
    virtual Status rewrite(Table t, const Rewriter& each) = 0;
    // The last key of a table, if any.
    virtual Result<std::optional<std::string>> last_key(Table t) const = 0;
    virtual Result<std::size_t> entries(Table t) const = 0;
    // The next identifier of a sequence (write transactions only).
    virtual Result<std::uint64_t> next_id(Sequence seq) = 0;
    // The highest identifier the sequence has handed out (0: none yet).
    virtual Result<std::uint64_t> last_id(Sequence seq) const = 0;
    // Moves the sequence on so that next_id() answers more than `past`
    // (never back; write transactions only).
    virtual Status advance(Sequence seq, std::uint64_t past) = 0;
    // Commits; the transaction ends. durable: on the disk (fsync) before
    // it returns. deferrable: may reach the disk later, only if the commit
    // can be lost only together with the process that made it (a system
    // crash; LMDB) and only with every commit after it. A backend that can
    // lose a commit while the writer lives on (a database server's crash or
    // failover) commits durably.
    Status commit(Durability d = Durability::durable) { return do_commit(d); }
    // False once committed.
    virtual bool active() const = 0;
    // Fails (Errc::refused) unless `instance` holds the lease in `epoch`
    // now (see Store's "several gateways"); one process: always holds it.
    virtual Status check_lease(std::string_view instance, std::uint64_t epoch) const {
        (void)instance, (void)epoch;
        return {};
    }

protected:
    virtual Status scan_from(Table t, std::string_view prefix, const Visitor& visit, std::string_view from) const = 0;
    virtual Status do_commit(Durability d) = 0;
};

// An open store in one backend.
class Backend {
public:
    virtual ~Backend() = default;
    virtual Result<std::unique_ptr<KvTxn>> begin(bool write) = 0;
    // A compact, consistent copy into `dest` (a location of this backend).
    virtual Status backup(const std::string& dest) const = 0;
    // When the store is backed up by its database rather than by backup()
    // (PostgreSQL): how, in a sentence for the administrator; else empty.
    virtual std::string backed_up_by() const { return {}; }
    // What `store info` shows: a folder, a connection name without password.
    virtual std::string location() const = 0;
    // Whether a deferrable commit may reach the disk later here (see
    // KvTxn::commit); when not, Store commits it durably.
    virtual bool defers_commits() const { return false; }
    // Several gateways (Store::heartbeat and the rest). A backend that one
    // process holds at a time keeps these defaults: the lease is always the
    // asker's and nobody else is listed.
    virtual bool shared() const { return false; }
    virtual Result<Lease> heartbeat(const GatewayIdentity& me, std::chrono::milliseconds ttl, bool want,
                                    std::string_view predecessor) {
        (void)me, (void)predecessor;
        return Lease{want, want ? 1u : 0u, want ? ttl : std::chrono::milliseconds{0}, {}, false};
    }
    virtual Status release_lease(const GatewayIdentity& me, std::uint64_t epoch) {
        (void)me, (void)epoch;
        return {};
    }
    virtual Result<std::vector<GatewayStatus>> gateways(std::chrono::seconds within) const {
        (void)within;
        return std::vector<GatewayStatus>{};
    }
    // Store::lock_keys, keys sorted and unique; nullptr: nothing to hold.
    virtual Result<std::unique_ptr<Store::KeyLocks::Held>> lock_keys(const std::vector<std::string>& keys) {
        (void)keys;
        return std::unique_ptr<Store::KeyLocks::Held>{};
    }
};

// A backend type, registered under its URI scheme.
struct BackendType {
    std::string_view scheme;  // "lmdb"
    // The master key's default path for a store at `location`.
    std::string (*default_key_file)(const std::string& location);
    // Succeeds when `location` holds no store yet (already_exists when it
    // does), before anything is written there or to the key file.
    Status (*check_vacant)(const std::string& location);
    // Creates an empty store with every table; already_exists when one is there.
    Result<std::unique_ptr<Backend>> (*create)(const std::string& location);
    // Opens an existing store, creating the tables an older store lacks;
    // not_found when there is none.
    Result<std::unique_ptr<Backend>> (*open)(const std::string& location);
    // Removes a store that create() made and that nothing uses yet (a
    // migration that failed), leaving the location vacant again.
    Status (*discard)(const std::string& location);
};

// Splits "scheme:location"; a string without a known scheme is an LMDB folder.
struct BackendUri {
    const BackendType* type = nullptr;
    std::string location;
};
Result<BackendUri> resolve_backend(std::string_view uri);
// Adds a backend type that is not built in, found by resolve_backend after
// the built-in ones (tests: a backend that injects faults). Call it before
// any store is opened; `type` must outlive every store.
void register_backend_type(const BackendType& type);

extern const BackendType kLmdbBackend;
// PostgreSQL (store/src/pg_backend.cpp), under both of libpq's URI schemes.
extern const BackendType kPostgresqlBackend;
extern const BackendType kPostgresBackend;

}  // namespace pwsync::store
