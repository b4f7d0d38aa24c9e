// `pwsync store verify`: every record decodes, every secret opens, every
// index entry matches its record and every reference resolves.
#include "codec.h"
#include "impl.h"
#include "sealed_fields.h"

namespace pwsync::store {

Result<VerifyReport> Store::verify() const {
    VerifyReport rep;
    PWSYNC_ASSIGN(ReadTxn snapshot, read());
    TxnState& s = *snapshot.s_;
    const Dbs& d = s.db();
    auto problem = [&](std::string text) { rep.problems.push_back(std::move(text)); };
    auto printable = [](std::string_view k) {
        std::string out(k);
        for (char& c : out)
            if (c == '\0') c = '/';
        return out;
    };
    auto exists = [&](Table dbi, std::string_view key) -> Result<bool> {
        PWSYNC_ASSIGN(auto v, s.kv().get(dbi, key));
        return v.has_value();
    };
    auto check_secret = [&](std::string_view sealed, std::string_view ctx, const std::string& where) {
        ++rep.secrets;
        if (auto o = s.open_sealed(sealed, ctx); !o) problem(where + ": " + o.error().message);
    };

    // Settings: schema and key check.
    PWSYNC_ASSIGN(auto schema, s.kv().get(d.settings, kSettingSchema));
    if (!schema) problem("settings: no schema version");
    else if (auto v = codec::as_u64(*schema); !v || *v != kSchemaVersion) problem("settings: unexpected schema version");
    PWSYNC_ASSIGN(auto check, s.kv().get(d.settings, kSettingKeyCheck));
    if (!check) problem("settings: no key check value");
    else check_secret(*check, crypto::seal_context("settings", kSettingKeyCheck, "value"), "settings/keycheck");

    // Generic walk: decode each record, then run a per-record check.
    auto walk = [&](Table dbi, const char* name, const auto& decode, const auto& each) -> Status {
        return s.kv().scan(dbi, "", [&](std::string_view k, std::string_view v) -> Result<bool> {
            ++rep.records;
            auto rec = decode(v);
            if (!rec) {
                problem(std::string(name) + "/" + printable(k) + ": " + rec.error().message);
                return true;
            }
            PWSYNC_TRY(each(k, *rec));
            return true;
        });
    };

    PWSYNC_TRY(walk(d.apps, "apps", records::decode_app, [&](std::string_view k, const App& a) -> Status {
        if (app_key(a.name) != k) problem("apps/" + std::string(k) + ": key does not match the name");
        if (!a.adapter.empty()) {
            PWSYNC_ASSIGN(bool ok, exists(d.adapters, app_key(a.adapter)));
            if (!ok) problem("apps/" + a.name + ": names missing adapter " + a.adapter);
        }
        return {};
    }));
    auto check_sealed = [&](auto rec, std::string_view k, const std::string& where) {
        for (const auto& f : sealed::fields(rec, k))
            if (!f.value->empty()) check_secret(*f.value, f.context, where);
    };
    PWSYNC_TRY(walk(d.adapters, "adapters", records::decode_adapter, [&](std::string_view k, const records::AdapterRecord& r) -> Status {
        check_sealed(r, k, "adapters/" + r.adapter.name);
        if (!r.adapter.group.empty()) {
            PWSYNC_ASSIGN(bool ok, exists(d.groups, app_key(r.adapter.group)));
            if (!ok) problem("adapters/" + r.adapter.name + ": names missing group " + r.adapter.group);
        }
        return {};
    }));
    PWSYNC_TRY(walk(d.groups, "groups", records::decode_group, [](std::string_view, const Group&) -> Status { return {}; }));
    PWSYNC_TRY(walk(d.mappings, "mappings", records::decode_mapping, [&](std::string_view k, const records::MappingRecord& r) -> Status {
        const Mapping& m = r.mapping;
        const std::string where = "mappings/" + m.app + "/" + m.windows;
        if (mapping_key(m.app, m.windows) != k) problem(where + ": key does not match the record");
        check_sealed(r, k, where);
        PWSYNC_ASSIGN(bool app_ok, exists(d.apps, app_key(m.app)));
        if (!app_ok) problem(where + ": application does not exist");
        PWSYNC_ASSIGN(bool ext_ok, exists(d.map_by_ext, ext_index_key(m.app, m.external, m.windows)));
        if (!ext_ok) problem(where + ": missing from the external user index");
        PWSYNC_ASSIGN(bool win_ok, exists(d.map_by_win, win_index_key(m.windows, m.app)));
        if (!win_ok) problem(where + ": missing from the Windows account index");
        if (!m.object_guid.empty()) {
            PWSYNC_ASSIGN(bool guid_ok, exists(d.map_by_guid, guid_index_key(m.object_guid, m.app, m.windows)));
            if (!guid_ok) problem(where + ": missing from the objectGUID index");
        } else {
            // ReadTxn::account_mappings counts on it.
            PWSYNC_ASSIGN(bool listed, exists(d.map_unresolved, k));
            if (!listed) problem(where + ": has no objectGUID and is missing from the unresolved list");
        }
        if (!m.rule.empty()) {
            PWSYNC_ASSIGN(bool rule_ok, exists(d.rules, app_key(m.rule)));
            if (!rule_ok) problem(where + ": names missing rule " + m.rule);
        }
        return {};
    }));
    PWSYNC_TRY(walk(d.rules, "rules", records::decode_rule, [&](std::string_view k, const Rule& r) -> Status {
        if (app_key(r.name) != k) problem("rules/" + std::string(k) + ": key does not match the name");
        PWSYNC_ASSIGN(bool ok, exists(d.apps, app_key(r.app)));
        if (!ok) problem("rules/" + r.name + ": names missing application " + r.app);
        return {};
    }));
    // The account indexes: names name an account; listed mappings exist.
    PWSYNC_TRY(walk(d.accounts, "accounts", records::decode_account, [](std::string_view, const AccountNames&) -> Status { return {}; }));
    PWSYNC_TRY(s.kv().scan(d.account_names, "", [&](std::string_view k, std::string_view v) -> Result<bool> {
        PWSYNC_ASSIGN(bool ok, exists(d.accounts, v));
        if (!ok) problem("account_names/" + printable(k) + ": no matching account");
        return true;
    }));
    for (auto [dbi, name] : {std::pair{d.map_by_guid, "mappings_by_guid"}, {d.map_unresolved, "mappings_unresolved"}})
        PWSYNC_TRY(s.kv().scan(dbi, "", [&, name = name](std::string_view k, std::string_view) -> Result<bool> {
            const auto key = dbi == d.map_by_guid && k.find('\0') != std::string_view::npos ? k.substr(k.find('\0') + 1) : k;
            PWSYNC_ASSIGN(bool ok, exists(d.mappings, key));
            if (!ok) problem(std::string(name) + "/" + printable(k) + ": no matching mapping");
            return true;
        }));
    // Index entries must point back at a record that agrees with them.
    PWSYNC_TRY(s.kv().scan(d.map_by_ext, "", [&](std::string_view k, std::string_view) -> Result<bool> {
        const auto a = k.find('\0'), b = k.find('\0', a == std::string_view::npos ? 0 : a + 1);
        if (a == std::string_view::npos || b == std::string_view::npos) {
            problem("mappings_by_external/" + printable(k) + ": malformed key");
            return true;
        }
        PWSYNC_ASSIGN(auto v, s.kv().get(d.mappings, std::string(k.substr(0, a)) + '\0' + std::string(k.substr(b + 1))));
        auto rec = v ? records::decode_mapping(*v) : Result<records::MappingRecord>(fail(Errc::not_found, ""));
        if (!rec || ascii_lower(rec->mapping.external) != k.substr(a + 1, b - a - 1))
            problem("mappings_by_external/" + printable(k) + ": no matching mapping");
        return true;
    }));
    PWSYNC_TRY(s.kv().scan(d.map_by_win, "", [&](std::string_view k, std::string_view) -> Result<bool> {
        const auto a = k.find('\0');
        if (a == std::string_view::npos) {
            problem("mappings_by_windows/" + printable(k) + ": malformed key");
            return true;
        }
        PWSYNC_ASSIGN(bool ok, exists(d.mappings, std::string(k.substr(a + 1)) + '\0' + std::string(k.substr(0, a))));
        if (!ok) problem("mappings_by_windows/" + printable(k) + ": no matching mapping");
        return true;
    }));
    PWSYNC_TRY(walk(d.principals, "principals", records::decode_principal, [&](std::string_view, const records::PrincipalRecord& r) -> Status {
        if (r.principal.kind == PrincipalKind::adapter) {
            PWSYNC_ASSIGN(bool ok, exists(d.adapters, app_key(r.principal.adapter)));
            if (!ok) problem("principals/" + r.principal.name + ": names missing adapter " + r.principal.adapter);
        }
        return {};
    }));
    PWSYNC_TRY(walk(d.audit, "audit", records::decode_audit, [](std::string_view, const AuditRecord&) -> Status { return {}; }));
    // Gateway state: jobs (and their target index), dead letters, captures.
    PWSYNC_TRY(walk(d.outbox, "outbox", records::decode_job, [&](std::string_view k, const records::JobRecord& r) -> Status {
        const std::string where = "outbox/" + std::to_string(r.job.id);
        if (audit_key(r.job.id) != k) problem(where + ": key does not match the record");
        check_sealed(r, k, where);
        PWSYNC_ASSIGN(bool ok, exists(d.outbox_by_target, ascii_lower(r.job.adapter) + '\0' + ascii_lower(r.job.external) +
                                                              '\0' + audit_key(r.job.id)));
        if (!ok) problem(where + ": missing from the target index");
        return {};
    }));
    PWSYNC_TRY(s.kv().scan(d.outbox_by_target, "", [&](std::string_view k, std::string_view) -> Result<bool> {
        PWSYNC_ASSIGN(bool ok, exists(d.outbox, k.size() >= 8 ? k.substr(k.size() - 8) : k));
        if (!ok) problem("outbox_by_target/" + printable(k.substr(0, k.size() >= 8 ? k.size() - 8 : 0)) + ": no matching job");
        return true;
    }));
    PWSYNC_TRY(walk(d.dead, "dead_letters", records::decode_dead, [&](std::string_view k, const records::DeadRecord& r) -> Status {
        check_sealed(r, k, "dead_letters/" + std::to_string(r.job.job.id));
        return {};
    }));
    PWSYNC_TRY(walk(d.pending, "pending_captures", records::decode_pending, [&](std::string_view k, const records::PendingRecord& r) -> Status {
        check_sealed(r, k, "pending_captures/" + std::to_string(r.capture.id));
        return {};
    }));
    PWSYNC_TRY(walk(d.markers, "markers", records::decode_marker, [](std::string_view, const Marker&) -> Status { return {}; }));
    return rep;
}

}  // namespace pwsync::store
