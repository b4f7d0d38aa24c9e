#include "mdb.h"

#include <cerrno>
#include <cstring>

namespace pwsync::store::lmdb {

Error error(int rc, std::string_view what) {
    Errc code = Errc::storage;
    if (rc == EACCES || rc == EPERM) code = Errc::permission;
    else if (rc == MDB_VERSION_MISMATCH || rc == MDB_INVALID) code = Errc::version;
    else if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND) code = Errc::corrupt;
    std::string msg(what);
    msg += ": ";
    msg += mdb_strerror(rc);
    if (rc == MDB_MAP_FULL) msg += " (the store reached its size limit)";
    return Error{code, std::move(msg)};
}

Env& Env::operator=(Env&& o) noexcept {
    if (this != &o) {
        if (env_ != nullptr) mdb_env_close(env_);
        env_ = std::exchange(o.env_, nullptr);
    }
    return *this;
}

Env::~Env() {
    if (env_ != nullptr) mdb_env_close(env_);
}

Result<Env> Env::open(const std::string& dir, std::size_t map_size, unsigned max_dbs) {
    Env e;
    if (auto st = check(mdb_env_create(&e.env_), "cannot create the LMDB environment"); !st)
        return std::unexpected(st.error());
    if (auto st = check(mdb_env_set_maxdbs(e.env_, max_dbs), "cannot set the number of databases"); !st)
        return std::unexpected(st.error());
    if (auto st = check(mdb_env_set_mapsize(e.env_, map_size), "cannot set the map size"); !st)
        return std::unexpected(st.error());
    // One reader slot per concurrent read transaction: the daemon may serve
    // a thousand connections at once (LMDB's default is 126).
    if (auto st = check(mdb_env_set_maxreaders(e.env_, 4096), "cannot set the number of readers"); !st)
        return std::unexpected(st.error());
    // MDB_NOTLS: read transactions are not tied to threads (the daemon hands
    // them around). MDB_NOMETASYNC: a commit flushes the data, and
    // Txn::commit flushes the meta page after it unless the commit is
    // deferrable, which then costs one flush instead of two.
    if (auto st = check(mdb_env_open(e.env_, dir.c_str(), MDB_NOTLS | MDB_NOMETASYNC, 0600),
                        "cannot open the store at " + dir);
        !st)
        return std::unexpected(st.error());
    return e;
}

Txn& Txn::operator=(Txn&& o) noexcept {
    if (this != &o) {
        abort();
        txn_ = std::exchange(o.txn_, nullptr);
        write_env_ = std::exchange(o.write_env_, nullptr);
    }
    return *this;
}

Result<Txn> Txn::begin(MDB_env* env, bool write) {
    Txn t;
    int rc = mdb_txn_begin(env, nullptr, write ? 0 : MDB_RDONLY, &t.txn_);
    if (rc == MDB_MAP_RESIZED) {
        // Another process grew the map: adopt its size and try again.
        rc = mdb_env_set_mapsize(env, 0);
        if (rc == MDB_SUCCESS) rc = mdb_txn_begin(env, nullptr, write ? 0 : MDB_RDONLY, &t.txn_);
    }
    if (auto st = check(rc, write ? "cannot begin a write transaction" : "cannot begin a read transaction"); !st)
        return std::unexpected(st.error());
    if (write) t.write_env_ = env;
    return t;
}

Status Txn::commit(bool flush) {
    if (txn_ == nullptr) return fail(Errc::internal, "commit of a finished transaction");
    MDB_env* env = std::exchange(write_env_, nullptr);
    PWSYNC_TRY(check(mdb_txn_commit(std::exchange(txn_, nullptr)), "cannot commit to the store"));
    if (!flush || env == nullptr) return {};
    // Committed but perhaps not on the disk: the caller must not count on it.
    return check(mdb_env_sync(env, 1), "the store committed but could not flush the commit to the disk");
}

void Txn::abort() noexcept {
    if (txn_ != nullptr) mdb_txn_abort(std::exchange(txn_, nullptr));
}

Result<Cursor> Cursor::open(MDB_txn* txn, MDB_dbi dbi) {
    MDB_cursor* c = nullptr;
    if (auto st = check(mdb_cursor_open(txn, dbi, &c), "cannot open a cursor"); !st) return std::unexpected(st.error());
    return Cursor(c);
}

Result<std::optional<std::string_view>> get(MDB_txn* txn, MDB_dbi dbi, std::string_view key) {
    MDB_val k = val(key), v{};
    const int rc = mdb_get(txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND) return std::optional<std::string_view>{};
    if (auto st = check(rc, "cannot read from the store"); !st) return std::unexpected(st.error());
    return std::optional<std::string_view>{view(v)};
}

Status put(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view value) {
    MDB_val k = val(key), v = val(value);
    return check(mdb_put(txn, dbi, &k, &v, 0), "cannot write to the store");
}

Status del(MDB_txn* txn, MDB_dbi dbi, std::string_view key) {
    MDB_val k = val(key);
    const int rc = mdb_del(txn, dbi, &k, nullptr);
    if (rc == MDB_NOTFOUND) return {};
    return check(rc, "cannot delete from the store");
}

Status scan(MDB_txn* txn, MDB_dbi dbi, std::string_view prefix, const Visitor& visit, std::string_view from) {
    auto cur = Cursor::open(txn, dbi);
    if (!cur) return std::unexpected(cur.error());
    const std::string_view start = from.empty() ? prefix : from;
    MDB_val k = val(start), v{};
    int rc = start.empty() ? mdb_cursor_get(cur->get(), &k, &v, MDB_FIRST)
                           : mdb_cursor_get(cur->get(), &k, &v, MDB_SET_RANGE);
    while (rc == MDB_SUCCESS) {
        const auto key = view(k);
        if (!key.starts_with(prefix)) return {};
        auto more = visit(key, view(v));
        if (!more) return std::unexpected(more.error());
        if (!*more) return {};
        rc = mdb_cursor_get(cur->get(), &k, &v, MDB_NEXT);
    }
    if (rc == MDB_NOTFOUND) return {};
    return check(rc, "cannot iterate over the store");
}

Result<std::optional<std::string>> last_key(MDB_txn* txn, MDB_dbi dbi) {
    auto cur = Cursor::open(txn, dbi);
    if (!cur) return std::unexpected(cur.error());
    MDB_val k{}, v{};
    const int rc = mdb_cursor_get(cur->get(), &k, &v, MDB_LAST);
    if (rc == MDB_NOTFOUND) return std::optional<std::string>{};
    if (auto st = check(rc, "cannot read from the store"); !st) return std::unexpected(st.error());
    return std::optional<std::string>{std::string(view(k))};
}

Result<std::size_t> entries(MDB_txn* txn, MDB_dbi dbi) {
    MDB_stat s{};
    if (auto st = check(mdb_stat(txn, dbi, &s), "cannot read store statistics"); !st)
        return std::unexpected(st.error());
    return s.ms_entries;
}

}  // namespace pwsync::store::lmdb
