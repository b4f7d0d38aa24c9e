// The PostgreSQL backend: the store in a database that several gateways can
// share (and that the database's own replication, backups and monitoring
// look after).
//
// Location: a libpq connection URI, e.g.
//   postgresql://pwsync@db1,db2/pwsync?target_session_attrs=read-write
// (multi-host allowed). No password in it: libpq reads a password file
// (`passfile=`, mode 0600, checked here) or authenticates with a client
// certificate (`sslcert=`, `sslkey=`). TLS verifies the server's
// certificate and name unless the URI says otherwise (sslmode=verify-full by
// default; on a Unix socket host TLS does not apply and libpq ignores it).
//
// Layout: one table per store table, `pwsync_<name> (k bytea primary key,
// v bytea not null)`; bytea orders bytewise, as the store's scans need. The
// schema version and key check are rows of pwsync_settings, as in LMDB. The
// `ids` sequence is the SEQUENCE pwsync_ids: no row every writer rewrites.
//
// Isolation: write transactions are SERIALIZABLE. The ESSO rules are
// read-check-write across tables ("an adapter in use cannot be deleted",
// "an external user is mapped once per application"): under REPEATABLE READ
// two writers could each pass a check the other breaks (write skew), and
// explicit locks would have to name every predicate of every rule.
// SERIALIZABLE catches these by itself; serialization failures (SQLSTATE
// 40001, and 40P01 deadlocks) are answered as Errc::busy so that
// Store::transact runs the unit of work again.
//
// Writers take turns: every write transaction of a store holds a session
// advisory lock (per schema), taken BEFORE its BEGIN so that its snapshot
// starts after the previous writer's commit. Without it two pwsync writers
// always conflict (each appends to the audit table after reading its last
// key, and small tables share one index page), so under load a writer lost
// its conflicts again and again and ran out of attempts. With it a pwsync
// writer never aborts another; SERIALIZABLE still guards against writers
// that do not take the lock (an administrator's SQL). This is LMDB's model
// (one writer at a time) across hosts; group commit makes it cheap.
// Read transactions are REPEATABLE READ READ ONLY: a consistent snapshot
// that never fails that way, and never waits for the writers' lock.
#include <sys/stat.h>

#include <algorithm>
#include <bitset>
#include <charconv>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>

#include "backend.h"
#include "pq.h"

namespace pwsync::store {
namespace {

constexpr std::string_view kTablePrefix = "pwsync_";
constexpr const char* kSequence = "pwsync_ids";
constexpr const char* kKeyFileDefault = "/etc/pwsync/master.key";
// The highest id handed out (a fresh sequence's last_value is its start, not yet called).
constexpr const char* kLastId =
    "SELECT (CASE WHEN is_called THEN last_value ELSE last_value - 1 END)::text FROM pwsync_ids";
// Connections kept open between transactions. A transaction takes an idle
// one or opens one, so the connections in use follow the gateway's own
// concurrency (listener threads, delivery workers). Every one goes back to
// the pool, up to kMaxIdle: closing all but 8 after each use meant a new
// connection, TLS handshake and SCRAM exchange for every other change at
// 32 concurrent writers (the core benchmark: 979 connections for 2,000
// changes, 260 changes/s). When one comes back, those idle for longer than
// kIdleFor are closed, down to kKeepIdle with it.
constexpr std::size_t kMaxIdle = 64;
constexpr std::size_t kKeepIdle = 8;
constexpr std::chrono::seconds kIdleFor{60};
// Rows fetched per round trip by a scan.
constexpr int kScanPage = 512;
// Serialises schema changes between processes (an arbitrary constant).
constexpr const char* kSchemaLock = "SELECT pg_advisory_xact_lock(7079737963)";
// The writers' turn (see above): "pwsy" and the store's schema.
constexpr const char* kWriteLock = "SELECT pg_advisory_lock(1886876537, hashtext(current_schema()))";
constexpr const char* kWriteUnlock = "SELECT pg_advisory_unlock(1886876537, hashtext(current_schema()))";

std::string full_uri(const std::string& location) { return "postgresql:" + location; }

// libpq's complaint about a URI it cannot parse, without the part of the
// URI it quotes (which may be a password): its words up to the first quote
// (libpq's fixed text), the punctuation it looked for when that is what
// the quote holds ("]", "="), and the position when it gives one.
std::string parse_error_kind(std::string_view message) {
    const auto quote = message.find('"');
    std::string kind(message.substr(0, quote));
    while (!kind.empty() && (kind.back() == ' ' || kind.back() == ':' || kind.back() == '\n')) kind.pop_back();
    if (quote != std::string_view::npos && quote + 2 < message.size() && message[quote + 2] == '"' &&
        std::string_view("]=:/@?&").find(message[quote + 1]) != std::string_view::npos)
        kind += std::string(" \"") + message[quote + 1] + '"';
    if (const auto at = message.find(" at position "); at != std::string_view::npos) {
        const auto digits = message.substr(at + 13);
        const auto n = digits.find_first_not_of("0123456789");
        if (n != 0) kind += " at position " + std::string(digits.substr(0, n));
    }
    if (kind.empty()) kind = "libpq cannot parse it";
    return kind + " (the URI is not repeated here: it may hold a password)";
}

// The URI's own settings, checked before any connection: no password, a
// password file only when others cannot read it.
Status check_uri(const std::string& uri) {
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(uri.c_str(), &err);
    if (opts == nullptr) {
        const std::string why = err != nullptr ? parse_error_kind(err) : "out of memory";
        PQfreemem(err);
        return fail(Errc::invalid_argument, "bad PostgreSQL store URI: " + why);
    }
    Status st;
    for (PQconninfoOption* o = opts; o->keyword != nullptr && st; ++o) {
        if (o->val == nullptr || *o->val == '\0') continue;
        const std::string_view key = o->keyword;
        if (key == "password") {
            st = fail(Errc::invalid_argument,
                      "the store URI holds a password: remove it and use a password file (passfile=..., mode 0600) "
                      "or a client certificate (sslcert=..., sslkey=...)");
        } else if (key == "passfile") {
            struct stat s {};
            if (::stat(o->val, &s) != 0)
                st = fail(Errc::not_found, std::string("cannot read the store's password file ") + o->val + ": " +
                                               std::strerror(errno));
            else if ((s.st_mode & 077) != 0)
                st = fail(Errc::permission, std::string("the store's password file ") + o->val +
                                                " is readable by others (chmod 600 it)");
        }
    }
    PQconninfoFree(opts);
    return st;
}

// Connection settings the URI may override.
const std::vector<std::pair<std::string, std::string>>& connect_defaults() {
    static const std::vector<std::pair<std::string, std::string>> d{
        {"sslmode", "verify-full"}, {"connect_timeout", "10"}, {"application_name", "pwsync"},
        // A database that vanished without closing the connection (a host
        // lost, a network cut) is noticed within ~10 s instead of when the
        // kernel gives up (minutes): what the gateway lease's timing needs.
        {"tcp_user_timeout", "10000"}, {"keepalives", "1"}, {"keepalives_idle", "5"},
        {"keepalives_interval", "2"}, {"keepalives_count", "3"}};
    return d;
}

// Several gateways (docs/HA.md): one row holds the lease (its holder is a
// gateway instance, new at every start; its epoch grows at every change of
// holder), one row per gateway name says who is alive. Both are written
// outside the writers' turn, in statements of their own, and every time is
// the database's (clock_timestamp(): the gateways' clocks never compare).
constexpr const char* kLeaseTables[] = {
    "CREATE TABLE IF NOT EXISTS pwsync_lease (id int PRIMARY KEY CHECK (id = 1), holder text NOT NULL, "
    "epoch bigint NOT NULL, since timestamptz NOT NULL, expires timestamptz NOT NULL, "
    "released boolean NOT NULL DEFAULT false, settle boolean NOT NULL DEFAULT false)",
    "CREATE TABLE IF NOT EXISTS pwsync_gateways (name text PRIMARY KEY, instance text NOT NULL, host text NOT NULL, "
    "pid int NOT NULL, started timestamptz NOT NULL, last_contact timestamptz NOT NULL)"};
constexpr const char* kGatewayBeat =
    "INSERT INTO pwsync_gateways AS g (name, instance, host, pid, started, last_contact) "
    "VALUES ($1, $2, $3, $4::text::int, clock_timestamp(), clock_timestamp()) ON CONFLICT (name) DO UPDATE SET "
    "started = CASE WHEN g.instance = EXCLUDED.instance THEN g.started ELSE clock_timestamp() END, "
    "instance = EXCLUDED.instance, host = EXCLUDED.host, pid = EXCLUDED.pid, last_contact = clock_timestamp()";
// Taken when free or expired (a new epoch), kept by its holder (same epoch);
// `settle`: the new term follows one that ended without giving the lease up
// (its deliveries may still be on the wire);
// nothing returned when another holds it; taken at once from $3, a dead
// previous instance of the taker ('' matches no holder). Two takers at once: the second
// waits for the first's row lock and then finds it held.
constexpr const char* kLeaseTake =
    "INSERT INTO pwsync_lease AS l (id, holder, epoch, since, expires) "
    "VALUES (1, $1, 1, clock_timestamp(), clock_timestamp() + $2::text::bigint * interval '1 millisecond') "
    "ON CONFLICT (id) DO UPDATE SET "
    "epoch = CASE WHEN l.holder = EXCLUDED.holder AND l.expires > clock_timestamp() THEN l.epoch ELSE l.epoch + 1 END, "
    "since = CASE WHEN l.holder = EXCLUDED.holder AND l.expires > clock_timestamp() THEN l.since "
    "ELSE clock_timestamp() END, "
    "settle = CASE WHEN l.holder = EXCLUDED.holder AND l.expires > clock_timestamp() THEN l.settle "
    "ELSE NOT l.released END, released = false, holder = EXCLUDED.holder, expires = EXCLUDED.expires "
    "WHERE l.holder = EXCLUDED.holder OR l.expires <= clock_timestamp() OR l.holder = $3 "
    "RETURNING epoch::text, settle::int::text";
constexpr const char* kLeaseHolder =
    "SELECT coalesce(g.name, l.holder) FROM pwsync_lease l LEFT JOIN pwsync_gateways g ON g.instance = l.holder "
    "WHERE l.expires > clock_timestamp()";
// An account's lock across gateways ("pwsz" and the key's hash; a collision
// only makes two accounts wait for each other).
constexpr const char* kKeyLock = "SELECT pg_advisory_lock(1886876538, hashtext($1))";
constexpr const char* kLeaseRelease =
    "UPDATE pwsync_lease SET expires = clock_timestamp(), released = true WHERE holder = $1 AND epoch = $2::text::bigint "
    "AND expires > clock_timestamp()";
constexpr const char* kGatewayList =
    "SELECT g.name, g.host, g.instance, g.pid::text, extract(epoch FROM g.started)::bigint::text, "
    "extract(epoch FROM g.last_contact)::bigint::text, "
    "(extract(epoch FROM clock_timestamp() - g.last_contact) * 1000)::bigint::text, (l.holder IS NOT NULL)::int::text, "
    "coalesce(extract(epoch FROM l.since)::bigint, 0)::text, coalesce(l.epoch, 0)::text "
    "FROM pwsync_gateways g LEFT JOIN pwsync_lease l ON l.holder = g.instance AND l.expires > clock_timestamp() "
    "WHERE g.last_contact > clock_timestamp() - $1::text::bigint * interval '1 second' ORDER BY g.last_contact DESC";

// A wait for a lock (the writers' turn included) ends after lock_timeout
// with Errc::busy, a statement running past statement_timeout with
// Errc::timeout: a stuck session gives a clear, retryable error instead of
// a hang. And the server notices a gateway that vanished without closing
// its connection (its host lost, a network cut) within ~10 s, as the
// gateway notices the server (connect_defaults): else a session cut while
// it held the writers' turn keeps that lock until the server's kernel gives
// up on the connection (up to two hours idle), and no other gateway can
// write meanwhile (found by ha_partition). Only where the URI
// (options=-c...), the role, the database or the server's configuration
// set none; the values are documented in docs/ARCHITECTURE.md.
constexpr const char* kSessionTimeouts =
    "SELECT CASE WHEN current_setting('lock_timeout') = '0' THEN set_config('lock_timeout', '30s', false) END, "
    "CASE WHEN current_setting('statement_timeout') = '0' THEN set_config('statement_timeout', '60s', false) END, "
    "(SELECT count(set_config(name, v, false)) FROM pg_settings JOIN (VALUES ('tcp_keepalives_idle', '5'), "
    "('tcp_keepalives_interval', '2'), ('tcp_keepalives_count', '3'), ('tcp_user_timeout', '10000')) AS d(n, v) "
    "ON name = n WHERE source = 'default')";

Result<pq::Conn> connect_session(const std::string& uri) {
    PWSYNC_ASSIGN(auto c, pq::connect(uri, connect_defaults()));
    PWSYNC_TRY(pq::run(c.get(), kSessionTimeouts, "cannot set the session's timeouts"));
    return c;
}

// The statements of one table: fixed text, built from the table's name in
// kDatabases (never from a value); every value is a parameter. Each is a
// prepared statement of its own, prepared on a connection the first time
// it is used there (parsed and planned once, not at every use).
struct Query {
    std::string text, name;
    unsigned id = 0;  // its bit in Session::prepared
};
struct TableSql {
    Query get, put, del, last, count;
    // Scans: from a key (>=) or after one (>), up to an end key or open.
    Query scan[2][2];
};
constexpr std::size_t kQueriesPerTable = 9;
constexpr std::size_t kMaxQueries = 512;

std::vector<TableSql> make_sql() {
    static_assert(kQueriesPerTable * 32 <= kMaxQueries);
    std::vector<TableSql> out;
    unsigned id = 0;
    auto q = [&id](std::string text) {
        Query r{std::move(text), "pwsync_q" + std::to_string(id), id};
        ++id;
        return r;
    };
    for (std::size_t i = 0; i < kDatabaseCount; ++i) {
        const std::string t = std::string(kTablePrefix) + kDatabases[i].name;
        TableSql s;
        s.get = q("SELECT v FROM " + t + " WHERE k = $1");
        s.put = q("INSERT INTO " + t + " (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v");
        s.del = q("DELETE FROM " + t + " WHERE k = $1");
        s.last = q("SELECT k FROM " + t + " ORDER BY k DESC LIMIT 1");
        s.count = q("SELECT count(*)::text FROM " + t);
        const std::string limit = " ORDER BY k LIMIT " + std::to_string(kScanPage);
        for (int after = 0; after < 2; ++after)
            for (int bounded = 0; bounded < 2; ++bounded)
                s.scan[after][bounded] = q("SELECT k, v FROM " + t + " WHERE k " + (after ? ">" : ">=") + " $1" +
                                           (bounded ? " AND k < $2" : "") + limit);
        out.push_back(std::move(s));
    }
    return out;
}

// The id sequence's next value.
// A block of ids (PgTxn::next_id): the sequence moved on by kIdBlock, its
// last one answered.
constexpr std::uint64_t kIdBlock = 64;
const Query kNextIds{"SELECT setval('pwsync_ids', nextval('pwsync_ids') + " + std::to_string(kIdBlock - 1) + ")::text",
                     "pwsync_qnextblock", kMaxQueries - 1};
// Fencing (KvTxn::check_lease): the lease as this transaction finds it now.
const Query kLeaseCheck{"SELECT 1 FROM pwsync_lease WHERE holder = $1 AND epoch = $2::text::bigint "
                        "AND expires > clock_timestamp()",
                        "pwsync_qlease", kMaxQueries - 2};

const TableSql& sql(Table t) {
    static const std::vector<TableSql> all = make_sql();
    return all[static_cast<unsigned>(t)];
}

// The first key after every key that starts with `prefix`; nullopt when
// there is none (empty, or all 0xff).
std::optional<std::string> prefix_end(std::string_view prefix) {
    std::string end(prefix);
    while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
    if (end.empty()) return std::nullopt;
    end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
    return end;
}

Result<std::uint64_t> as_u64(std::string_view text, std::string_view what) {
    std::uint64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || end != text.data() + text.size())
        return fail(Errc::corrupt, "PostgreSQL answered '" + std::string(text) + "' for " + std::string(what));
    return n;
}

Result<bool> table_exists(PGconn* c, std::string_view table) {
    PWSYNC_ASSIGN(auto r, pq::exec(c, "SELECT (to_regclass($1) IS NOT NULL)::int::text", {table},
                                   "cannot look for the store's tables"));
    return pq::value(r.get(), 0, 0) == "1";
}

Result<bool> all_tables_exist(PGconn* c) {
    for (std::size_t i = 0; i < kDatabaseCount; ++i) {
        PWSYNC_ASSIGN(bool there, table_exists(c, std::string(kTablePrefix) + kDatabases[i].name));
        if (!there) return false;
    }
    PWSYNC_ASSIGN(bool lease, table_exists(c, "pwsync_lease"));
    PWSYNC_ASSIGN(bool gateways, table_exists(c, "pwsync_gateways"));
    if (!lease || !gateways) return false;
    return table_exists(c, kSequence);
}

// Creates what is missing, in one transaction, under the schema lock.
Status create_schema(PGconn* c, bool must_be_new, const std::string& uri) {
    PWSYNC_TRY(pq::run(c, "BEGIN", "cannot begin creating the store"));
    auto body = [&]() -> Status {
        PWSYNC_TRY(pq::run(c, kSchemaLock, "cannot lock the store's schema"));
        PWSYNC_ASSIGN(bool there, table_exists(c, std::string(kTablePrefix) + "settings"));
        if (there && must_be_new) return fail(Errc::already_exists, "a store already exists in " + uri);
        for (std::size_t i = 0; i < kDatabaseCount; ++i) {
            const std::string ddl = "CREATE TABLE IF NOT EXISTS " + std::string(kTablePrefix) + kDatabases[i].name +
                                    " (k bytea PRIMARY KEY, v bytea NOT NULL)";
            PWSYNC_TRY(pq::run(c, ddl.c_str(), std::string("cannot create table ") + kDatabases[i].name));
        }
        PWSYNC_TRY(pq::run(c, (std::string("CREATE SEQUENCE IF NOT EXISTS ") + kSequence).c_str(),
                           "cannot create the id sequence"));
        for (const char* ddl : kLeaseTables) PWSYNC_TRY(pq::run(c, ddl, "cannot create the gateways' lease tables"));
        PWSYNC_ASSIGN(auto done, pq::exec(c, "COMMIT", {}, "cannot commit the store's schema"));
        if (std::string_view(PQcmdStatus(done.get())) != "COMMIT")
            return fail(Errc::storage, "the store's schema was rolled back");
        return {};
    };
    Status st = body();
    if (!st && PQtransactionStatus(c) != PQTRANS_IDLE) (void)pq::run(c, "ROLLBACK", "rollback");
    return st;
}

class PgBackend;

// The connection of a transaction and every result whose values it handed
// out (views live until the transaction ends). Nested transactions share it.
struct Session {
    PgBackend* owner = nullptr;
    pq::Conn conn;
    std::bitset<kMaxQueries> prepared;  // the queries prepared on conn
    std::vector<pq::ResultPtr> kept;
};

// A connection waiting in the pool, and what is prepared on it.
struct Idle {
    pq::Conn conn;
    std::bitset<kMaxQueries> prepared;
    std::chrono::steady_clock::time_point since{};  // back in the pool
};

class PgBackend final : public Backend {
public:
    explicit PgBackend(std::string uri) : uri_(std::move(uri)) {}

    Result<Idle> acquire(bool& pooled) {
        {
            std::lock_guard lock(mutex_);
            if (!idle_.empty()) {
                Idle c = std::move(idle_.back());
                idle_.pop_back();
                pooled = true;
                return c;
            }
        }
        pooled = false;
        PWSYNC_ASSIGN(auto c, connect_session(uri_));
        return Idle{std::move(c), {}};
    }
    // Keeps a healthy connection for the next transaction.
    void release(pq::Conn c, std::bitset<kMaxQueries> prepared = {}) {
        if (!c || PQstatus(c.get()) != CONNECTION_OK || PQtransactionStatus(c.get()) != PQTRANS_IDLE ||
            pq::in_pipeline(c.get()))
            return;
        const auto now = std::chrono::steady_clock::now();
        std::vector<Idle> closing;  // closed outside the lock
        {
            std::lock_guard lock(mutex_);
            // The least recently used are at the front (acquire takes the back).
            while (idle_.size() >= kKeepIdle && now - idle_.front().since > kIdleFor) {
                closing.push_back(std::move(idle_.front()));
                idle_.erase(idle_.begin());
            }
            if (idle_.size() < kMaxIdle) idle_.push_back(Idle{std::move(c), prepared, now});
        }
    }

    // Closes every idle connection: one was found dead (the database
    // restarted or failed over), so the others are too, and a retry must
    // open a fresh one rather than take the next dead one.
    void drop_idle() {
        std::vector<Idle> closing;  // closed outside the lock
        std::lock_guard lock(mutex_);
        closing.swap(idle_);
    }

    Result<std::unique_ptr<KvTxn>> begin(bool write) override;
    Status backup(const std::string&) const override {
        return fail(Errc::invalid_argument,
                    "a PostgreSQL store is backed up by the database: use pg_dump or base backups (pg_basebackup), "
                    "and keep the master key apart from them");
    }
    std::string backed_up_by() const override {
        return "a PostgreSQL store is backed up by the database: pg_dump of its schema, or base backups "
               "(pg_basebackup) with WAL archiving; the master key file is not in the database and must be "
               "backed up apart from it";
    }
    std::string location() const override { return uri_; }

    bool shared() const override { return true; }
    Result<Lease> heartbeat(const GatewayIdentity& me, std::chrono::milliseconds ttl, bool want,
                            std::string_view predecessor) override {
        return with_connection([&](PGconn* c) -> Result<Lease> {
            std::vector<pq::Statement> batch;
            batch.push_back({kGatewayBeat, {me.name, me.instance, me.host, std::to_string(me.pid)},
                             "cannot report this gateway to the store"});
            if (want)
                batch.push_back({kLeaseTake, {me.instance, std::to_string(ttl.count()), std::string(predecessor)},
                                 "cannot take the lease"});
            batch.push_back({kLeaseHolder, {}, "cannot read the lease"});
            auto answers = pq::exec_batch(c, batch);
            for (auto& a : answers)
                if (!a) return std::unexpected(a.error());
            Lease l;
            if (want && PQntuples(answers[1]->get()) == 1) {
                PWSYNC_ASSIGN(l.epoch, as_u64(pq::value(answers[1]->get(), 0, 0), "the lease's epoch"));
                l.settle = pq::value(answers[1]->get(), 0, 1) == "1";
                l.held = true;
                l.valid_for = ttl;
            } else if (PQntuples(answers.back()->get()) == 1) {
                l.holder = std::string(pq::value(answers.back()->get(), 0, 0));
            }
            return l;
        });
    }
    Status release_lease(const GatewayIdentity& me, std::uint64_t epoch) override {
        return with_connection([&](PGconn* c) -> Status {
            PWSYNC_ASSIGN(auto r, pq::exec(c, kLeaseRelease, {me.instance, std::to_string(epoch)},
                                           "cannot give the lease up"));
            return {};
        });
    }
    Result<std::vector<GatewayStatus>> gateways(std::chrono::seconds within) const override {
        return const_cast<PgBackend*>(this)->with_connection([&](PGconn* c) -> Result<std::vector<GatewayStatus>> {
            PWSYNC_ASSIGN(auto r, pq::exec(c, kGatewayList, {std::to_string(within.count())},
                                           "cannot list the gateways"));
            std::vector<GatewayStatus> out;
            const auto num = [&](int row, int col, const char* what) {
                return as_u64(pq::value(r.get(), row, col), what);
            };
            for (int i = 0; i < PQntuples(r.get()); ++i) {
                GatewayStatus g;
                g.name = std::string(pq::value(r.get(), i, 0));
                g.host = std::string(pq::value(r.get(), i, 1));
                g.instance = std::string(pq::value(r.get(), i, 2));
                PWSYNC_ASSIGN(auto pid, num(i, 3, "a gateway's pid"));
                PWSYNC_ASSIGN(auto started, num(i, 4, "a gateway's start"));
                PWSYNC_ASSIGN(auto contact, num(i, 5, "a gateway's last contact"));
                PWSYNC_ASSIGN(auto age, num(i, 6, "a gateway's contact age"));
                PWSYNC_ASSIGN(auto active, num(i, 7, "a gateway's role"));
                PWSYNC_ASSIGN(auto since, num(i, 8, "a gateway's term"));
                PWSYNC_ASSIGN(g.epoch, num(i, 9, "a gateway's epoch"));
                g.pid = static_cast<std::uint32_t>(pid);
                g.started = static_cast<std::int64_t>(started);
                g.last_contact = static_cast<std::int64_t>(contact);
                g.contact_age_ms = static_cast<std::int64_t>(age);
                g.active = active == 1;
                g.active_since = static_cast<std::int64_t>(since);
                out.push_back(std::move(g));
            }
            return out;
        });
    }

    // Session advisory locks on a connection of their own, in key order,
    // all asked in one round trip; released together with the connection.
    Result<std::unique_ptr<Store::KeyLocks::Held>> lock_keys(const std::vector<std::string>& keys) override {
        if (keys.empty()) return std::unique_ptr<Store::KeyLocks::Held>{};
        bool pooled = false;
        PWSYNC_ASSIGN(auto idle, acquire(pooled));
        std::vector<pq::Statement> batch;
        for (const auto& k : keys) batch.push_back({kKeyLock, {k}, "cannot lock an account for the other gateways"});
        auto answers = pq::exec_batch(idle.conn.get(), batch);
        for (auto& a : answers) {
            if (a) continue;
            // Whatever was taken goes with the connection.
            (void)pq::run(idle.conn.get(), "SELECT pg_advisory_unlock_all()", "unlock");
            release(std::move(idle.conn), idle.prepared);
            return std::unexpected(a.error());
        }
        struct Held final : Store::KeyLocks::Held {
            PgBackend* owner;
            Idle idle;
            Held(PgBackend* o, Idle i) : owner(o), idle(std::move(i)) {}
            ~Held() override {
                if (pq::run(idle.conn.get(), "SELECT pg_advisory_unlock_all()", "unlock"))
                    owner->release(std::move(idle.conn), idle.prepared);
                // else the connection closes, and the server drops its locks.
            }
        };
        return std::unique_ptr<Store::KeyLocks::Held>(std::make_unique<Held>(this, std::move(idle)));
    }

private:
    // Runs `fn` on a pooled connection; a pooled connection found dead (the
    // database restarted or failed over) is replaced once by a fresh one.
    template <class Fn>
    auto with_connection(Fn fn) -> decltype(fn(static_cast<PGconn*>(nullptr))) {
        for (int attempt = 0;; ++attempt) {
            bool pooled = false;
            PWSYNC_ASSIGN(auto idle, acquire(pooled));
            auto r = fn(idle.conn.get());
            const bool retry = !r && pooled && attempt == 0 && r.error().code == Errc::unavailable;
            release(std::move(idle.conn), idle.prepared);
            if (!retry) return r;
            drop_idle();
        }
    }

    std::string uri_;
    std::mutex mutex_;
    std::vector<Idle> idle_;
};

// Round trips are what a transaction costs here (each statement waits for
// the server), and a write transaction holds the writers' turn: so a write
// is sent with the next statement that needs an answer (a read, the
// COMMIT), a record read twice is asked once, and the writers' lock travels
// with BEGIN and its release with COMMIT.
class PgTxn final : public KvTxn {
public:
    // A top-level transaction on its own connection.
    PgTxn(std::unique_ptr<Session> s, bool write) : own_(std::move(s)), s_(own_.get()), write_(write) {}

    ~PgTxn() override {
        if (active_) {
            (void)pq::run(s_->conn.get(), "ROLLBACK", "rollback");
        }
        if (own_ && write_ && locked_ && PQstatus(own_->conn.get()) == CONNECTION_OK)
            (void)pq::run(own_->conn.get(), kWriteUnlock, "cannot end the writer's turn");
        if (own_) {
            own_->kept.clear();
            own_->owner->release(std::move(own_->conn), own_->prepared);
        }
    }

    Result<std::optional<std::string_view>> get(Table t, std::string_view key) const override {
        MemoKey mk{static_cast<unsigned>(t), std::string(key)};
        if (auto it = memo_.find(mk); it != memo_.end()) return it->second;
        PWSYNC_ASSIGN(auto r, ask(sql(t).get, {key}, "cannot read from the store"));
        return remember(std::move(mk), std::move(r));
    }
    Status prefetch(std::span<const std::pair<Table, std::string>> keys) const override {
        std::vector<MemoKey> want;
        for (const auto& [t, k] : keys) {
            MemoKey mk{static_cast<unsigned>(t), k};
            if (!memo_.contains(mk)) want.push_back(std::move(mk));
        }
        std::ranges::sort(want);
        want.erase(std::unique(want.begin(), want.end()), want.end());
        if (want.size() < 2) return {};  // get() takes one round trip for one record anyway
        // Each round trip: the deferred writes (fewer than kMaxDeferred),
        // then up to kMaxDeferred reads.
        for (std::size_t at = 0; at < want.size(); at += kMaxDeferred) {
            const std::size_t n = std::min(kMaxDeferred, want.size() - at);
            auto batch = std::move(pending_);
            pending_.clear();
            const std::size_t first = batch.size();
            for (std::size_t i = at; i < at + n; ++i)
                batch.push_back(statement(sql(static_cast<Table>(want[i].first)).get, {want[i].second},
                                          "cannot read from the store"));
            auto answers = send(batch);
            for (auto& a : answers)
                if (!a) return std::unexpected(a.error());
            for (std::size_t i = 0; i < n; ++i) remember(std::move(want[at + i]), std::move(*answers[first + i]));
        }
        return {};
    }
    Status put(Table t, std::string_view key, std::string_view value) override {
        return defer(t, key, statement(sql(t).put, {std::string(key), std::string(value)}, "cannot write to the store"));
    }
    Status put_many(Table t, const std::vector<std::pair<std::string, std::string>>& rows) override {
        for (const auto& [k, v] : rows) PWSYNC_TRY(put(t, k, v));
        return flush();
    }
    Status del(Table t, std::string_view key) override {
        return defer(t, key, statement(sql(t).del, {std::string(key)}, "cannot delete from the store"));
    }
    Status rewrite(Table t, const Rewriter& each) override {
        return scan_from(t, "", [&](std::string_view k, std::string_view v) -> Result<bool> {
            PWSYNC_ASSIGN(auto changed, each(k, v));
            if (changed) PWSYNC_TRY(put(t, k, *changed));
            return true;
        }, {});
    }
    Result<std::optional<std::string>> last_key(Table t) const override {
        PWSYNC_ASSIGN(auto r, ask(sql(t).last, {}, "cannot read from the store"));
        if (PQntuples(r.get()) == 0) return std::optional<std::string>{};
        return std::optional<std::string>{std::string(pq::value(r.get(), 0, 0))};
    }
    Result<std::size_t> entries(Table t) const override {
        PWSYNC_ASSIGN(auto r, ask(sql(t).count, {}, "cannot count the store's records"));
        PWSYNC_ASSIGN(auto n, as_u64(pq::value(r.get(), 0, 0), "a count"));
        return static_cast<std::size_t>(n);
    }
    // Ids are drawn kIdBlock at a time, one round trip for a batch of
    // changes instead of one per job. Only write transactions draw them,
    // and they hold the writers' turn, so the ids stay in the order the
    // transactions commit; an unused rest of a block is a gap, as a
    // rolled-back nextval leaves.
    Result<std::uint64_t> next_id(Sequence) override {
        if (!write_) return fail(Errc::internal, "an identifier was asked for in a read transaction");
        if (ids_next_ == ids_end_) {
            PWSYNC_ASSIGN(auto r, ask(kNextIds, {}, "cannot draw an id"));
            PWSYNC_ASSIGN(const std::uint64_t last, as_u64(pq::value(r.get(), 0, 0), "the next id"));
            ids_next_ = last - (kIdBlock - 1);
            ids_end_ = last + 1;
        }
        return ids_next_++;
    }
    Result<std::uint64_t> last_id(Sequence) const override {
        PWSYNC_ASSIGN(auto r, pq::exec(conn(), kLastId, {}, "cannot read the id sequence"));
        return as_u64(pq::value(r.get(), 0, 0), "the last id");
    }
    // setval is not transactional: only a migration's fresh store (which
    // is discarded if its transaction fails) moves it.
    Status advance(Sequence seq, std::uint64_t past) override {
        if (!write_) return fail(Errc::internal, "a sequence was moved in a read transaction");
        ids_next_ = ids_end_;  // the rest of a block drawn before may not be above `past`
        PWSYNC_ASSIGN(auto last, last_id(seq));
        if (last >= past) return {};
        const std::string n = std::to_string(past);
        PWSYNC_ASSIGN(auto r, pq::exec(conn(), "SELECT setval('pwsync_ids', $1::text::bigint)::text", {n},
                                       "cannot move the id sequence"));
        return {};
    }
    // Every commit is durable (defers_commits() is false): the database can
    // lose an unflushed commit (its crash, a failover) while pwsyncd lives
    // on and acts on it. `synchronous_commit = off` for the dispatcher's
    // pass lost a supersede in a failover after the newer job had been
    // sent, and the older one went out after it (tests/integration/
    // ha_test.sh failover; docs/ARCHITECTURE.md, "Deferrable commits").
    Status do_commit(Durability) override {
        if (!active_) return fail(Errc::internal, "commit of a finished transaction");
        active_ = false;
        auto batch = std::move(pending_);
        pending_.clear();
        const std::size_t writes = batch.size();
        batch.push_back({"COMMIT", {}, "cannot commit to the store"});
        if (write_) batch.push_back({kWriteUnlock, {}, "cannot end the writer's turn"});
        auto answers = send(batch);
        if (write_ && answers.back()) locked_ = false;
        for (std::size_t i = 0; i <= writes; ++i) {
            if (answers[i]) continue;
            // Lost with the COMMIT sent: it may or may not have committed.
            // Not retryable (the unit of work could be applied twice).
            if (answers[i].error().code == Errc::unavailable)
                return fail(Errc::storage, "the connection to PostgreSQL was lost during COMMIT: the transaction may "
                                           "or may not have been committed (" + answers[i].error().message + ")");
            // A write that failed: the COMMIT answered ROLLBACK.
            return std::unexpected(answers[i].error());
        }
        // A transaction that had failed answers COMMIT with ROLLBACK.
        if (std::string_view(PQcmdStatus(answers[writes]->get())) != "COMMIT")
            return fail(Errc::storage, "PostgreSQL rolled the transaction back instead of committing it");
        return {};
    }
    bool active() const override { return active_; }
    Status check_lease(std::string_view instance, std::uint64_t epoch) const override {
        const std::string e = std::to_string(epoch);
        PWSYNC_ASSIGN(auto r, ask(kLeaseCheck, {instance, e}, "cannot check the lease"));
        if (PQntuples(r.get()) != 1)
            return fail(Errc::refused, "this gateway no longer holds the lease (epoch " + e +
                                           "): another gateway is the active one");
        return {};
    }

protected:
    Status scan_from(Table t, std::string_view prefix, const Visitor& visit, std::string_view from) const override {
        const auto end = prefix_end(prefix);
        std::string start(from.empty() ? prefix : from);
        bool after = false;
        for (;;) {
            std::vector<std::string_view> params{start};
            if (end) params.push_back(*end);
            PWSYNC_ASSIGN(auto r, ask(sql(t).scan[after][end ? 1 : 0], params, "cannot iterate over the store"));
            const int rows = PQntuples(r.get());
            const PGresult* res = r.get();
            if (rows > 0) keep(std::move(r), 0, 0);
            for (int i = 0; i < rows; ++i) {
                const auto k = pq::value(res, i, 0);
                if (!k.starts_with(prefix)) return {};
                PWSYNC_ASSIGN(bool more, visit(k, pq::value(res, i, 1)));
                if (!more) return {};
            }
            if (rows < kScanPage) return {};
            start = std::string(pq::value(res, rows - 1, 0));
            after = true;
        }
    }

private:
    friend class PgBackend;
    using MemoKey = std::pair<unsigned, std::string>;
    // Writes waiting for the next round trip; at most this many (a batch is
    // sent at once, and the server's answers must not fill the socket).
    static constexpr std::size_t kMaxDeferred = 256;

    PGconn* conn() const { return s_->conn.get(); }
    // Keeps `r` until the transaction ends; returns one of its values.
    std::string_view keep(pq::ResultPtr r, int row, int col) const {
        const auto v = pq::value(r.get(), row, col);
        s_->kept.push_back(std::move(r));
        return v;
    }
    // A record's answer (no row: absent) kept for the rest of the
    // transaction, and returned.
    std::optional<std::string_view> remember(MemoKey mk, pq::ResultPtr r) const {
        std::optional<std::string_view> v;
        if (PQntuples(r.get()) != 0) v = keep(std::move(r), 0, 0);
        memo_.emplace(std::move(mk), v);
        return v;
    }
    // A statement of `q`, prepared first if this connection has not yet.
    pq::Statement statement(const Query& q, std::vector<std::string> params, std::string_view what) const {
        return {q.text.c_str(), std::move(params), what, q.name.c_str(), !s_->prepared.test(q.id), q.id};
    }
    // Sends a batch and notes what got prepared on the connection (a query
    // twice in one batch is prepared by the first).
    std::vector<Result<pq::ResultPtr>> send(std::vector<pq::Statement>& batch) const {
        std::bitset<kMaxQueries> asked;
        for (auto& st : batch) {
            if (!st.prepare) continue;
            if (asked.test(st.tag)) st.prepare = false;
            asked.set(st.tag);
        }
        std::vector<bool> ready;
        auto answers = pq::exec_batch(conn(), batch, &ready);
        for (std::size_t i = 0; i < batch.size(); ++i)
            if (batch[i].prepare && ready[i]) s_->prepared.set(batch[i].tag);
        return answers;
    }
    // A statement whose answer is needed now, sent after the deferred writes.
    Result<pq::ResultPtr> ask(const Query& q, const std::vector<std::string_view>& params, std::string_view what) const {
        auto batch = std::move(pending_);
        pending_.clear();
        batch.push_back(statement(q, {params.begin(), params.end()}, what));
        auto answers = send(batch);
        for (auto& a : answers)
            if (!a) return std::unexpected(a.error());
        return std::move(answers.back());
    }
    Status flush() const {
        if (pending_.empty()) return {};
        auto batch = std::move(pending_);
        pending_.clear();
        for (auto& a : send(batch))
            if (!a) return std::unexpected(a.error());
        return {};
    }
    // A write, sent later; the record is read again from the server.
    Status defer(Table t, std::string_view key, pq::Statement st) {
        memo_.erase(MemoKey{static_cast<unsigned>(t), std::string(key)});
        pending_.push_back(std::move(st));
        if (pending_.size() >= kMaxDeferred) return flush();
        return {};
    }

    std::unique_ptr<Session> own_;
    Session* s_;
    bool write_;
    bool active_ = true;
    bool locked_ = true;  // holds the writers' turn (write transactions)
    std::uint64_t ids_next_ = 0, ids_end_ = 0;  // the rest of the block drawn (next_id)
    mutable std::vector<pq::Statement> pending_;
    mutable std::map<MemoKey, std::optional<std::string_view>> memo_;
};

Result<std::unique_ptr<KvTxn>> PgBackend::begin(bool write) {
    const char* begin_sql =
        write ? "BEGIN ISOLATION LEVEL SERIALIZABLE" : "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
    for (int attempt = 0;; ++attempt) {
        bool pooled = false;
        PWSYNC_ASSIGN(auto idle, acquire(pooled));
        pq::Conn conn = std::move(idle.conn);
        // The writers' turn and BEGIN in one round trip (the lock first, so
        // that the snapshot starts after the previous writer's commit).
        std::vector<pq::Statement> batch;
        if (write) batch.push_back({kWriteLock, {}, "cannot wait for the writers' turn"});
        batch.push_back({begin_sql, {}, "cannot begin a transaction"});
        Status st;
        for (auto& a : pq::exec_batch(conn.get(), batch))
            if (!a && st) st = std::unexpected(a.error());
        if (st) {
            auto s = std::make_unique<Session>();
            s->owner = this;
            s->conn = std::move(conn);
            s->prepared = idle.prepared;
            return std::make_unique<PgTxn>(std::move(s), write);
        }
        // The connection is dropped (with its lock, if it got it).
        // A pooled connection may have died meanwhile (server restart,
        // failover): once more on a fresh one.
        if (!pooled || attempt > 0 || st.error().code != Errc::unavailable) return std::unexpected(st.error());
        drop_idle();
    }
}

Result<pq::Conn> connect_checked(const std::string& uri) {
    PWSYNC_TRY(check_uri(uri));
    return connect_session(uri);
}

// The plug-in's entry points, named apart from the other backends' (a
// unity build puts several backends in one translation unit).
namespace pg_plugin {

Status check_vacant(const std::string& location) {
    const std::string uri = full_uri(location);
    PWSYNC_ASSIGN(auto c, connect_checked(uri));
    PWSYNC_ASSIGN(bool there, table_exists(c.get(), std::string(kTablePrefix) + "settings"));
    if (there) return fail(Errc::already_exists, "a store already exists in " + uri);
    return {};
}

Result<std::unique_ptr<Backend>> create(const std::string& location) {
    const std::string uri = full_uri(location);
    PWSYNC_ASSIGN(auto c, connect_checked(uri));
    PWSYNC_TRY(create_schema(c.get(), true, uri));
    auto b = std::make_unique<PgBackend>(uri);
    b->release(std::move(c));
    return b;
}

Result<std::unique_ptr<Backend>> open(const std::string& location) {
    const std::string uri = full_uri(location);
    PWSYNC_ASSIGN(auto c, connect_checked(uri));
    PWSYNC_ASSIGN(bool there, table_exists(c.get(), std::string(kTablePrefix) + "settings"));
    if (!there) return fail(Errc::not_found, "no store in " + uri + " (create one with: pwsync init)");
    // An older store gets the tables it lacks (a store whose tables are all
    // there needs no right to create any).
    PWSYNC_ASSIGN(bool complete, all_tables_exist(c.get()));
    if (!complete) PWSYNC_TRY(create_schema(c.get(), false, uri));
    auto b = std::make_unique<PgBackend>(uri);
    b->release(std::move(c));
    return b;
}

// Drops what create() made, in one transaction under the schema lock.
Status discard(const std::string& location) {
    const std::string uri = full_uri(location);
    PWSYNC_ASSIGN(auto c, connect_checked(uri));
    PWSYNC_TRY(pq::run(c.get(), "BEGIN", "cannot begin removing the store"));
    auto body = [&]() -> Status {
        PWSYNC_TRY(pq::run(c.get(), kSchemaLock, "cannot lock the store's schema"));
        for (std::size_t i = 0; i < kDatabaseCount; ++i) {
            const std::string ddl = "DROP TABLE IF EXISTS " + std::string(kTablePrefix) + kDatabases[i].name;
            PWSYNC_TRY(pq::run(c.get(), ddl.c_str(), std::string("cannot drop table ") + kDatabases[i].name));
        }
        PWSYNC_TRY(pq::run(c.get(), (std::string("DROP SEQUENCE IF EXISTS ") + kSequence).c_str(),
                           "cannot drop the id sequence"));
        PWSYNC_TRY(pq::run(c.get(), "DROP TABLE IF EXISTS pwsync_lease, pwsync_gateways",
                           "cannot drop the gateways' lease tables"));
        return pq::run(c.get(), "COMMIT", "cannot commit the removal of the store");
    };
    Status st = body();
    if (!st && PQtransactionStatus(c.get()) != PQTRANS_IDLE) (void)pq::run(c.get(), "ROLLBACK", "rollback");
    return st;
}

std::string default_key_file(const std::string&) { return kKeyFileDefault; }

}  // namespace pg_plugin
}  // namespace

const BackendType kPostgresqlBackend{"postgresql", pg_plugin::default_key_file, pg_plugin::check_vacant,
                                     pg_plugin::create, pg_plugin::open, pg_plugin::discard};
const BackendType kPostgresBackend{"postgres", pg_plugin::default_key_file, pg_plugin::check_vacant,
                                   pg_plugin::create, pg_plugin::open, pg_plugin::discard};

}  // namespace pwsync::store
