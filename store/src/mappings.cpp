// Mappings: (application, Windows account) -> external user and its sealed
// credential, with two indexes kept in the same transaction as the record.
#include "conflicts.h"
#include "impl.h"

namespace pwsync::store {

const char* mapping_status_name(MappingStatus s) noexcept {
    switch (s) {
        case MappingStatus::ok: return "ok";
        case MappingStatus::stale: return "stale";
        case MappingStatus::awaiting_change: return "awaiting-change";
    }
    return "?";
}

namespace {

std::string describe(const MappingKey& k) { return k.app + "/" + k.windows; }

Result<records::MappingRecord> load_mapping(const TxnState& s, const MappingKey& k) {
    return load(s, s.db().mappings, mapping_key(k.app, k.windows), records::decode_mapping,
                "no mapping for Windows account " + quote(k.windows) + " in application " + quote(k.app));
}

bool matches(const Mapping& m, const MappingFilter& f) {
    if (f.app && ascii_lower(*f.app) != ascii_lower(m.app)) return false;
    if (f.windows && ascii_lower(*f.windows) != ascii_lower(m.windows)) return false;
    if (f.external && ascii_lower(*f.external) != ascii_lower(m.external)) return false;
    return true;
}

}  // namespace

Result<Mapping> ReadTxn::mapping(const MappingKey& key) const {
    PWSYNC_ASSIGN(auto rec, load_mapping(*s_, key));
    return std::move(rec.mapping);
}

Status ReadTxn::for_each_mapping(const MappingFilter& filter, const std::function<bool(const Mapping&)>& visit) const {
    auto each = [&](std::string_view, std::string_view v) -> Result<bool> {
        PWSYNC_ASSIGN(auto rec, records::decode_mapping(v));
        if (!matches(rec.mapping, filter)) return true;
        return visit(rec.mapping);
    };
    if (filter.app) return s_->kv().scan(s_->db().mappings, app_key(*filter.app) + '\0', each);
    if (filter.windows) {
        // The index by Windows account names the applications; load each mapping.
        const std::string prefix = ascii_lower(*filter.windows) + '\0';
        return s_->kv().scan(s_->db().map_by_win, prefix, [&](std::string_view k, std::string_view) -> Result<bool> {
            const std::string key = std::string(k.substr(prefix.size())) + '\0' + ascii_lower(*filter.windows);
            PWSYNC_ASSIGN(auto v, s_->kv().get(s_->db().mappings, key));
            if (!v) return fail(Errc::corrupt, "the Windows account index names a missing mapping");
            return each(key, *v);
        });
    }
    return s_->kv().scan(s_->db().mappings, "", each);
}

Result<std::vector<Mapping>> ReadTxn::mappings(const MappingFilter& filter) const {
    std::vector<Mapping> out;
    PWSYNC_TRY(for_each_mapping(filter, [&](const Mapping& m) {
        out.push_back(m);
        return true;
    }));
    return out;
}

Result<std::vector<Mapping>> ReadTxn::mappings_by_external(std::string_view app, std::string_view external) const {
    std::vector<Mapping> out;
    const std::string prefix = ascii_lower(app) + '\0' + ascii_lower(external) + '\0';
    PWSYNC_TRY(s_->kv().scan(s_->db().map_by_ext, prefix, [&](std::string_view k, std::string_view) -> Result<bool> {
        PWSYNC_ASSIGN(auto v, s_->kv().get(s_->db().mappings, mapping_key(app, k.substr(prefix.size()))));
        if (!v) return fail(Errc::corrupt, "the external user index names a missing mapping");
        PWSYNC_ASSIGN(auto rec, records::decode_mapping(*v));
        out.push_back(std::move(rec.mapping));
        return true;
    }));
    return out;
}

Result<Secret> ReadTxn::mapping_credential(const MappingKey& key) const {
    PWSYNC_ASSIGN(auto rec, load_mapping(*s_, key));
    if (rec.sealed_credential.empty())
        return fail(Errc::not_found, "no credential is stored for mapping " + describe(key));
    return s_->open_sealed(rec.sealed_credential, credential_context(key));
}

Status check_external_user(std::string_view id) { return check_name("external user", id); }

Status WriteTxn::create_mapping(Mapping m) {
    PWSYNC_TRY(check_name("Windows account", m.windows));
    PWSYNC_TRY(check_name("external user", m.external));
    PWSYNC_ASSIGN(App a, app(m.app));
    m.app = a.name;
    const std::string key = mapping_key(m.app, m.windows);
    PWSYNC_ASSIGN(auto existing, s_->kv().get(s_->db().mappings, key));
    if (existing)
        return fail(Errc::already_exists,
                    "Windows account " + quote(m.windows) + " is already mapped in application " + quote(a.name));
    bool allow_conflicts = false;
    if (!a.adapter.empty()) {
        PWSYNC_ASSIGN(Adapter ad, adapter(a.adapter));
        allow_conflicts = ad.flags.allow_mapping_conflicts;
    }
    if (!allow_conflicts) {
        PWSYNC_ASSIGN(auto scope, conflicts::scope(*s_, a));
        PWSYNC_TRY(conflicts::check_free(*s_, scope, m.external, m.app, m.windows, a.adapter));
    }
    m.object_guid = ascii_lower(m.object_guid);
    if (m.object_guid.empty()) {
        // An account the store knows already: resolved without the directory.
        PWSYNC_ASSIGN(auto known, account(m.windows));
        if (known) m.object_guid = known->guid;
    }
    m.has_credential = false;
    m.status = MappingStatus::ok;
    m.created = m.updated = s_->now();
    m.credential_updated = {};
    PWSYNC_TRY(s_->kv().put(s_->db().mappings, key, records::encode(records::MappingRecord{m, {}})));
    PWSYNC_TRY(s_->kv().put(s_->db().map_by_ext, ext_index_key(m.app, m.external, m.windows), ""));
    PWSYNC_TRY(s_->kv().put(s_->db().map_by_win, win_index_key(m.windows, m.app), ""));
    PWSYNC_TRY(index_mapping_account(*s_, m));
    return audit("mapping.create", describe({m.app, m.windows}),
                 "external=" + m.external + (m.enabled ? "" : " disabled") +
                     (m.object_guid.empty() ? " (account not resolved yet)" : " objectGUID=" + m.object_guid) +
                     (m.rule.empty() ? "" : " rule=" + m.rule));
}

Status WriteTxn::delete_mapping(const MappingKey& key) {
    PWSYNC_ASSIGN(auto rec, load_mapping(*s_, key));
    const Mapping& m = rec.mapping;
    PWSYNC_TRY(settle_mapping_jobs(*s_, *this, m, nullptr));
    PWSYNC_TRY(s_->kv().del(s_->db().mappings, mapping_key(m.app, m.windows)));
    PWSYNC_TRY(s_->kv().del(s_->db().map_by_ext, ext_index_key(m.app, m.external, m.windows)));
    PWSYNC_TRY(s_->kv().del(s_->db().map_by_win, win_index_key(m.windows, m.app)));
    PWSYNC_TRY(unindex_mapping_account(*s_, m));
    return audit("mapping.delete", describe({m.app, m.windows}), "external=" + m.external);
}

namespace {
// Loads a mapping, lets `change` edit it, stores it, and audits `action`.
template <class F>
Status modify(TxnState& s, WriteTxn& w, const MappingKey& key, std::string_view action, F change) {
    PWSYNC_ASSIGN(auto rec, load_mapping(s, key));
    std::string detail;
    PWSYNC_TRY(change(rec, detail));
    rec.mapping.updated = s.now();
    PWSYNC_TRY(s.kv().put(s.db().mappings, mapping_key(key.app, key.windows), records::encode(rec)));
    return w.audit(action, describe({rec.mapping.app, rec.mapping.windows}), detail);
}
}  // namespace

Status WriteTxn::set_mapping_enabled(const MappingKey& key, bool enabled) {
    return modify(*s_, *this, key, enabled ? "mapping.enable" : "mapping.disable",
                  [&](records::MappingRecord& r, std::string&) -> Status {
                      r.mapping.enabled = enabled;
                      return {};
                  });
}

std::string credential_context(const MappingKey& k) {
    return crypto::seal_context("mappings", mapping_key(k.app, k.windows), "credential");
}

Status put_sealed_credential(TxnState& s, WriteTxn& w, const MappingKey& key, std::string sealed) {
    return modify(s, w, key, "mapping.set-credentials", [&](records::MappingRecord& r, std::string&) -> Status {
        r.sealed_credential = std::move(sealed);
        r.mapping.credential_updated = s.now();
        return {};
    });
}

Status WriteTxn::set_mapping_credential(const MappingKey& key, const Secret& credential) {
    PWSYNC_ASSIGN(std::string sealed, s_->seal(credential.view(), credential_context(key)));
    return put_sealed_credential(*s_, *this, key, std::move(sealed));
}

Status WriteTxn::set_mapping_status(const MappingKey& key, MappingStatus status) {
    return modify(*s_, *this, key, std::string("mapping.") + mapping_status_name(status),
                  [&](records::MappingRecord& r, std::string&) -> Status {
                      r.mapping.status = status;
                      return {};
                  });
}

Status WriteTxn::set_mapping_guid(const MappingKey& key, std::string_view guid) {
    return modify(*s_, *this, key, "mapping.resolve", [&](records::MappingRecord& r, std::string& detail) -> Status {
        PWSYNC_TRY(unindex_mapping_account(*s_, r.mapping));
        r.mapping.object_guid = ascii_lower(guid);
        PWSYNC_TRY(index_mapping_account(*s_, r.mapping));
        detail = "objectGUID=" + std::string(guid);
        return {};
    });
}

Status WriteTxn::set_mapping_external(const MappingKey& key, std::string_view external) {
    PWSYNC_TRY(check_name("external user", external));
    PWSYNC_ASSIGN(auto cur, load_mapping(*s_, key));
    PWSYNC_ASSIGN(App a, app(cur.mapping.app));
    bool allow_conflicts = false;
    if (!a.adapter.empty()) {
        PWSYNC_ASSIGN(Adapter ad, adapter(a.adapter));
        allow_conflicts = ad.flags.allow_mapping_conflicts;
    }
    if (!allow_conflicts) {
        PWSYNC_ASSIGN(auto scope, conflicts::scope(*s_, a));
        PWSYNC_TRY(conflicts::check_free(*s_, scope, external, cur.mapping.app, cur.mapping.windows, a.adapter));
    }
    return modify(*s_, *this, key, "mapping.external", [&](records::MappingRecord& r, std::string& detail) -> Status {
        PWSYNC_TRY(s_->kv().del(s_->db().map_by_ext, ext_index_key(r.mapping.app, r.mapping.external, r.mapping.windows)));
        detail = "external=" + std::string(external) + " (was " + r.mapping.external + ")" +
                 (r.mapping.rule.empty() ? "" : " rule=" + r.mapping.rule);
        const std::string to(external);
        PWSYNC_TRY(settle_mapping_jobs(*s_, *this, r.mapping, &to));
        r.mapping.external = external;
        return s_->kv().put(s_->db().map_by_ext, ext_index_key(r.mapping.app, r.mapping.external, r.mapping.windows), "");
    });
}

Result<Secret> WriteTxn::reveal_mapping_credential(const MappingKey& key) {
    PWSYNC_ASSIGN(Secret value, mapping_credential(key));
    PWSYNC_ASSIGN(Mapping m, mapping(key));
    PWSYNC_TRY(audit("mapping.reveal", describe({m.app, m.windows})));
    return value;
}

}  // namespace pwsync::store
