// Transaction handles, settings, audit and counts.
#include "codec.h"
#include "impl.h"

namespace pwsync::store {

ReadTxn::ReadTxn(std::unique_ptr<TxnState> state) : s_(std::move(state)) {}
ReadTxn::ReadTxn(ReadTxn&&) noexcept = default;
ReadTxn& ReadTxn::operator=(ReadTxn&&) noexcept = default;
ReadTxn::~ReadTxn() = default;
WriteTxn::WriteTxn(WriteTxn&&) noexcept = default;
WriteTxn& WriteTxn::operator=(WriteTxn&&) noexcept = default;
WriteTxn::~WriteTxn() = default;

Status WriteTxn::commit(Durability d) {
    // Inside Store::transact the store commits once every body of the
    // batch has run; the contract says a body does not commit.
    if (s_->in_unit) return {};
    if (!s_->store->backend->defers_commits()) d = Durability::durable;
    PWSYNC_TRY(s_->kv().commit(d));
    ++s_->store->commits;
    if (d == Durability::durable) ++s_->store->durable_commits;
    return {};
}

Status WriteTxn::require_lease(std::string_view instance, std::uint64_t epoch) {
    return s_->kv().check_lease(instance, epoch);
}

const char* sync_mode_name(SyncMode m) noexcept {
    switch (m) {
        case SyncMode::windows: return "windows";
        case SyncMode::partial: return "partial";
        case SyncMode::full: return "full";
    }
    return "?";
}

std::optional<SyncMode> parse_sync_mode(std::string_view s) noexcept {
    if (s == "windows") return SyncMode::windows;
    if (s == "partial") return SyncMode::partial;
    if (s == "full") return SyncMode::full;
    return std::nullopt;
}

namespace {
std::string sync_setting(SyncMode m) { return std::string("sync.") + sync_mode_name(m); }
}  // namespace

Result<SyncSettings> ReadTxn::sync_settings() const {
    SyncSettings out;
    for (auto [mode, flag] : {std::pair{SyncMode::windows, &out.windows}, std::pair{SyncMode::partial, &out.partial},
                              std::pair{SyncMode::full, &out.full}}) {
        PWSYNC_ASSIGN(auto v, s_->kv().get(s_->db().settings, sync_setting(mode)));
        if (v) {
            PWSYNC_ASSIGN(*flag, codec::as_bool(*v));
        }
    }
    return out;
}

Status WriteTxn::set_sync(SyncMode mode, bool enabled) {
    std::string v;
    codec::put_varint(v, enabled ? 1 : 0);
    PWSYNC_TRY(s_->kv().put(s_->db().settings, sync_setting(mode), v));
    return audit(enabled ? "sync.enable" : "sync.disable", sync_mode_name(mode));
}

Status WriteTxn::audit(std::string_view action, std::string_view object, std::string_view detail) {
    if (s_->last_audit == 0) {
        PWSYNC_ASSIGN(auto last, s_->kv().last_key(s_->db().audit));
        if (last) s_->last_audit = audit_id(*last);
    }
    // Ids are the time in microseconds, bumped to stay unique and increasing
    // even when the clock steps back.
    const auto now = s_->now();
    const auto micros = static_cast<std::uint64_t>(std::max<std::int64_t>(0, to_unix_micros(now)));
    const std::uint64_t id = std::max(micros, s_->last_audit + 1);
    s_->last_audit = id;
    AuditRecord rec{id, now, s_->actor, std::string(action), std::string(object), std::string(detail)};
    return s_->kv().put(s_->db().audit, audit_key(id), records::encode(rec));
}

Result<std::vector<AuditRecord>> ReadTxn::audit(TimePoint since, std::size_t limit) const {
    std::vector<AuditRecord> out;
    const auto from = static_cast<std::uint64_t>(std::max<std::int64_t>(0, to_unix_micros(since)));
    PWSYNC_TRY(s_->kv().scan(
        s_->db().audit, "",
        [&](std::string_view k, std::string_view v) -> Result<bool> {
            PWSYNC_ASSIGN(auto rec, records::decode_audit(v));
            rec.id = audit_id(k);
            out.push_back(std::move(rec));
            return limit == 0 || out.size() < limit;
        },
        from == 0 ? std::string_view{} : std::string_view(audit_key(from))));
    return out;
}

Result<Counts> ReadTxn::counts() const {
    Counts c;
    const Dbs& d = s_->db();
    for (auto [dbi, n] : {std::pair{d.apps, &c.apps}, std::pair{d.adapters, &c.adapters}, std::pair{d.groups, &c.groups},
                          std::pair{d.mappings, &c.mappings}, std::pair{d.principals, &c.principals},
                          std::pair{d.audit, &c.audit}, std::pair{d.outbox, &c.jobs}, std::pair{d.dead, &c.dead_letters},
                          std::pair{d.pending, &c.pending}, std::pair{d.markers, &c.markers},
                          std::pair{d.rules, &c.rules}}) {
        PWSYNC_ASSIGN(*n, s_->kv().entries(dbi));
    }
    return c;
}

Result<std::size_t> ReadTxn::queued_jobs() const { return s_->kv().entries(s_->db().outbox); }

}  // namespace pwsync::store
