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
inline bool in_pipeline(PGconn* c) { return PQpipelineStatus(c) != PQ_PIPELINE_OFF; }
// A statement without parameters (BEGIN, SAVEPOINT, DDL).
Status run(PGconn* c, const char* sql, std::string_view what);

// One statement of a batch, with copies of its parameters (a batch is sent
// later than its statements are made).
struct Statement {
    const char* sql = nullptr;
    std::vector<std::string> params;
    std::string_view what;       // for the error message
    const char* name = nullptr;  // run as this prepared statement (whose text is sql)
    bool prepare = false;        // prepare it first (not yet on this connection)
    unsigned tag = 0;            // the caller's own number for it
};
// Sends every statement before reading any answer (libpq's pipeline mode,
// a Sync after each, so each runs as it would alone): one round trip for
// all. One answer per statement, in order (a statement after a failed one
// inside a transaction fails too, as it would alone).
// `prepared`, when given, gets for each statement that asked to be
// prepared whether that succeeded (false for the others).
std::vector<Result<ResultPtr>> exec_batch(PGconn* c, const std::vector<Statement>& batch,
                                          std::vector<bool>* prepared = nullptr);

// A bytea column of a binary result.
inline std::string_view value(const PGresult* r, int row, int col) {
    return {PQgetvalue(r, row, col), static_cast<std::size_t>(PQgetlength(r, row, col))};
}

}  // namespace pwsync::store::pq
