// Thin RAII layer over libpq: a connection and a result close themselves,
// every statement is parameterized (binary bytea in and out), and a failed
// statement becomes a pwsync::Error whose code says what the caller may do:
// busy for a serialization failure or deadlock (run the unit of work
// again), unavailable for a lost connection, storage for the rest.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pwsync/util.h"

namespace pwsync::store::pq {

struct ConnClose {
    void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
struct ResultClear {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using Conn = std::unique_ptr<PGconn, ConnClose>;
using ResultPtr = std::unique_ptr<PGresult, ResultClear>;

// Opens a connection to `uri` (a libpq URI); `defaults` are keyword/value
// pairs the URI may override (e.g. sslmode).
Result<Conn> connect(const std::string& uri, const std::vector<std::pair<std::string, std::string>>& defaults);

// Runs `sql` with binary parameters; results come back in binary. The
// error text names `what` and carries the server's message.
Result<ResultPtr> exec(PGconn* c, const char* sql, const std::vector<std::string_view>& params, std::string_view what);
// Runs `sql` once per row (its two parameters) in one pipeline: one round
// trip for them all. The first failure is the error; the connection leaves
// pipeline mode (or is broken, see in_pipeline).
Status exec_many(PGconn* c, const char* sql, const std::vector<std::pair<std::string, std::string>>& rows,
                 std::string_view what);
inline bool in_pipeline(PGconn* c) { return PQpipelineStatus(c) != PQ_PIPELINE_OFF; }
// A statement without parameters (BEGIN, SAVEPOINT, DDL).
Status run(PGconn* c, const char* sql, std::string_view what);

// A bytea column of a binary result.
inline std::string_view value(const PGresult* r, int row, int col) {
    return {PQgetvalue(r, row, col), static_cast<std::size_t>(PQgetlength(r, row, col))};
}

}  // namespace pwsync::store::pq
