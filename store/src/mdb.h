// Thin RAII layer over the LMDB C API: every handle closes itself and every
#include <utility>
// return code becomes a pwsync::Error with LMDB's own text.
#pragma once

#include <lmdb.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "pwsync/util.h"

namespace pwsync::store::lmdb {

Error error(int rc, std::string_view what);
inline Status check(int rc, std::string_view what) {
    if (rc == MDB_SUCCESS) return {};
    return std::unexpected(error(rc, what));
}

inline MDB_val val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
inline std::string_view view(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

class Env {
public:
    Env() = default;
    Env(const Env&) = delete;
    Env& operator=(const Env&) = delete;
    Env(Env&& o) noexcept : env_(std::exchange(o.env_, nullptr)) {}
    Env& operator=(Env&& o) noexcept;
    ~Env();
    static Result<Env> open(const std::string& dir, std::size_t map_size, unsigned max_dbs);
    MDB_env* get() const noexcept { return env_; }

private:
    MDB_env* env_ = nullptr;
};

class Txn {
public:
    Txn() = default;
    Txn(const Txn&) = delete;
    Txn& operator=(const Txn&) = delete;
    Txn(Txn&& o) noexcept : txn_(std::exchange(o.txn_, nullptr)), write_env_(std::exchange(o.write_env_, nullptr)) {}
    Txn& operator=(Txn&& o) noexcept;
    ~Txn() { abort(); }
    static Result<Txn> begin(MDB_env* env, bool write);
    // The environment is opened with MDB_NOMETASYNC (Env::open): LMDB's
    // commit flushes the data but not the meta page, which this flush
    // (mdb_env_sync) then makes durable. Without it (flush = false) a system
    // crash may undo this transaction, and nothing before it.
    Status commit(bool flush = true);
    void abort() noexcept;
    MDB_txn* get() const noexcept { return txn_; }

private:
    MDB_txn* txn_ = nullptr;
    MDB_env* write_env_ = nullptr;  // a write transaction's, for the flush
};

class Cursor {
public:
    Cursor(const Cursor&) = delete;
    Cursor& operator=(const Cursor&) = delete;
    ~Cursor() { if (c_ != nullptr) mdb_cursor_close(c_); }
    static Result<Cursor> open(MDB_txn* txn, MDB_dbi dbi);
    MDB_cursor* get() const noexcept { return c_; }
    Cursor(Cursor&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}

private:
    explicit Cursor(MDB_cursor* c) : c_(c) {}
    MDB_cursor* c_ = nullptr;
};

// nullopt when the key is absent. The view lives until the transaction ends.
Result<std::optional<std::string_view>> get(MDB_txn* txn, MDB_dbi dbi, std::string_view key);
Status put(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view value);
// Deleting an absent key is not an error.
Status del(MDB_txn* txn, MDB_dbi dbi, std::string_view key);

// Visits every entry whose key starts with `prefix`, in key order, starting
// at `from` when it is not empty; the visitor returns false to stop.
using Visitor = std::function<Result<bool>(std::string_view key, std::string_view value)>;
Status scan(MDB_txn* txn, MDB_dbi dbi, std::string_view prefix, const Visitor& visit,
            std::string_view from = {});
// The last key of a database, if any.
Result<std::optional<std::string>> last_key(MDB_txn* txn, MDB_dbi dbi);
Result<std::size_t> entries(MDB_txn* txn, MDB_dbi dbi);

}  // namespace pwsync::store::lmdb
