#include "pq.h"

#include <cstring>
#include <optional>

namespace pwsync::store::pq {
namespace {

std::string trimmed(const char* s) {
    std::string out = s != nullptr ? s : "";
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
}

// What the caller may do about a failed statement, from its SQLSTATE.
Errc classify(std::string_view state) {
    // Serialization failure, deadlock, lock_timeout: run the unit of work again.
    if (state == "40001" || state == "40P01" || state == "55P03") return Errc::busy;
    if (state == "57014") return Errc::timeout;  // statement_timeout (or cancelled by an administrator)
    if (state.starts_with("08") || state == "57P01" || state == "57P02" || state == "57P03")
        return Errc::unavailable;  // connection gone, server shutting down, backend terminated
    if (state == "25006") return Errc::refused;  // read-only transaction: a standby
    return Errc::storage;  // disk full (53100) and everything else
}

// The error of a failed statement (`r` may be null).
Error failure(PGconn* c, const PGresult* r, std::string_view what) {
    const char* state = r != nullptr ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    Errc code = state != nullptr ? classify(state) : Errc::storage;
    if (PQstatus(c) == CONNECTION_BAD) code = Errc::unavailable;
    std::string text = r != nullptr ? trimmed(PQresultErrorMessage(r)) : "";
    if (text.empty()) text = trimmed(PQerrorMessage(c));
    if (code == Errc::unavailable) text += " (the connection was lost; nothing of the transaction was committed)";
    return Error{code, std::string(what) + ": " + text};
}

}  // namespace

Result<Conn> connect(const std::string& uri, const std::vector<std::pair<std::string, std::string>>& defaults) {
    // Defaults first, then dbname (expanded from the URI), which overrides them.
    std::vector<const char*> keys, values;
    for (const auto& [k, v] : defaults) {
        keys.push_back(k.c_str());
        values.push_back(v.c_str());
    }
    keys.push_back("dbname");
    values.push_back(uri.c_str());
    keys.push_back(nullptr);
    values.push_back(nullptr);
    Conn c(PQconnectdbParams(keys.data(), values.data(), 1));
    if (!c) return fail(Errc::internal, "out of memory connecting to PostgreSQL");
    if (PQstatus(c.get()) != CONNECTION_OK)
        return fail(Errc::unavailable, "cannot connect to the PostgreSQL store: " + trimmed(PQerrorMessage(c.get())));
    // Notices (e.g. "relation already exists, skipping") are not errors and
    // must not reach the caller's stderr.
    PQsetNoticeProcessor(c.get(), [](void*, const char*) {}, nullptr);
    return c;
}

Result<ResultPtr> exec(PGconn* c, const char* sql, const std::vector<std::string_view>& params, std::string_view what) {
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    for (auto p : params) {
        values.push_back(p.data() != nullptr ? p.data() : "");  // empty, not NULL
        lengths.push_back(static_cast<int>(p.size()));
        formats.push_back(1);
    }
    ResultPtr r(PQexecParams(c, sql, static_cast<int>(params.size()), nullptr, values.data(), lengths.data(),
                             formats.data(), 1));
    const ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
    return std::unexpected(failure(c, r.get(), what));
}

Status exec_many(PGconn* c, const char* sql, const std::vector<std::pair<std::string, std::string>>& rows,
                 std::string_view what) {
    if (rows.empty()) return {};
    if (PQenterPipelineMode(c) != 1) return std::unexpected(failure(c, nullptr, what));
    std::optional<Error> first;
    std::size_t sent = 0;
    for (const auto& [k, v] : rows) {
        const char* values[2] = {k.c_str(), v.c_str()};
        const int lengths[2] = {static_cast<int>(k.size()), static_cast<int>(v.size())};
        const int formats[2] = {1, 1};
        if (PQsendQueryParams(c, sql, 2, nullptr, values, lengths, formats, 1) != 1) {
            first = failure(c, nullptr, what);
            break;
        }
        ++sent;
    }
    if (PQpipelineSync(c) != 1) return std::unexpected(first ? *first : failure(c, nullptr, what));
    // Each statement's result (then a null), then the sync's.
    for (std::size_t nulls = 0; nulls <= sent;) {
        ResultPtr r(PQgetResult(c));
        if (!r) {
            if (PQstatus(c) == CONNECTION_BAD) break;
            ++nulls;
            continue;
        }
        const ExecStatusType st = PQresultStatus(r.get());
        if (st == PGRES_PIPELINE_SYNC) break;
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_PIPELINE_ABORTED && !first)
            first = failure(c, r.get(), what);
    }
    if (PQexitPipelineMode(c) != 1 && !first) first = failure(c, nullptr, what);
    if (first) return std::unexpected(*first);
    return {};
}

Status run(PGconn* c, const char* sql, std::string_view what) {
    PWSYNC_ASSIGN(auto r, exec(c, sql, {}, what));
    (void)r;
    return {};
}

}  // namespace pwsync::store::pq
