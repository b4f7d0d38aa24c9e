#include "records.h"

#include "codec.h"

namespace pwsync::store::records {
namespace {

using codec::Encoder;

std::int64_t micros(TimePoint t) { return to_unix_micros(t); }

// Helpers that turn a field into a member, reporting decode errors.
Status set(std::string& out, std::string_view v) {
    out.assign(v);
    return {};
}
Status set(bool& out, std::string_view v) {
    auto b = codec::as_bool(v);
    if (!b) return std::unexpected(b.error());
    out = *b;
    return {};
}
Status set(std::uint32_t& out, std::string_view v) {
    auto n = codec::as_u64(v);
    if (!n) return std::unexpected(n.error());
    if (*n > 0xffffffffu) return fail(Errc::corrupt, "integer field out of range");
    out = static_cast<std::uint32_t>(*n);
    return {};
}
Status set(std::uint64_t& out, std::string_view v) {
    auto n = codec::as_u64(v);
    if (!n) return std::unexpected(n.error());
    out = *n;
    return {};
}
Status set(TimePoint& out, std::string_view v) {
    auto n = codec::as_i64(v);
    if (!n) return std::unexpected(n.error());
    out = from_unix_micros(*n);
    return {};
}
template <class E>
Status set_enum(E& out, std::string_view v, std::uint32_t max) {
    std::uint32_t n = 0;
    if (auto st = set(n, v); !st) return st;
    if (n > max) return fail(Errc::corrupt, "enumeration field out of range");
    out = static_cast<E>(n);
    return {};
}

// A key/value pair nested in a field.
std::string pair(std::string_view k, std::string_view v) { return Encoder(kFormat).str(1, k).str(2, v).take(); }
Status unpair(std::string_view data, std::string& k, std::string& v) {
    return codec::decode(data, kFormat, "property", [&](std::uint32_t tag, std::string_view val) -> Status {
        if (tag == 1) return set(k, val);
        if (tag == 2) return set(v, val);
        return {};
    });
}

}  // namespace

std::string encode(const App& a) {
    return Encoder(kFormat)
        .str(1, a.name).str(2, a.description).str(3, a.contact).boolean(4, a.enabled).str(5, a.adapter)
        .i64(6, micros(a.created)).i64(7, micros(a.updated)).boolean(8, a.allow_privileged).take();
}

Result<App> decode_app(std::string_view data) {
    App a;
    auto st = codec::decode(data, kFormat, "application", [&](std::uint32_t tag, std::string_view v) -> Status {
        switch (tag) {
            case 1: return set(a.name, v);
            case 2: return set(a.description, v);
            case 3: return set(a.contact, v);
            case 4: return set(a.enabled, v);
            case 5: return set(a.adapter, v);
            case 6: return set(a.created, v);
            case 7: return set(a.updated, v);
            case 8: return set(a.allow_privileged, v);
            default: return {};
        }
    });
    if (!st) return std::unexpected(st.error());
    return a;
}

std::string encode(const AdapterRecord& r) {
    const Adapter& a = r.adapter;
    Encoder e(kFormat);
    e.str(1, a.name).str(2, a.type).str(3, a.description)
        .boolean(10, a.flags.enabled).boolean(11, a.flags.sync_to_adapter).boolean(12, a.flags.sync_from_adapter)
        .boolean(13, a.flags.change_windows_password).boolean(14, a.flags.verify_old_password)
        .boolean(15, a.flags.send_old_password).boolean(16, a.flags.allow_mapping_conflicts)
        .u64(20, a.retry_count).u64(21, a.retry_delay).u64(22, a.max_age).u64(23, a.concurrency).u64(24, a.timeout);
    for (const auto& [k, v] : a.properties) e.bytes(30, pair(k, v));
    for (const auto& [k, v] : r.sealed) e.bytes(31, pair(k, v));
    e.str(40, a.group).i64(50, micros(a.created)).i64(51, micros(a.updated));
    return e.take();
}

Result<AdapterRecord> decode_adapter(std::string_view data) {
    AdapterRecord r;
    Adapter& a = r.adapter;
    auto st = codec::decode(data, kFormat, "adapter", [&](std::uint32_t tag, std::string_view v) -> Status {
        switch (tag) {
            case 1: return set(a.name, v);
            case 2: return set(a.type, v);
            case 3: return set(a.description, v);
            case 10: return set(a.flags.enabled, v);
            case 11: return set(a.flags.sync_to_adapter, v);
            case 12: return set(a.flags.sync_from_adapter, v);
            case 13: return set(a.flags.change_windows_password, v);
            case 14: return set(a.flags.verify_old_password, v);
            case 15: return set(a.flags.send_old_password, v);
            case 16: return set(a.flags.allow_mapping_conflicts, v);
            case 20: return set(a.retry_count, v);
            case 21: return set(a.retry_delay, v);
            case 22: return set(a.max_age, v);
            case 23: return set(a.concurrency, v);
            case 24: return set(a.timeout, v);
            case 30: case 31: {
                std::string key, value;
                if (auto s = unpair(v, key, value); !s) return s;
                if (tag == 30) a.properties[key] = std::move(value);
                else r.sealed[key] = std::move(value);
                return {};
            }
            case 40: return set(a.group, v);
            case 50: return set(a.created, v);
            case 51: return set(a.updated, v);
            default: return {};
        }
    });
    if (!st) return std::unexpected(st.error());
    for (const auto& kv : r.sealed) a.secret_properties.push_back(kv.first);
    return r;
}

std::string encode(const Group& g) {
    return Encoder(kFormat).str(1, g.name).str(2, g.description).i64(3, micros(g.created)).take();
}

Result<Group> decode_group(std::string_view data) {
    Group g;
    auto st = codec::decode(data, kFormat, "group", [&](std::uint32_t tag, std::string_view v) -> Status {
        switch (tag) {
            case 1: return set(g.name, v);
            case 2: return set(g.description, v);
            case 3: return set(g.created, v);
            default: return {};
        }
    });
    if (!st) return std::unexpected(st.error());
    return g;
}

std::string encode(const MappingRecord& r) {
    const Mapping& m = r.mapping;
    Encoder e(kFormat);
    // awaiting-change has a tag of its own: a release that predates it
    // reads such a mapping as ok instead of refusing the status value.
    const bool awaiting = m.status == MappingStatus::awaiting_change;
    e.str(1, m.app).str(2, m.windows).str(3, m.external).boolean(4, m.enabled)
        .u64(5, static_cast<std::uint64_t>(awaiting ? MappingStatus::ok : m.status)).str(6, m.object_guid);
    if (!r.sealed_credential.empty()) e.bytes(7, r.sealed_credential);
    e.i64(8, micros(m.created)).i64(9, micros(m.updated)).i64(10, micros(m.credential_updated));
    if (!m.rule.empty()) e.str(11, m.rule);  // absent: hand-made (and every record before rules)
    if (awaiting) e.boolean(12, true);
    return e.take();
}

Result<MappingRecord> decode_mapping(std::string_view data) {
    MappingRecord r;
    Mapping& m = r.mapping;
    auto st = codec::decode(data, kFormat, "mapping", [&](std::uint32_t tag, std::string_view v) -> Status {
        switch (tag) {
            case 1: return set(m.app, v);
            case 2: return set(m.windows, v);
            case 3: return set(m.external, v);
            case 4: return set(m.enabled, v);
            case 5: return set_enum(m.status, v, static_cast<std::uint32_t>(MappingStatus::awaiting_change));
            case 6: return set(m.object_guid, v);
            case 7: return set(r.sealed_credential, v);
            case 8: return set(m.created, v);
            case 9: return set(m.updated, v);
            case 10: return set(m.credential_updated, v);
            case 11: return set(m.rule, v);
            case 12: {
                bool awaiting = false;
                if (auto s = set(awaiting, v); !s) return s;
                if (awaiting) m.status = MappingStatus::awaiting_change;
                return {};
            }
            default: return {};
        }
    });
    if (!st) return std::unexpected(st.error());
    m.has_credential = !r.sealed_credential.empty();
    return r;
}

std::string encode(const Rule& r) {
    Encoder e(kFormat);
    e.str(1, r.name).str(2, r.app).str(3, r.scope.group).str(4, r.scope.base).str(5, r.scope.filter)
        .str(6, r.external).boolean(7, r.enabled).boolean(8, r.allow_external_updates)
        .i64(9, micros(r.created)).i64(10, micros(r.updated)).i64(11, micros(r.evaluated));
    for (const auto& c : r.conflicts) e.str(12, c);
    return e.take();
}

Result<Rule> decode_rule(std::string_view data) {
    Rule r;
    auto st = codec::decode(data, kFormat, "rule", [&](std::uint32_t tag, std::string_view v) -> Status {
        switch (tag) {
            case 1: return set(r.name, v);
            case 2: return set(r.app, v);
            case 3: return set(r.scope.group, v);
            case 4: return set(r.scope.base, v);
            case 5: return set(r.scope.filter, v);
            case 6: return set(r.external, v);
            case 7: return set(r.enabled, v);
            case 8: return set(r.allow_external_updates, v);
            case 9: return set(r.created, v);
            case 10: return set(r.updated, v);
            case 11: return set(r.evaluated, v);
            case 12: r.conflicts.emplace_back(v); return {};
            default: return {};
        }
    });
    if (!st) return std::unexpected(st.error());
    return r;
}

std::string encode(const PrincipalRecord& r) {
    const Principal& p = r.principal;
    return Encoder(kFormat)
        .str(1, p.name).u64(2, static_cast<std::uint64_t>(p.kind)).str(3, p.adapter)
        .u64(4, static_cast<std::uint64_t>(p.capture)).str(5, p.certificate_subject).i64(6, micros(p.created))
        .u64(10, r.secret.n).u64(11, r.secret.r).u64(12, r.secret.p).bytes(13, r.secret.salt).bytes(14, r.secret.hash)
        .take();
}

Result<PrincipalRecord> decode_principal(std::string_view data) {
    PrincipalRecord r;
    Principal& p = r.principal;
    auto st = codec::decode(data, kFormat, "principal", [&](std::uint32_t tag, std::string_view v) -> Status {
        switch (tag) {
            case 1: return set(p.name, v);
            case 2: return set_enum(p.kind, v, static_cast<std::uint32_t>(PrincipalKind::monitor));
            case 3: return set(p.adapter, v);
            case 4: return set_enum(p.capture, v, static_cast<std::uint32_t>(CaptureMode::post_commit));
            case 5: return set(p.certificate_subject, v);
            case 6: return set(p.created, v);
            case 10: return set(r.secret.n, v);
            case 11: return set(r.secret.r, v);
            case 12: return set(r.secret.p, v);
            case 13: return set(r.secret.salt, v);
            case 14: return set(r.secret.hash, v);
            default: return {};
        }
    });
    if (!st) return std::unexpected(st.error());
    return r;
}

std::string encode(const AuditRecord& a) {
    return Encoder(kFormat)
        .i64(1, micros(a.time)).str(2, a.actor).str(3, a.action).str(4, a.object).str(5, a.detail).take();
}

Result<AuditRecord> decode_audit(std::string_view data) {
    AuditRecord a;
    auto st = codec::decode(data, kFormat, "audit", [&](std::uint32_t tag, std::string_view v) -> Status {
        switch (tag) {
            case 1: return set(a.time, v);
            case 2: return set(a.actor, v);
            case 3: return set(a.action, v);
            case 4: return set(a.object, v);
            case 5: return set(a.detail, v);
            default: return {};
        }
    });
    if (!st) return std::unexpected(st.error());
    return a;
}

namespace {
void put_job(Encoder& e, const JobRecord& r) {
    const Job& j = r.job;
    e.u64(1, j.id).str(2, j.adapter).str(3, j.app).str(4, j.windows).str(5, j.external).str(6, j.origin)
        .u64(7, j.attempts).i64(8, micros(j.created)).i64(9, micros(j.next_attempt)).str(10, j.last_error)
        .bytes(11, r.sealed_password);
    if (!r.sealed_old_password.empty()) e.bytes(12, r.sealed_old_password);
}
// Fields 1..12 of a job; false when the tag is not one of them.
Status job_field(JobRecord& r, std::uint32_t tag, std::string_view v, bool& known) {
    Job& j = r.job;
    known = true;
    switch (tag) {
        case 1: return set(j.id, v);
        case 2: return set(j.adapter, v);
        case 3: return set(j.app, v);
        case 4: return set(j.windows, v);
        case 5: return set(j.external, v);
        case 6: return set(j.origin, v);
        case 7: return set(j.attempts, v);
        case 8: return set(j.created, v);
        case 9: return set(j.next_attempt, v);
        case 10: return set(j.last_error, v);
        case 11: return set(r.sealed_password, v);
        case 12: return set(r.sealed_old_password, v);
        default: known = false; return {};
    }
}
}  // namespace

std::string encode(const JobRecord& r) {
    Encoder e(kFormat);
    put_job(e, r);
    return e.take();
}

Result<JobRecord> decode_job(std::string_view data) {
    JobRecord r;
    bool known = false;
    auto st = codec::decode(data, kFormat, "job", [&](std::uint32_t tag, std::string_view v) {
        return job_field(r, tag, v, known);
    });
    if (!st) return std::unexpected(st.error());
    r.job.has_old_password = !r.sealed_old_password.empty();
    return r;
}

std::string encode(const DeadRecord& r) {
    Encoder e(kFormat);
    put_job(e, r.job);
    e.str(30, r.reason).i64(31, micros(r.died));
    return e.take();
}

Result<DeadRecord> decode_dead(std::string_view data) {
    DeadRecord r;
    bool known = false;
    auto st = codec::decode(data, kFormat, "dead letter", [&](std::uint32_t tag, std::string_view v) -> Status {
        PWSYNC_TRY(job_field(r.job, tag, v, known));
        if (known) return {};
        if (tag == 30) return set(r.reason, v);
        if (tag == 31) return set(r.died, v);
        return {};
    });
    if (!st) return std::unexpected(st.error());
    r.job.job.has_old_password = !r.job.sealed_old_password.empty();
    return r;
}

std::string encode(const PendingRecord& r) {
    const PendingCapture& c = r.capture;
    return Encoder(kFormat)
        .u64(1, c.id).str(2, c.account).str(3, c.principal).i64(4, micros(c.created)).i64(5, micros(c.expires))
        .bytes(6, r.sealed_password).take();
}

Result<PendingRecord> decode_pending(std::string_view data) {
    PendingRecord r;
    PendingCapture& c = r.capture;
    auto st = codec::decode(data, kFormat, "pending capture", [&](std::uint32_t tag, std::string_view v) -> Status {
        switch (tag) {
            case 1: return set(c.id, v);
            case 2: return set(c.account, v);
            case 3: return set(c.principal, v);
            case 4: return set(c.created, v);
            case 5: return set(c.expires, v);
            case 6: return set(r.sealed_password, v);
            default: return {};
        }
    });
    if (!st) return std::unexpected(st.error());
    return r;
}

std::string encode(const AccountNames& a) {
    return Encoder(kFormat)
        .str(1, a.guid).str(2, a.sam).str(3, a.domain).str(4, a.upn).str(5, a.dn).boolean(6, a.deleted)
        .i64(7, micros(a.updated)).take();
}

Result<AccountNames> decode_account(std::string_view data) {
    AccountNames a;
    auto st = codec::decode(data, kFormat, "account", [&](std::uint32_t tag, std::string_view v) -> Status {
        switch (tag) {
            case 1: return set(a.guid, v);
            case 2: return set(a.sam, v);
            case 3: return set(a.domain, v);
            case 4: return set(a.upn, v);
            case 5: return set(a.dn, v);
            case 6: return set(a.deleted, v);
            case 7: return set(a.updated, v);
            default: return {};
        }
    });
    if (!st) return std::unexpected(st.error());
    return a;
}

std::string encode(const Marker& m) { return Encoder(kFormat).str(1, m.origin).i64(2, micros(m.expires)).take(); }

Result<Marker> decode_marker(std::string_view data) {
    Marker m;
    auto st = codec::decode(data, kFormat, "marker", [&](std::uint32_t tag, std::string_view v) -> Status {
        if (tag == 1) return set(m.origin, v);
        if (tag == 2) return set(m.expires, v);
        return {};
    });
    if (!st) return std::unexpected(st.error());
    return m;
}

}  // namespace pwsync::store::records
