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

#include <charconv>
#include <cstring>
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
        {"sslmode", "verify-full"}, {"connect_timeout", "10"}, {"application_name", "pwsync"}};
    return d;
}

// A wait for a lock (the writers' turn included) ends after lock_timeout
// with Errc::busy, a statement running past statement_timeout with
// Errc::timeout: a stuck session gives a clear, retryable error instead of
// a hang. Only where the URI (options=-c...), the role or the database set
// none; the values are documented in docs/ARCHITECTURE.md.
constexpr const char* kSessionTimeouts =
    "SELECT CASE WHEN current_setting('lock_timeout') = '0' THEN set_config('lock_timeout', '30s', false) END, "
    "CASE WHEN current_setting('statement_timeout') = '0' THEN set_config('statement_timeout', '60s', false) END";

Result<pq::Conn> connect_session(const std::string& uri) {
    PWSYNC_ASSIGN(auto c, pq::connect(uri, connect_defaults()));
    PWSYNC_TRY(pq::run(c.get(), kSessionTimeouts, "cannot set the session's timeouts"));
    return c;
}

// The statements of one table: fixed text, built from the table's name in
// kDatabases (never from a value); every value is a parameter.
struct TableSql {
    std::string get, put, del, last, count;
    // Scans: from a key (>=) or after one (>), up to an end key or open.
    std::string scan[2][2];
};

std::vector<TableSql> make_sql() {
    std::vector<TableSql> out;
    for (std::size_t i = 0; i < kDatabaseCount; ++i) {
        const std::string t = std::string(kTablePrefix) + kDatabases[i].name;
        TableSql s;
        s.get = "SELECT v FROM " + t + " WHERE k = $1";
        s.put = "INSERT INTO " + t + " (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v";
        s.del = "DELETE FROM " + t + " WHERE k = $1";
        s.last = "SELECT k FROM " + t + " ORDER BY k DESC LIMIT 1";
        s.count = "SELECT count(*)::text FROM " + t;
        const std::string limit = " ORDER BY k LIMIT " + std::to_string(kScanPage);
        for (int after = 0; after < 2; ++after)
            for (int bounded = 0; bounded < 2; ++bounded)
                s.scan[after][bounded] = "SELECT k, v FROM " + t + " WHERE k " + (after ? ">" : ">=") + " $1" +
                                         (bounded ? " AND k < $2" : "") + limit;
        out.push_back(std::move(s));
    }
    return out;
}

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
    std::vector<pq::ResultPtr> kept;
};

class PgBackend final : public Backend {
public:
    explicit PgBackend(std::string uri) : uri_(std::move(uri)) {}

    Result<pq::Conn> acquire(bool& pooled) {
        {
            std::lock_guard lock(mutex_);
            if (!idle_.empty()) {
                pq::Conn c = std::move(idle_.back());
                idle_.pop_back();
                pooled = true;
                return c;
            }
        }
        pooled = false;
        return connect_session(uri_);
    }
    // Keeps a healthy connection for the next transaction.
    void release(pq::Conn c) {
        if (!c || PQstatus(c.get()) != CONNECTION_OK || PQtransactionStatus(c.get()) != PQTRANS_IDLE ||
            pq::in_pipeline(c.get()))
            return;
        std::lock_guard lock(mutex_);
        idle_.push_back(std::move(c));
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

private:
    std::string uri_;
    std::mutex mutex_;
    std::vector<pq::Conn> idle_;
};

class PgTxn final : public KvTxn {
public:
    // A top-level transaction on its own connection.
    PgTxn(std::unique_ptr<Session> s, bool write) : own_(std::move(s)), s_(own_.get()), write_(write) {}

    ~PgTxn() override {
        if (active_) {
            (void)pq::run(s_->conn.get(), "ROLLBACK", "rollback");
        }
        if (own_ && write_ && PQstatus(own_->conn.get()) == CONNECTION_OK)
            (void)pq::run(own_->conn.get(), kWriteUnlock, "cannot end the writer's turn");
        if (own_) {
            own_->kept.clear();
            own_->owner->release(std::move(own_->conn));
        }
    }


    Result<std::optional<std::string_view>> get(Table t, std::string_view key) const override {
        PWSYNC_ASSIGN(auto r, pq::exec(conn(), sql(t).get.c_str(), {key}, "cannot read from the store"));
        if (PQntuples(r.get()) == 0) return std::optional<std::string_view>{};
        return std::optional<std::string_view>{keep(std::move(r), 0, 0)};
    }
    Status put(Table t, std::string_view key, std::string_view value) override {
        PWSYNC_ASSIGN(auto r, pq::exec(conn(), sql(t).put.c_str(), {key, value}, "cannot write to the store"));
        return {};
    }
    Status put_many(Table t, const std::vector<std::pair<std::string, std::string>>& rows) override {
        return pq::exec_many(conn(), sql(t).put.c_str(), rows, "cannot write to the store");
    }
    Status del(Table t, std::string_view key) override {
        PWSYNC_ASSIGN(auto r, pq::exec(conn(), sql(t).del.c_str(), {key}, "cannot delete from the store"));
        return {};
    }
    Status rewrite(Table t, const Rewriter& each) override {
        return scan_from(t, "", [&](std::string_view k, std::string_view v) -> Result<bool> {
            PWSYNC_ASSIGN(auto changed, each(k, v));
            if (changed) PWSYNC_TRY(put(t, k, *changed));
            return true;
        }, {});
    }
    Result<std::optional<std::string>> last_key(Table t) const override {
        PWSYNC_ASSIGN(auto r, pq::exec(conn(), sql(t).last.c_str(), {}, "cannot read from the store"));
        if (PQntuples(r.get()) == 0) return std::optional<std::string>{};
        return std::optional<std::string>{std::string(pq::value(r.get(), 0, 0))};
    }
    Result<std::size_t> entries(Table t) const override {
        PWSYNC_ASSIGN(auto r, pq::exec(conn(), sql(t).count.c_str(), {}, "cannot count the store's records"));
        PWSYNC_ASSIGN(auto n, as_u64(pq::value(r.get(), 0, 0), "a count"));
        return static_cast<std::size_t>(n);
    }
    Result<std::uint64_t> next_id(Sequence) override {
        if (!write_) return fail(Errc::internal, "an identifier was asked for in a read transaction");
        PWSYNC_ASSIGN(auto r, pq::exec(conn(), "SELECT nextval('pwsync_ids')::text", {}, "cannot draw an id"));
        return as_u64(pq::value(r.get(), 0, 0), "the next id");
    }
    Result<std::uint64_t> last_id(Sequence) const override {
        PWSYNC_ASSIGN(auto r, pq::exec(conn(), kLastId, {}, "cannot read the id sequence"));
        return as_u64(pq::value(r.get(), 0, 0), "the last id");
    }
    // setval is not transactional: only a migration's fresh store (which
    // is discarded if its transaction fails) moves it.
    Status advance(Sequence seq, std::uint64_t past) override {
        if (!write_) return fail(Errc::internal, "a sequence was moved in a read transaction");
        PWSYNC_ASSIGN(auto last, last_id(seq));
        if (last >= past) return {};
        const std::string n = std::to_string(past);
        PWSYNC_ASSIGN(auto r, pq::exec(conn(), "SELECT setval('pwsync_ids', $1::text::bigint)::text", {n},
                                       "cannot move the id sequence"));
        return {};
    }
    Status commit() override {
        if (!active_) return fail(Errc::internal, "commit of a finished transaction");
        active_ = false;
        PGconn* c = conn();
        auto r = pq::exec(c, "COMMIT", {}, "cannot commit to the store");
        if (!r) {
            // Lost during COMMIT: it may or may not have committed. Not
            // retryable (the unit of work could be applied twice).
            if (r.error().code == Errc::unavailable)
                return fail(Errc::storage, "the connection to PostgreSQL was lost during COMMIT: the transaction may "
                                           "or may not have been committed (" + r.error().message + ")");
            return std::unexpected(r.error());
        }
        // A transaction that had failed answers COMMIT with ROLLBACK.
        if (std::string_view(PQcmdStatus(r->get())) != "COMMIT")
            return fail(Errc::storage, "PostgreSQL rolled the transaction back instead of committing it");
        return {};
    }
    bool active() const override { return active_; }

protected:
    Status scan_from(Table t, std::string_view prefix, const Visitor& visit, std::string_view from) const override {
        const auto end = prefix_end(prefix);
        std::string start(from.empty() ? prefix : from);
        bool after = false;
        for (;;) {
            std::vector<std::string_view> params{start};
            if (end) params.push_back(*end);
            PWSYNC_ASSIGN(auto r, pq::exec(conn(), sql(t).scan[after][end ? 1 : 0].c_str(), params,
                                           "cannot iterate over the store"));
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
    PGconn* conn() const { return s_->conn.get(); }
    // Keeps `r` until the transaction ends; returns one of its values.
    std::string_view keep(pq::ResultPtr r, int row, int col) const {
        const auto v = pq::value(r.get(), row, col);
        s_->kept.push_back(std::move(r));
        return v;
    }

    std::unique_ptr<Session> own_;
    Session* s_;
    bool write_;
    bool active_ = true;
};

Result<std::unique_ptr<KvTxn>> PgBackend::begin(bool write) {
    const char* begin_sql =
        write ? "BEGIN ISOLATION LEVEL SERIALIZABLE" : "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
    for (int attempt = 0;; ++attempt) {
        bool pooled = false;
        PWSYNC_ASSIGN(auto conn, acquire(pooled));
        Status st;
        if (write) st = pq::run(conn.get(), kWriteLock, "cannot wait for the writers' turn");
        if (st) st = pq::run(conn.get(), begin_sql, "cannot begin a transaction");
        if (st) {
            auto s = std::make_unique<Session>();
            s->owner = this;
            s->conn = std::move(conn);
            return std::make_unique<PgTxn>(std::move(s), write);
        }
        // The connection is dropped (with its lock, if it got it).
        // A pooled connection may have died meanwhile (server restart,
        // failover): once more on a fresh one.
        if (!pooled || attempt > 0 || st.error().code != Errc::unavailable) return std::unexpected(st.error());
    }
}

Result<pq::Conn> connect_checked(const std::string& uri) {
    PWSYNC_TRY(check_uri(uri));
    return connect_session(uri);
}

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
        return pq::run(c.get(), "COMMIT", "cannot commit the removal of the store");
    };
    Status st = body();
    if (!st && PQtransactionStatus(c.get()) != PQTRANS_IDLE) (void)pq::run(c.get(), "ROLLBACK", "rollback");
    return st;
}

std::string default_key_file(const std::string&) { return kKeyFileDefault; }

}  // namespace

const BackendType kPostgresqlBackend{"postgresql", default_key_file, check_vacant, create, open, discard};
const BackendType kPostgresBackend{"postgres", default_key_file, check_vacant, create, open, discard};

}  // namespace pwsync::store
