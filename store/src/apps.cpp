// Affiliate applications.
#include "impl.h"

namespace pwsync::store {

Result<App> ReadTxn::app(std::string_view name) const {
    return load(*s_, s_->db().apps, app_key(name), records::decode_app, "application " + quote(name) + " does not exist");
}

Result<std::vector<App>> ReadTxn::apps() const { return load_all(*s_, s_->db().apps, records::decode_app); }

Status WriteTxn::create_app(App a) {
    PWSYNC_TRY(check_name("application name", a.name));
    const std::string key = app_key(a.name);
    PWSYNC_ASSIGN(auto existing, s_->kv().get(s_->db().apps, key));
    if (existing) return fail(Errc::already_exists, "application " + quote(a.name) + " already exists");
    a.adapter.clear();  // joining an adapter is its own step (add-app), with its own checks
    a.created = a.updated = s_->now();
    PWSYNC_TRY(s_->kv().put(s_->db().apps, key, records::encode(a)));
    return audit("app.create", a.name,
                 std::string(a.enabled ? "enabled" : "disabled") + (a.allow_privileged ? "; privileged accounts allowed" : ""));
}

Status WriteTxn::update_app(const App& changed) {
    PWSYNC_ASSIGN(App a, app(changed.name));
    a.description = changed.description;
    a.contact = changed.contact;
    a.enabled = changed.enabled;
    const bool privileged_changed = a.allow_privileged != changed.allow_privileged;
    a.allow_privileged = changed.allow_privileged;
    a.updated = s_->now();
    PWSYNC_TRY(s_->kv().put(s_->db().apps, app_key(a.name), records::encode(a)));
    return audit("app.update", a.name,
                 std::string(a.enabled ? "enabled" : "disabled") +
                     (privileged_changed ? (a.allow_privileged ? "; privileged accounts allowed" : "; privileged accounts refused")
                                         : ""));
}

Status WriteTxn::delete_app(std::string_view name) {
    PWSYNC_ASSIGN(App a, app(name));
    std::size_t mappings = 0;
    PWSYNC_TRY(s_->kv().scan(s_->db().mappings, app_key(name) + '\0',
                          [&](std::string_view, std::string_view) -> Result<bool> { return ++mappings < 1000; }));
    if (mappings > 0)
        return fail(Errc::in_use, "application " + quote(a.name) + " still has " +
                                      (mappings >= 1000 ? "1000 or more" : std::to_string(mappings)) +
                                      " mapping(s); delete them first");
    PWSYNC_ASSIGN(auto all_rules, rules());
    for (const auto& r : all_rules)
        if (ascii_lower(r.app) == ascii_lower(a.name))
            return fail(Errc::in_use, "application " + quote(a.name) + " is used by rule " + quote(r.name) +
                                          "; delete the rule first");
    PWSYNC_TRY(s_->kv().del(s_->db().apps, app_key(name)));
    return audit("app.delete", a.name);
}

}  // namespace pwsync::store
