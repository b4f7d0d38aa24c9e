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

namespace {

// Binary parameters for PQexecParams/PQsendQueryParams.
struct Params {
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    template <class Seq>
    explicit Params(const Seq& params) {
        for (const auto& p : params) {
            values.push_back(p.data() != nullptr ? p.data() : "");  // empty, not NULL
            lengths.push_back(static_cast<int>(p.size()));
            formats.push_back(1);
        }
    }
    int count() const { return static_cast<int>(values.size()); }
};

bool succeeded(const PGresult* r) {
    const ExecStatusType st = r != nullptr ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

}  // namespace

Result<ResultPtr> exec(PGconn* c, const char* sql, const std::vector<std::string_view>& params, std::string_view what) {
    const Params p(params);
    ResultPtr r(PQexecParams(c, sql, p.count(), nullptr, p.values.data(), p.lengths.data(), p.formats.data(), 1));
    if (succeeded(r.get())) return r;
    return std::unexpected(failure(c, r.get(), what));
}

Status run(PGconn* c, const char* sql, std::string_view what) {
    PWSYNC_ASSIGN(auto r, exec(c, sql, {}, what));
    (void)r;
    return {};
}

std::vector<Result<ResultPtr>> exec_batch(PGconn* c, const std::vector<Statement>& batch, std::vector<bool>* prepared) {
    std::vector<Result<ResultPtr>> out;
    if (prepared != nullptr) prepared->assign(batch.size(), false);
    if (batch.empty()) return out;
    if (batch.size() == 1 && !batch.front().prepare) {
        const auto& s = batch.front();
        if (s.name == nullptr) {
            out.push_back(exec(c, s.sql, {s.params.begin(), s.params.end()}, s.what));
        } else {
            const Params p(s.params);
            ResultPtr r(PQexecPrepared(c, s.name, p.count(), p.values.data(), p.lengths.data(), p.formats.data(), 1));
            out.push_back(succeeded(r.get()) ? Result<ResultPtr>{std::move(r)}
                                             : std::unexpected(failure(c, r.get(), s.what)));
        }
        return out;
    }
    const bool piped = PQenterPipelineMode(c) == 1;
    // What was sent for each statement: a Parse (prepare), the statement.
    std::vector<std::pair<bool, bool>> sent;
    for (const auto& s : batch) {
        if (!piped) break;
        const Params p(s.params);
        const bool parse = s.name != nullptr && s.prepare;
        if (parse && (PQsendPrepare(c, s.name, s.sql, p.count(), nullptr) != 1 || PQpipelineSync(c) != 1)) break;
        const bool stmt =
            (s.name != nullptr
                 ? PQsendQueryPrepared(c, s.name, p.count(), p.values.data(), p.lengths.data(), p.formats.data(), 1)
                 : PQsendQueryParams(c, s.sql, p.count(), nullptr, p.values.data(), p.lengths.data(), p.formats.data(),
                                     1)) == 1 &&
            PQpipelineSync(c) == 1;
        sent.emplace_back(parse, stmt);
        if (!stmt) break;
    }
    // One answer: its result, the end of its results (one null), its Sync.
    // A statement without a result, or a second null before the Sync, means
    // the server went away in a way libpq does not flag (it answers null for
    // ever and the status stays OK): the connection is given up.
    bool lost = false;
    auto answer = [c, &lost]() -> ResultPtr {
        ResultPtr r(PQgetResult(c));
        if (!r) {
            lost = true;
            return r;
        }
        int nulls = 0;
        while (PQstatus(c) != CONNECTION_BAD) {
            ResultPtr rest(PQgetResult(c));
            if (!rest) {
                if (++nulls > 1) {
                    lost = true;
                    break;
                }
                continue;
            }
            if (PQresultStatus(rest.get()) == PGRES_PIPELINE_SYNC) break;
        }
        return r;
    };
    for (std::size_t i = 0; i < sent.size() && PQstatus(c) != CONNECTION_BAD && !lost; ++i) {
        const auto [parse, stmt] = sent[i];
        if (parse) {
            const bool ready = succeeded(answer().get());
            if (prepared != nullptr) (*prepared)[i] = ready;
        }
        if (!stmt || PQstatus(c) == CONNECTION_BAD || lost) break;
        ResultPtr r = answer();
        if (lost && !r) break;
        out.push_back(succeeded(r.get()) ? Result<ResultPtr>{std::move(r)}
                                         : std::unexpected(failure(c, r.get(), batch[i].what)));
    }
    // Not sent, or no answer: the connection's error.
    while (out.size() < batch.size()) {
        if (lost)
            out.push_back(fail(Errc::unavailable, std::string(batch[out.size()].what) +
                                                      ": the connection to PostgreSQL was lost (no answer)"));
        else
            out.push_back(std::unexpected(failure(c, nullptr, batch[out.size()].what)));
    }
    // A lost connection stays in pipeline mode: the pool drops it.
    if (piped && PQstatus(c) != CONNECTION_BAD && !lost) (void)PQexitPipelineMode(c);
    return out;
}

}  // namespace pwsync::store::pq
