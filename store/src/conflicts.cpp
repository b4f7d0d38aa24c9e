#include "conflicts.h"

namespace pwsync::store::conflicts {

Result<std::vector<std::string>> scope(const TxnState& s, const App& app) {
    std::vector<std::string> apps{app.name};
    if (app.adapter.empty()) return apps;
    const std::string adapter = ascii_lower(app.adapter);
    PWSYNC_TRY(s.kv().scan(s.db().apps, "", [&](std::string_view, std::string_view v) -> Result<bool> {
        PWSYNC_ASSIGN(App other, records::decode_app(v));
        if (ascii_lower(other.adapter) == adapter && ascii_lower(other.name) != ascii_lower(app.name))
            apps.push_back(other.name);
        return true;
    }));
    return apps;
}

Status check_free(const TxnState& s, const std::vector<std::string>& apps, std::string_view external,
                  std::string_view own_app, std::string_view own_windows, std::string_view adapter) {
    const std::string own = mapping_key(own_app, own_windows);
    for (const auto& a : apps) {
        std::string prefix = ascii_lower(a);
        prefix.push_back('\0');
        prefix += ascii_lower(external);
        prefix.push_back('\0');
        std::string holder;
        PWSYNC_TRY(s.kv().scan(s.db().map_by_ext, prefix, [&](std::string_view k, std::string_view) -> Result<bool> {
            const std::string_view windows = k.substr(prefix.size());
            if (mapping_key(a, windows) == own) return true;
            holder = windows;
            return false;
        }));
        if (!holder.empty()) {
            // Show the account as it was given, not its lower-cased key.
            if (auto v = s.kv().get(s.db().mappings, mapping_key(a, holder)); v && *v)
                if (auto rec = records::decode_mapping(**v)) holder = rec->mapping.windows;
            return fail(Errc::conflict,
                        "external user " + quote(external) + " is already mapped in application " + quote(a) +
                            " (Windows account " + quote(holder) + ")" +
                            (adapter.empty() ? std::string("")
                                             : "; adapter " + quote(adapter) + " does not allow mapping conflicts"));
        }
    }
    return {};
}

Status check_scope(const TxnState& s, const std::vector<std::string>& apps, std::string_view adapter) {
    for (const auto& a : apps) {
        Status st;
        PWSYNC_TRY(s.kv().scan(s.db().mappings, app_key(a) + '\0', [&](std::string_view, std::string_view v) -> Result<bool> {
            PWSYNC_ASSIGN(auto rec, records::decode_mapping(v));
            st = check_free(s, apps, rec.mapping.external, rec.mapping.app, rec.mapping.windows, adapter);
            return bool(st);
        }));
        if (!st) return st;
    }
    return {};
}

}  // namespace pwsync::store::conflicts
