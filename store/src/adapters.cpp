// Adapters: their flags, properties, sealed secret properties, and the
// applications that belong to them.
#include <algorithm>

#include "conflicts.h"
#include "impl.h"

namespace pwsync::store {
namespace {

Result<records::AdapterRecord> load_adapter(const TxnState& s, std::string_view name) {
    return load(s, s.db().adapters, app_key(name), records::decode_adapter,
                "adapter " + quote(name) + " does not exist");
}

Status save_adapter(TxnState& s, records::AdapterRecord& rec) {
    rec.adapter.secret_properties.clear();
    for (const auto& kv : rec.sealed) rec.adapter.secret_properties.push_back(kv.first);
    return s.kv().put(s.db().adapters, app_key(rec.adapter.name), records::encode(rec));
}

Status check_numbers(const Adapter& a) {
    if (a.concurrency < 1 || a.concurrency > 1024)
        return fail(Errc::invalid_argument, "concurrency must be between 1 and 1024");
    if (a.timeout < 1 || a.timeout > 86400) return fail(Errc::invalid_argument, "timeout must be between 1 and 86400 seconds");
    if (a.retry_count > 1000) return fail(Errc::invalid_argument, "retry count must be at most 1000");
    if (a.retry_delay < 1 || a.retry_delay > 86400)
        return fail(Errc::invalid_argument, "retry delay must be between 1 and 86400 seconds");
    if (a.max_age < 1) return fail(Errc::invalid_argument, "max age must be at least 1 second");
    return {};
}

Status seal_secret(TxnState& s, records::AdapterRecord& rec, const std::string& prop, const Secret& value) {
    PWSYNC_TRY(check_name("property name", prop));
    if (rec.adapter.properties.contains(prop))
        return fail(Errc::conflict, "property " + quote(prop) + " is already a plain property; unset it first");
    PWSYNC_ASSIGN(auto sealed, s.seal(value.view(), crypto::seal_context("adapters", app_key(rec.adapter.name), prop)));
    rec.sealed[prop] = std::move(sealed);
    return {};
}

std::string flag_list(const AdapterFlags& f) {
    std::string out;
    auto add = [&](bool on, const char* name) {
        if (!on) return;
        if (!out.empty()) out += ',';
        out += name;
    };
    add(f.enabled, "enabled");
    add(f.sync_to_adapter, "sync-to-adapter");
    add(f.sync_from_adapter, "sync-from-adapter");
    add(f.change_windows_password, "change-windows-password");
    add(f.verify_old_password, "verify-old-password");
    add(f.send_old_password, "send-old-password");
    add(f.allow_mapping_conflicts, "allow-mapping-conflicts");
    return out.empty() ? "none" : out;
}

}  // namespace

Result<Adapter> ReadTxn::adapter(std::string_view name) const {
    PWSYNC_ASSIGN(auto rec, load_adapter(*s_, name));
    return std::move(rec.adapter);
}

Result<std::vector<Adapter>> ReadTxn::adapters() const {
    PWSYNC_ASSIGN(auto recs, load_all(*s_, s_->db().adapters, records::decode_adapter));
    std::vector<Adapter> out;
    for (auto& r : recs) out.push_back(std::move(r.adapter));
    return out;
}

Result<Secret> ReadTxn::adapter_secret(std::string_view name, std::string_view property) const {
    PWSYNC_ASSIGN(auto rec, load_adapter(*s_, name));
    auto it = rec.sealed.find(std::string(property));
    if (it == rec.sealed.end())
        return fail(Errc::not_found, "adapter " + quote(name) + " has no secret property " + quote(property));
    return s_->open_sealed(it->second, crypto::seal_context("adapters", app_key(name), property));
}

Result<std::vector<std::string>> ReadTxn::adapter_apps(std::string_view name) const {
    std::vector<std::string> out;
    const std::string want = ascii_lower(name);
    PWSYNC_ASSIGN(auto all, apps());
    for (const auto& a : all)
        if (!a.adapter.empty() && ascii_lower(a.adapter) == want) out.push_back(a.name);
    return out;
}

Status WriteTxn::create_adapter(Adapter a, std::map<std::string, Secret> secrets) {
    PWSYNC_TRY(check_name("adapter name", a.name));
    if (a.name.front() == '@')
        return fail(Errc::invalid_argument, "adapter names starting with @ are reserved for pwsync's own targets");
    PWSYNC_TRY(check_name("adapter type", a.type));
    PWSYNC_TRY(check_numbers(a));
    PWSYNC_ASSIGN(auto existing, s_->kv().get(s_->db().adapters, app_key(a.name)));
    if (existing) return fail(Errc::already_exists, "adapter " + quote(a.name) + " already exists");
    for (const auto& kv : a.properties) PWSYNC_TRY(check_name("property name", kv.first));
    a.group.clear();  // joining a group is its own step
    a.created = a.updated = s_->now();
    records::AdapterRecord rec{std::move(a), {}};
    for (const auto& [prop, value] : secrets) PWSYNC_TRY(seal_secret(*s_, rec, prop, value));
    PWSYNC_TRY(save_adapter(*s_, rec));
    return audit("adapter.create", rec.adapter.name, "type=" + rec.adapter.type + " flags=" + flag_list(rec.adapter.flags));
}

Status WriteTxn::update_adapter(std::string_view name, AdapterUpdate u) {
    PWSYNC_ASSIGN(auto rec, load_adapter(*s_, name));
    Adapter& a = rec.adapter;
    const bool allowed_conflicts = a.flags.allow_mapping_conflicts;
    std::vector<std::string> changed;
    auto apply = [&](auto& field, auto& value, const char* label) {
        if (value) {
            field = *value;
            changed.emplace_back(label);
        }
    };
    apply(a.description, u.description, "description");
    apply(a.flags.enabled, u.enabled, "enabled");
    apply(a.flags.sync_to_adapter, u.sync_to_adapter, "sync-to-adapter");
    apply(a.flags.sync_from_adapter, u.sync_from_adapter, "sync-from-adapter");
    apply(a.flags.change_windows_password, u.change_windows_password, "change-windows-password");
    apply(a.flags.verify_old_password, u.verify_old_password, "verify-old-password");
    apply(a.flags.send_old_password, u.send_old_password, "send-old-password");
    apply(a.flags.allow_mapping_conflicts, u.allow_mapping_conflicts, "allow-mapping-conflicts");
    apply(a.retry_count, u.retry_count, "retry-count");
    apply(a.retry_delay, u.retry_delay, "retry-delay");
    apply(a.max_age, u.max_age, "max-age");
    apply(a.concurrency, u.concurrency, "concurrency");
    apply(a.timeout, u.timeout, "timeout");
    PWSYNC_TRY(check_numbers(a));
    for (const auto& prop : u.unset_properties) {
        if (a.properties.erase(prop) == 0 && rec.sealed.erase(prop) == 0)
            return fail(Errc::not_found, "adapter " + quote(a.name) + " has no property " + quote(prop));
        changed.push_back("-" + prop);
    }
    for (auto& [prop, value] : u.set_properties) {
        PWSYNC_TRY(check_name("property name", prop));
        if (rec.sealed.contains(prop))
            return fail(Errc::conflict, "property " + quote(prop) + " is a secret property; unset it first");
        a.properties[prop] = value;
        changed.push_back(prop);
    }
    for (const auto& [prop, value] : u.set_secrets) {
        rec.sealed.erase(prop);  // replacing a secret with a new value is allowed
        PWSYNC_TRY(seal_secret(*s_, rec, prop, value));
        changed.push_back(prop + " (secret)");
    }
    if (allowed_conflicts && !a.flags.allow_mapping_conflicts) {
        // Turning the permission off is only valid when no conflict exists.
        PWSYNC_ASSIGN(auto apps, adapter_apps(a.name));
        PWSYNC_TRY(conflicts::check_scope(*s_, apps, a.name));
    }
    a.updated = s_->now();
    PWSYNC_TRY(save_adapter(*s_, rec));
    std::string detail;
    for (const auto& c : changed) detail += (detail.empty() ? "" : ",") + c;
    return audit("adapter.update", a.name, detail.empty() ? "no change" : detail);
}

Status WriteTxn::delete_adapter(std::string_view name) {
    PWSYNC_ASSIGN(auto rec, load_adapter(*s_, name));
    PWSYNC_ASSIGN(auto apps, adapter_apps(name));
    if (!apps.empty()) {
        std::string list;
        for (const auto& a : apps) list += (list.empty() ? "" : ", ") + a;
        return fail(Errc::in_use, "adapter " + quote(rec.adapter.name) + " still has applications: " + list +
                                      " (remove them with: pwsync adapter remove-app APP)");
    }
    if (!rec.adapter.group.empty())
        return fail(Errc::in_use, "adapter " + quote(rec.adapter.name) + " is in group " + quote(rec.adapter.group) +
                                      " (remove it with: pwsync group remove " + rec.adapter.group + " " + rec.adapter.name + ")");
    PWSYNC_ASSIGN(auto principals, this->principals());
    for (const auto& p : principals)
        if (p.kind == PrincipalKind::adapter && ascii_lower(p.adapter) == ascii_lower(name))
            return fail(Errc::in_use, "adapter " + quote(rec.adapter.name) + " is used by principal " + quote(p.name) +
                                          " (delete it with: pwsync principal delete " + p.name + ")");
    PWSYNC_TRY(s_->kv().del(s_->db().adapters, app_key(name)));
    return audit("adapter.delete", rec.adapter.name);
}

Status WriteTxn::add_app_to_adapter(std::string_view adapter_name, std::string_view app_name) {
    PWSYNC_ASSIGN(auto rec, load_adapter(*s_, adapter_name));
    PWSYNC_ASSIGN(App a, app(app_name));
    if (!a.adapter.empty()) {
        if (ascii_lower(a.adapter) == ascii_lower(adapter_name)) return {};
        return fail(Errc::conflict, "application " + quote(a.name) + " already belongs to adapter " + quote(a.adapter) +
                                        " (an application belongs to at most one adapter)");
    }
    a.adapter = rec.adapter.name;
    if (!rec.adapter.flags.allow_mapping_conflicts) {
        PWSYNC_ASSIGN(auto scope, conflicts::scope(*s_, a));
        PWSYNC_TRY(conflicts::check_scope(*s_, scope, rec.adapter.name));
    }
    a.updated = s_->now();
    PWSYNC_TRY(s_->kv().put(s_->db().apps, app_key(a.name), records::encode(a)));
    return audit("adapter.add-app", rec.adapter.name, "app=" + a.name);
}

Status WriteTxn::remove_app_from_adapter(std::string_view app_name) {
    PWSYNC_ASSIGN(App a, app(app_name));
    if (a.adapter.empty()) return fail(Errc::invalid_argument, "application " + quote(a.name) + " belongs to no adapter");
    const std::string adapter = std::exchange(a.adapter, {});
    a.updated = s_->now();
    PWSYNC_TRY(s_->kv().put(s_->db().apps, app_key(a.name), records::encode(a)));
    return audit("adapter.remove-app", adapter, "app=" + a.name);
}

// ------------------------------------------------------------------ groups

Result<Group> ReadTxn::group(std::string_view name) const {
    return load(*s_, s_->db().groups, app_key(name), records::decode_group, "group " + quote(name) + " does not exist");
}

Result<std::vector<Group>> ReadTxn::groups() const { return load_all(*s_, s_->db().groups, records::decode_group); }

Result<std::vector<std::string>> ReadTxn::group_members(std::string_view name) const {
    std::vector<std::string> out;
    PWSYNC_ASSIGN(auto all, adapters());
    for (const auto& a : all)
        if (!a.group.empty() && ascii_lower(a.group) == ascii_lower(name)) out.push_back(a.name);
    return out;
}

Status WriteTxn::create_group(Group g) {
    PWSYNC_TRY(check_name("group name", g.name));
    PWSYNC_ASSIGN(auto existing, s_->kv().get(s_->db().groups, app_key(g.name)));
    if (existing) return fail(Errc::already_exists, "group " + quote(g.name) + " already exists");
    g.created = s_->now();
    PWSYNC_TRY(s_->kv().put(s_->db().groups, app_key(g.name), records::encode(g)));
    return audit("group.create", g.name);
}

Status WriteTxn::delete_group(std::string_view name) {
    PWSYNC_ASSIGN(Group g, group(name));
    PWSYNC_ASSIGN(auto members, group_members(name));
    if (!members.empty()) {
        std::string list;
        for (const auto& m : members) list += (list.empty() ? "" : ", ") + m;
        return fail(Errc::in_use, "group " + quote(g.name) + " still holds adapters: " + list + "; remove them first");
    }
    PWSYNC_TRY(s_->kv().del(s_->db().groups, app_key(name)));
    return audit("group.delete", g.name);
}

Status WriteTxn::add_to_group(std::string_view group_name, std::string_view adapter_name) {
    PWSYNC_ASSIGN(Group g, group(group_name));
    PWSYNC_ASSIGN(auto rec, load_adapter(*s_, adapter_name));
    if (!rec.adapter.group.empty()) {
        if (ascii_lower(rec.adapter.group) == ascii_lower(group_name)) return {};
        return fail(Errc::conflict, "adapter " + quote(rec.adapter.name) + " is already in group " +
                                        quote(rec.adapter.group) + " (an adapter belongs to at most one group)");
    }
    rec.adapter.group = g.name;
    rec.adapter.updated = s_->now();
    PWSYNC_TRY(save_adapter(*s_, rec));
    return audit("group.add", g.name, "adapter=" + rec.adapter.name);
}

Status WriteTxn::remove_from_group(std::string_view group_name, std::string_view adapter_name) {
    PWSYNC_ASSIGN(Group g, group(group_name));
    PWSYNC_ASSIGN(auto rec, load_adapter(*s_, adapter_name));
    if (ascii_lower(rec.adapter.group) != ascii_lower(group_name))
        return fail(Errc::invalid_argument, "adapter " + quote(rec.adapter.name) + " is not in group " + quote(g.name));
    rec.adapter.group.clear();
    rec.adapter.updated = s_->now();
    PWSYNC_TRY(save_adapter(*s_, rec));
    return audit("group.remove", g.name, "adapter=" + rec.adapter.name);
}

}  // namespace pwsync::store
