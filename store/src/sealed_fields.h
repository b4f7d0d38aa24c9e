// Where sealed values live: every sealed field of every record type with the
// context it was sealed under. Key rotation and `store verify` walk these, so
// a new sealed field is added here once and both see it.
#pragma once

#include <string>
#include <vector>

#include "impl.h"

namespace pwsync::store::sealed {

struct Field {
    std::string* value;   // empty: nothing sealed there
    std::string context;
};

inline std::string job_context(std::uint64_t id, std::string_view field) {
    return crypto::seal_context("jobs", audit_key(id), field);
}
inline std::string pending_context(std::uint64_t id) { return crypto::seal_context("pending", audit_key(id), "password"); }

inline std::vector<Field> fields(records::AdapterRecord& r, std::string_view key) {
    std::vector<Field> out;
    for (auto& [prop, value] : r.sealed) out.push_back({&value, crypto::seal_context("adapters", key, prop)});
    return out;
}
inline std::vector<Field> fields(records::MappingRecord& r, std::string_view key) {
    return {{&r.sealed_credential, crypto::seal_context("mappings", key, "credential")}};
}
inline std::vector<Field> fields(records::JobRecord& r, std::string_view) {
    return {{&r.sealed_password, job_context(r.job.id, "password")},
            {&r.sealed_old_password, job_context(r.job.id, "old-password")}};
}
inline std::vector<Field> fields(records::DeadRecord& r, std::string_view key) { return fields(r.job, key); }
inline std::vector<Field> fields(records::PendingRecord& r, std::string_view) {
    return {{&r.sealed_password, pending_context(r.capture.id)}};
}

// Runs `each(record, key)` over every record of a database, writing back the
// record when `each` says it changed it.
template <class Decode, class Each>
Status rewrite_all(const TxnState& s, Table dbi, Decode decode, Each each) {
    return s.kv().rewrite(dbi, [&](std::string_view k, std::string_view v) -> Result<std::optional<std::string>> {
        auto rec = decode(v);
        if (!rec) return std::unexpected(rec.error());
        const std::string key(k);
        PWSYNC_ASSIGN(bool changed, each(*rec, key));
        if (!changed) return std::nullopt;
        return records::encode(*rec);
    });
}

}  // namespace pwsync::store::sealed
