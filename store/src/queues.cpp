// The gateway's durable state: outbox jobs, dead letters, pending captures,
// damping/echo markers and watcher cursors.
#include <algorithm>

#include "codec.h"
#include "impl.h"
#include "sealed_fields.h"

namespace pwsync::store {
namespace {

std::string id_key(std::uint64_t id) { return audit_key(id); }

std::string target_prefix(std::string_view adapter, std::string_view external) {
    return ascii_lower(adapter) + '\0' + ascii_lower(external) + '\0';
}

// Sealed values of a job keep the same context in the outbox and among the
// dead letters, so moving a job between them needs no re-sealing.
using sealed::job_context;
using sealed::pending_context;

Result<records::JobRecord> load_job(const TxnState& s, std::uint64_t id) {
    return load(s, s.db().outbox, id_key(id), records::decode_job, "no job " + std::to_string(id) + " in the outbox");
}

Result<records::DeadRecord> load_dead(const TxnState& s, std::uint64_t id) {
    return load(s, s.db().dead, id_key(id), records::decode_dead, "no dead letter " + std::to_string(id));
}

Result<std::uint64_t> next_id(TxnState& s) { return s.kv().next_id(Sequence::ids); }

Status put_job(TxnState& s, const records::JobRecord& r) {
    PWSYNC_TRY(s.kv().put(s.db().outbox, id_key(r.job.id), records::encode(r)));
    return s.kv().put(s.db().outbox_by_target, target_prefix(r.job.adapter, r.job.external) + id_key(r.job.id), "");
}

Status drop_job(TxnState& s, const Job& j) {
    PWSYNC_TRY(s.kv().del(s.db().outbox, id_key(j.id)));
    return s.kv().del(s.db().outbox_by_target, target_prefix(j.adapter, j.external) + id_key(j.id));
}

std::string describe(const Job& j) {
    return "job " + std::to_string(j.id) + " " + j.adapter + ":" + j.external;
}

// Markers are found by a keyed hash of (account, password), so the store
// never holds anything a password could be recovered or guessed from offline
// without the master key.
Result<MarkerPlace> marker_place(const TxnState& s, std::string_view account, std::string_view password) {
    const crypto::Key* key = s.ring->find(s.ring->current);
    if (key == nullptr) return fail(Errc::internal, "the current key is missing from the key ring");
    std::string data = ascii_lower(account);
    data.push_back('\0');
    data.append(password);
    auto mac = crypto::hmac_sha256(key->marker_key(), data);
    wipe(data.data(), data.size());
    if (!mac) return std::unexpected(mac.error());
    return MarkerPlace{std::move(*mac)};
}

// A credential the delivery worker sealed ahead is stored as it is only when
// it is this mapping's and sealed under the current key: a key rotation may
// have come in between.
bool usable(const TxnState& s, const SealedCredential* ahead, const MappingKey& key) {
    if (ahead == nullptr) return false;
    const auto sealed_under = crypto::sealed_key_id(ahead->sealed);
    return sealed_under && *sealed_under == s.ring->current &&
           mapping_key(ahead->mapping.app, ahead->mapping.windows) == mapping_key(key.app, key.windows);
}

std::string marker_key(MarkerKind kind, const MarkerPlace& place) {
    return std::string(1, kind == MarkerKind::damping ? 'd' : 'e') + place.mac;
}

}  // namespace

Status settle_mapping_jobs(TxnState& s, WriteTxn& w, const Mapping& m, const std::string* external) {
    PWSYNC_ASSIGN(auto app_there, s.kv().get(s.db().apps, app_key(m.app)));
    if (!app_there) return {};
    PWSYNC_ASSIGN(App a, w.app(m.app));
    if (a.adapter.empty()) return {};
    // The jobs are indexed by their target: the app's adapter and the old id.
    PWSYNC_ASSIGN(auto queued, w.jobs_for_target(a.adapter, m.external));
    for (const Job& j : queued) {
        if (ascii_lower(j.app) != ascii_lower(m.app) || ascii_lower(j.windows) != ascii_lower(m.windows)) continue;
        PWSYNC_ASSIGN(auto r, load_job(s, j.id));
        PWSYNC_TRY(drop_job(s, r.job));
        if (external == nullptr) {
            PWSYNC_TRY(w.audit("job.dropped", describe(r.job), "its mapping was deleted before delivery"));
            continue;
        }
        r.job.external = *external;
        PWSYNC_TRY(put_job(s, r));
        PWSYNC_TRY(w.audit("job.retarget", describe(r.job), "its mapping's external user changed from " + j.external));
    }
    return {};
}

// --------------------------------------------------------------- reading

Result<Job> ReadTxn::job(std::uint64_t id) const {
    PWSYNC_ASSIGN(auto r, load_job(*s_, id));
    return std::move(r.job);
}

Status ReadTxn::prefetch_jobs(std::span<const Job> jobs) const {
    std::vector<std::pair<Table, std::string>> keys;
    keys.reserve(2 * jobs.size());
    for (const Job& j : jobs) {
        keys.emplace_back(s_->db().outbox, id_key(j.id));
        keys.emplace_back(s_->db().mappings, mapping_key(j.app, j.windows));
    }
    return s_->kv().prefetch(keys);
}

Result<std::vector<Job>> ReadTxn::jobs(std::string_view adapter) const {
    std::vector<Job> out;
    const std::string want = ascii_lower(adapter);
    PWSYNC_TRY(s_->kv().scan(s_->db().outbox, "", [&](std::string_view, std::string_view v) -> Result<bool> {
        PWSYNC_ASSIGN(auto r, records::decode_job(v));
        if (want.empty() || ascii_lower(r.job.adapter) == want) out.push_back(std::move(r.job));
        return true;
    }));
    return out;
}

Result<std::vector<Job>> ReadTxn::jobs_for_target(std::string_view adapter, std::string_view external) const {
    std::vector<Job> out;
    const std::string prefix = target_prefix(adapter, external);
    PWSYNC_TRY(s_->kv().scan(s_->db().outbox_by_target, prefix, [&](std::string_view k, std::string_view) -> Result<bool> {
        PWSYNC_ASSIGN(auto r, load_job(*s_, audit_id(k.substr(prefix.size()))));
        out.push_back(std::move(r.job));
        return true;
    }));
    return out;
}

Result<std::vector<std::string>> ReadTxn::target_adapters() const {
    std::vector<std::string> out;
    std::string from;  // the first key after every key of the last adapter found
    for (;;) {
        std::optional<std::string> found;
        PWSYNC_TRY(s_->kv().scan(s_->db().outbox_by_target, "", [&](std::string_view k, std::string_view) -> Result<bool> {
            const auto sep = k.find('\0');
            if (sep == std::string_view::npos) return fail(Errc::corrupt, "the outbox index has a malformed key");
            found = std::string(k.substr(0, sep));
            return false;
        }, from));
        if (!found) return out;
        // Every key of this adapter starts with name \0: the next adapter's
        // keys come at or after name \1.
        from = *found + '\1';
        out.push_back(std::move(*found));
    }
}

Status ReadTxn::for_each_target(const TargetVisitor& visit, std::string_view adapter) const {
    std::string current;  // lower(adapter) \0 lower(external) \0 of the group being collected
    std::vector<std::uint64_t> ids;
    bool stop = false;
    auto flush = [&]() -> Status {
        if (ids.empty()) return {};
        const auto sep = current.find('\0');
        PWSYNC_ASSIGN(bool more, visit(std::string_view(current).substr(0, sep),
                                       std::string_view(current).substr(sep + 1, current.size() - sep - 2), ids));
        ids.clear();
        stop = !more;
        return {};
    };
    constexpr std::size_t kIdSize = 8;
    const std::string only = adapter.empty() ? std::string() : std::string(adapter) + '\0';
    auto scanned = s_->kv().scan(s_->db().outbox_by_target, only, [&](std::string_view k, std::string_view) -> Result<bool> {
        const std::string_view prefix = k.substr(0, k.size() - std::min(k.size(), kIdSize));
        if (k.size() < kIdSize + 2 || prefix.find('\0') == std::string_view::npos || prefix.back() != '\0')
            return fail(Errc::corrupt, "the outbox index has a malformed key");
        if (prefix != current) {
            PWSYNC_TRY(flush());
            if (stop) return false;
            current.assign(prefix);
        }
        ids.push_back(audit_id(k.substr(prefix.size())));
        return true;
    });
    if (!scanned) return scanned;
    if (!stop) PWSYNC_TRY(flush());
    return {};
}

Result<Secret> ReadTxn::job_password(std::uint64_t id) const {
    PWSYNC_ASSIGN(auto r, load_job(*s_, id));
    return s_->open_sealed(r.sealed_password, job_context(id, "password"));
}

Result<Secret> ReadTxn::job_old_password(std::uint64_t id) const {
    PWSYNC_ASSIGN(auto r, load_job(*s_, id));
    if (r.sealed_old_password.empty()) return fail(Errc::not_found, "job " + std::to_string(id) + " has no old password");
    return s_->open_sealed(r.sealed_old_password, job_context(id, "old-password"));
}

Result<std::vector<DeadLetter>> ReadTxn::dead_letters() const {
    PWSYNC_ASSIGN(auto recs, load_all(*s_, s_->db().dead, records::decode_dead));
    std::vector<DeadLetter> out;
    for (auto& r : recs) out.push_back({std::move(r.job.job), std::move(r.reason), r.died});
    return out;
}

Result<std::vector<PendingCapture>> ReadTxn::pending_captures(std::string_view account) const {
    PWSYNC_ASSIGN(auto recs, load_all(*s_, s_->db().pending, records::decode_pending));
    std::vector<PendingCapture> out;
    for (auto& r : recs)
        if (account.empty() || ascii_lower(r.capture.account) == ascii_lower(account)) out.push_back(std::move(r.capture));
    return out;
}

Result<Secret> ReadTxn::pending_password(std::uint64_t id) const {
    PWSYNC_ASSIGN(auto r, load(*s_, s_->db().pending, id_key(id), records::decode_pending,
                               "no pending capture " + std::to_string(id)));
    return s_->open_sealed(r.sealed_password, pending_context(id));
}

Result<MarkerPlace> ReadTxn::marker_place(std::string_view account, std::string_view password) const {
    return store::marker_place(*s_, account, password);
}

Result<std::optional<Marker>> ReadTxn::marker(MarkerKind kind, std::string_view account, std::string_view password,
                                              TimePoint now) const {
    PWSYNC_ASSIGN(auto place, marker_place(account, password));
    return marker(kind, place, now);
}

Result<std::optional<Marker>> ReadTxn::marker(MarkerKind kind, const MarkerPlace& place, TimePoint now) const {
    // A change reads both kinds of its place: one round trip for the two.
    const std::pair<Table, std::string> both[] = {{s_->db().markers, marker_key(MarkerKind::damping, place)},
                                                  {s_->db().markers, marker_key(MarkerKind::echo, place)}};
    PWSYNC_TRY(s_->kv().prefetch(both));
    PWSYNC_ASSIGN(auto v, s_->kv().get(s_->db().markers, marker_key(kind, place)));
    if (!v) return std::optional<Marker>{};
    PWSYNC_ASSIGN(auto m, records::decode_marker(*v));
    if (m.expires <= now) return std::optional<Marker>{};
    return std::optional<Marker>{std::move(m)};
}

Result<std::optional<std::string>> ReadTxn::cursor(std::string_view name) const {
    PWSYNC_ASSIGN(auto v, s_->kv().get(s_->db().cursors, name));
    if (!v) return std::optional<std::string>{};
    return std::optional<std::string>{std::string(*v)};
}

// --------------------------------------------------------------- writing

Result<std::uint64_t> WriteTxn::enqueue_job(Job job, const Secret& password, const Secret* old_password) {
    PWSYNC_ASSIGN(job.id, next_id(*s_));
    job.created = s_->now();
    if (job.next_attempt == TimePoint{}) job.next_attempt = job.created;
    records::JobRecord r{job, {}, {}};
    PWSYNC_ASSIGN(r.sealed_password, s_->seal(password.view(), job_context(job.id, "password")));
    if (old_password != nullptr) {
        PWSYNC_ASSIGN(r.sealed_old_password, s_->seal(old_password->view(), job_context(job.id, "old-password")));
    }
    r.job.has_old_password = old_password != nullptr;
    PWSYNC_TRY(put_job(*s_, r));
    PWSYNC_TRY(audit("job.queued", describe(job), "mapping=" + job.app + "/" + job.windows + " from=" + job.origin));
    return job.id;
}

Status WriteTxn::job_delivered(std::uint64_t id, const SealedCredential* ahead) {
    PWSYNC_ASSIGN(auto r, load_job(*s_, id));
    PWSYNC_TRY(drop_job(*s_, r.job));
    // The mapping may have gone meanwhile; the delivery still happened. A
    // credential stored after this job was queued is newer: keep it.
    PWSYNC_ASSIGN(auto mapping_there, s_->kv().get(s_->db().mappings, mapping_key(r.job.app, r.job.windows)));
    if (mapping_there) {
        PWSYNC_ASSIGN(auto m, records::decode_mapping(*mapping_there));
        if (m.mapping.credential_updated <= r.job.created) {
            const MappingKey key{r.job.app, r.job.windows};
            if (usable(*s_, ahead, key)) {
                PWSYNC_TRY(put_sealed_credential(*s_, *this, key, ahead->sealed));
            } else {
                PWSYNC_ASSIGN(Secret pw, s_->open_sealed(r.sealed_password, job_context(id, "password")));
                PWSYNC_TRY(set_mapping_credential(key, pw));
            }
        }
    }
    return audit("job.delivered", describe(r.job), "attempts=" + std::to_string(r.job.attempts + 1));
}

Status WriteTxn::job_retry(std::uint64_t id, TimePoint next_attempt, std::string_view error) {
    PWSYNC_ASSIGN(auto r, load_job(*s_, id));
    r.job.attempts += 1;
    r.job.next_attempt = next_attempt;
    r.job.last_error = error;
    PWSYNC_TRY(put_job(*s_, r));
    return audit("job.retry", describe(r.job),
                 "attempt " + std::to_string(r.job.attempts) + " failed: " + std::string(error) + "; next " +
                     format_iso8601(next_attempt));
}

Status WriteTxn::job_superseded(std::uint64_t id, std::uint64_t by) {
    PWSYNC_ASSIGN(auto r, load_job(*s_, id));
    PWSYNC_TRY(drop_job(*s_, r.job));
    return audit("job.superseded", describe(r.job), "by job " + std::to_string(by));
}

Status WriteTxn::job_dead(std::uint64_t id, std::string_view reason) {
    PWSYNC_ASSIGN(auto r, load_job(*s_, id));
    PWSYNC_TRY(drop_job(*s_, r.job));
    records::DeadRecord d{r, std::string(reason), s_->now()};
    PWSYNC_TRY(s_->kv().put(s_->db().dead, id_key(id), records::encode(d)));
    return audit("job.dead", describe(r.job), reason);
}

Status WriteTxn::dead_letter_retry(std::uint64_t id) {
    PWSYNC_ASSIGN(auto d, load_dead(*s_, id));
    PWSYNC_TRY(s_->kv().del(s_->db().dead, id_key(id)));
    d.job.job.attempts = 0;
    d.job.job.created = s_->now();  // max-age counts from the requeue
    d.job.job.next_attempt = s_->now();
    d.job.job.last_error.clear();
    PWSYNC_TRY(put_job(*s_, d.job));
    return audit("job.requeued", describe(d.job.job));
}

Status WriteTxn::dead_letter_drop(std::uint64_t id) {
    PWSYNC_ASSIGN(auto d, load_dead(*s_, id));
    PWSYNC_TRY(s_->kv().del(s_->db().dead, id_key(id)));
    return audit("job.dropped", describe(d.job.job), d.reason);
}

Result<std::uint64_t> WriteTxn::add_pending_capture(PendingCapture c, const Secret& password) {
    PWSYNC_ASSIGN(c.id, next_id(*s_));
    c.created = s_->now();
    records::PendingRecord r{c, {}};
    PWSYNC_ASSIGN(r.sealed_password, s_->seal(password.view(), pending_context(c.id)));
    PWSYNC_TRY(s_->kv().put(s_->db().pending, id_key(c.id), records::encode(r)));
    PWSYNC_TRY(audit("capture.pending", c.account, "from " + c.principal + " until " + format_iso8601(c.expires)));
    return c.id;
}

Status WriteTxn::remove_pending_capture(std::uint64_t id, std::string_view why, std::string_view note) {
    PWSYNC_ASSIGN(auto r, load(*s_, s_->db().pending, id_key(id), records::decode_pending,
                               "no pending capture " + std::to_string(id)));
    PWSYNC_TRY(s_->kv().del(s_->db().pending, id_key(id)));
    return audit("capture." + std::string(why), r.capture.account,
                 "capture " + std::to_string(id) + (note.empty() ? "" : "; " + std::string(note)));
}

Status WriteTxn::set_marker(MarkerKind kind, std::string_view account, std::string_view password, const Marker& m) {
    PWSYNC_ASSIGN(auto place, marker_place(account, password));
    return set_marker(kind, place, m);
}

Status WriteTxn::set_marker(MarkerKind kind, const MarkerPlace& place, const Marker& m) {
    return s_->kv().put(s_->db().markers, marker_key(kind, place), records::encode(m));
}

Result<std::size_t> WriteTxn::purge_markers(TimePoint now, bool all) {
    std::vector<std::string> gone;
    PWSYNC_TRY(s_->kv().scan(s_->db().markers, "", [&](std::string_view k, std::string_view v) -> Result<bool> {
        auto m = records::decode_marker(v);
        if (all || !m || m->expires <= now) gone.emplace_back(k);
        return true;
    }));
    for (const auto& k : gone) PWSYNC_TRY(s_->kv().del(s_->db().markers, k));
    return gone.size();
}

Status WriteTxn::set_cursor(std::string_view name, std::string_view value) {
    return s_->kv().put(s_->db().cursors, name, value);
}

}  // namespace pwsync::store
