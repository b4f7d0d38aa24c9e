// Directory accounts and their names: the index that lets any name form of
// an account (sam, DOMAIN\sam, UPN, DN, {GUID}) find every mapping of it,
// whatever name the mapping was made with, across restarts and renames.
#include <algorithm>
#include <set>

#include "impl.h"

namespace pwsync::store {

std::vector<std::string> AccountNames::names() const {
    std::vector<std::string> out;
    if (deleted) return out;
    auto add = [&](std::string n) {
        n = ascii_lower(n);
        if (!n.empty() && std::find(out.begin(), out.end(), n) == out.end()) out.push_back(std::move(n));
    };
    add(guid);
    if (sam_alone) add(sam);
    if (!domain.empty() && !sam.empty()) add(domain + "\\" + sam);
    add(upn);
    add(dn);
    return out;
}

namespace {

Result<std::optional<AccountNames>> account_by_guid(const TxnState& s, std::string_view guid) {
    PWSYNC_ASSIGN(auto v, s.kv().get(s.db().accounts, ascii_lower(guid)));
    if (!v) return std::optional<AccountNames>();
    PWSYNC_ASSIGN(auto a, records::decode_account(*v));
    return std::optional<AccountNames>(std::move(a));
}

// The mappings made with exactly this name (any application).
Result<std::vector<Mapping>> mappings_named(const ReadTxn& r, std::string_view name) {
    MappingFilter f;
    f.windows = std::string(name);
    return r.mappings(f);
}

// Mapping keys under a GUID in the GUID index.
Result<std::vector<std::string>> keys_of_guid(const TxnState& s, std::string_view guid) {
    std::vector<std::string> out;
    const std::string prefix = ascii_lower(guid) + '\0';
    PWSYNC_TRY(s.kv().scan(s.db().map_by_guid, prefix, [&](std::string_view k, std::string_view) -> Result<bool> {
        out.emplace_back(k.substr(prefix.size()));
        return true;
    }));
    return out;
}

}  // namespace

// A mapping's place in the GUID index and the unresolved list: unresolved
// while the store does not know its account (no GUID, or no record of it).
Status index_mapping_account(TxnState& s, const Mapping& m) {
    const std::string key = mapping_key(m.app, m.windows);
    if (m.object_guid.empty()) return s.kv().put(s.db().map_unresolved, key, "");
    PWSYNC_TRY(s.kv().put(s.db().map_by_guid, guid_index_key(m.object_guid, m.app, m.windows), ""));
    PWSYNC_ASSIGN(auto known, account_by_guid(s, m.object_guid));
    if (known) return s.kv().del(s.db().map_unresolved, key);
    return s.kv().put(s.db().map_unresolved, key, "");
}

Status unindex_mapping_account(TxnState& s, const Mapping& m) {
    if (!m.object_guid.empty())
        PWSYNC_TRY(s.kv().del(s.db().map_by_guid, guid_index_key(m.object_guid, m.app, m.windows)));
    return s.kv().del(s.db().map_unresolved, mapping_key(m.app, m.windows));
}

Result<std::optional<AccountNames>> ReadTxn::account(std::string_view name) const {
    PWSYNC_ASSIGN(auto guid, s_->kv().get(s_->db().account_names, ascii_lower(name)));
    if (!guid) return std::optional<AccountNames>();
    PWSYNC_ASSIGN(auto a, account_by_guid(*s_, *guid));
    if (!a) return fail(Errc::corrupt, "the account name index names a missing account");
    return a;
}

Result<std::vector<Mapping>> ReadTxn::account_mappings(std::string_view name) const {
    std::vector<Mapping> out;
    std::set<std::string> seen;
    auto add = [&](Mapping m) {
        if (seen.insert(mapping_key(m.app, m.windows)).second) out.push_back(std::move(m));
    };
    auto add_guid = [&](std::string_view guid) -> Status {
        PWSYNC_ASSIGN(auto keys, keys_of_guid(*s_, guid));
        for (const auto& k : keys) {
            PWSYNC_ASSIGN(auto v, s_->kv().get(s_->db().mappings, k));
            if (!v) return fail(Errc::corrupt, "the objectGUID index names a missing mapping");
            PWSYNC_ASSIGN(auto rec, records::decode_mapping(*v));
            add(std::move(rec.mapping));
        }
        return {};
    };
    PWSYNC_ASSIGN(auto acc, account(name));
    if (acc) {
        PWSYNC_TRY(add_guid(acc->guid));
        // Made with one of its names and not resolved yet; never a mapping
        // resolved to another account that once had the name. Every mapping
        // without a GUID is on the unresolved list: none there, none to find
        // by name (a scan per name form saved on every capture).
        PWSYNC_ASSIGN(auto any_unresolved, s_->kv().last_key(s_->db().map_unresolved));
        if (!any_unresolved) return out;
        for (const auto& n : acc->names()) {
            PWSYNC_ASSIGN(auto found, mappings_named(*this, n));
            for (auto& m : found)
                if (m.object_guid.empty() || ascii_lower(m.object_guid) == acc->guid) add(std::move(m));
        }
        return out;
    }
    // A name the store does not know: the mappings made with it, unless they
    // belong to an account known by other names now (renamed, deleted).
    PWSYNC_ASSIGN(auto found, mappings_named(*this, name));
    for (auto& m : found) {
        if (!m.object_guid.empty()) {
            PWSYNC_ASSIGN(auto owner, account_by_guid(*s_, m.object_guid));
            if (owner) continue;
        }
        add(std::move(m));
    }
    // A GUID resolved before the store kept names (an older store).
    PWSYNC_ASSIGN(auto owner, account_by_guid(*s_, name));
    if (!owner) PWSYNC_TRY(add_guid(name));
    return out;
}

Result<std::vector<Mapping>> ReadTxn::unresolved_mappings(std::size_t limit) const {
    std::vector<Mapping> out;
    PWSYNC_TRY(s_->kv().scan(s_->db().map_unresolved, "", [&](std::string_view k, std::string_view) -> Result<bool> {
        PWSYNC_ASSIGN(auto v, s_->kv().get(s_->db().mappings, k));
        if (!v) return fail(Errc::corrupt, "the unresolved mapping list names a missing mapping");
        PWSYNC_ASSIGN(auto rec, records::decode_mapping(*v));
        out.push_back(std::move(rec.mapping));
        return limit == 0 || out.size() < limit;
    }));
    return out;
}

Result<std::size_t> WriteTxn::note_account(const AccountNames& a) {
    if (a.guid.empty()) return fail(Errc::invalid_argument, "an account needs its objectGUID");
    const std::string key = ascii_lower(a.guid);
    PWSYNC_ASSIGN(auto old, account_by_guid(*s_, key));
    AccountNames merged = old ? *old : AccountNames{};
    merged.guid = key;
    merged.deleted = false;
    for (auto [field, value] : {std::pair{&merged.sam, &a.sam}, {&merged.domain, &a.domain}, {&merged.upn, &a.upn},
                                {&merged.dn, &a.dn}})
        if (!value->empty()) *field = *value;
    merged.sam_alone = a.sam_alone;
    const auto before = old ? old->names() : std::vector<std::string>{};
    const auto after = merged.names();
    // Renamed: its names differ, counted the same way.
    bool changed = !old || old->deleted;
    if (!changed) {
        AccountNames was = *old;
        was.sam_alone = merged.sam_alone;
        changed = was.names() != after;
    }
    // No longer a name of it (several domains): its claim on the bare sam goes.
    if (!merged.sam_alone && old && !old->sam.empty()) {
        const auto bare = ascii_lower(old->sam);
        PWSYNC_ASSIGN(auto owner, s_->kv().get(s_->db().account_names, bare));
        if (owner && *owner == key) PWSYNC_TRY(s_->kv().del(s_->db().account_names, bare));
    }
    if (changed) {
        for (const auto& n : before) {
            PWSYNC_ASSIGN(auto owner, s_->kv().get(s_->db().account_names, n));
            if (owner && *owner == key) PWSYNC_TRY(s_->kv().del(s_->db().account_names, n));
        }
        // The directory's word now wins over an older claim on a name.
        for (const auto& n : after) PWSYNC_TRY(s_->kv().put(s_->db().account_names, n, key));
        merged.updated = s_->now();
        PWSYNC_TRY(s_->kv().put(s_->db().accounts, key, records::encode(merged)));
        if (old && !old->deleted)
            PWSYNC_TRY(audit("account.rename", key,
                             "sam " + old->sam + " -> " + merged.sam + ", upn " + (old->upn.empty() ? "-" : old->upn) +
                                 " -> " + (merged.upn.empty() ? "-" : merged.upn) + ", dn " + old->dn + " -> " + merged.dn));
    }
    // Mappings made with one of its names and not resolved: resolved now.
    std::vector<Mapping> todo;
    for (const auto& n : after) {
        PWSYNC_ASSIGN(auto found, mappings_named(*this, n));
        for (auto& m : found)
            if (m.object_guid.empty()) todo.push_back(std::move(m));
    }
    std::size_t resolved = 0;
    for (const auto& m : todo) {
        PWSYNC_ASSIGN(auto fresh, mapping({m.app, m.windows}));
        if (!fresh.object_guid.empty()) continue;  // two of its names were the same mapping
        PWSYNC_TRY(set_mapping_guid({m.app, m.windows}, key));
        ++resolved;
    }
    // Mappings that had its GUID but not its names: known now.
    PWSYNC_ASSIGN(auto keys, keys_of_guid(*s_, key));
    for (const auto& k : keys) PWSYNC_TRY(s_->kv().del(s_->db().map_unresolved, k));
    return resolved;
}

Status WriteTxn::forget_account(std::string_view guid) {
    const std::string key = ascii_lower(guid);
    PWSYNC_ASSIGN(auto old, account_by_guid(*s_, key));
    PWSYNC_ASSIGN(auto keys, keys_of_guid(*s_, key));
    if (!old && keys.empty()) return {};  // an account no mapping names
    if (old && old->deleted) return {};
    AccountNames gone = old ? *old : AccountNames{};
    gone.guid = key;
    for (const auto& n : gone.names()) {
        PWSYNC_ASSIGN(auto owner, s_->kv().get(s_->db().account_names, n));
        if (owner && *owner == key) PWSYNC_TRY(s_->kv().del(s_->db().account_names, n));
    }
    gone.deleted = true;
    gone.updated = s_->now();
    PWSYNC_TRY(s_->kv().put(s_->db().accounts, key, records::encode(gone)));
    for (const auto& k : keys) PWSYNC_TRY(s_->kv().del(s_->db().map_unresolved, k));
    return audit("account.delete", key,
                 (gone.sam.empty() ? std::string() : "sam " + gone.sam + ", ") + std::to_string(keys.size()) +
                     " mapping(s) keep the objectGUID");
}

Result<bool> WriteTxn::record_resolution(const MappingKey& key, std::string_view guid_before, const AccountNames& a,
                                         TimePoint asked) {
    if (a.guid.empty()) return fail(Errc::invalid_argument, "an account needs its objectGUID");
    auto now = mapping(key);
    if (!now && now.error().code == Errc::not_found) return false;
    if (!now) return std::unexpected(now.error());
    // Resolved meanwhile to another account (an administrator re-resolved
    // it): that answer is the newer one. To this one (an earlier answer for
    // another of its names recorded it in this very transaction): agreed.
    const std::string current = ascii_lower(now->object_guid);
    if (current != ascii_lower(guid_before) && current != ascii_lower(a.guid)) return false;
    PWSYNC_ASSIGN(auto known, account_by_guid(*s_, a.guid));
    // Records keep microseconds: a write in the same microsecond counts as newer.
    if (!known || to_unix_micros(known->updated) < to_unix_micros(asked)) PWSYNC_TRY(note_account(a));
    // Named in a form that is not one of the account's names (an implicit
    // UPN, DNS-domain\sam): resolved by the directory's word.
    if (ascii_lower(now->object_guid) != ascii_lower(a.guid)) PWSYNC_TRY(set_mapping_guid(key, a.guid));
    return true;
}

}  // namespace pwsync::store
