// Record keys and name rules.
#include "impl.h"

namespace pwsync::store {

const DatabaseDef kDatabases[] = {
    {"settings", &Dbs::settings},     {"apps", &Dbs::apps},
    {"adapters", &Dbs::adapters},     {"groups", &Dbs::groups},
    {"mappings", &Dbs::mappings},     {"mappings_by_external", &Dbs::map_by_ext},
    {"mappings_by_windows", &Dbs::map_by_win}, {"principals", &Dbs::principals},
    {"audit", &Dbs::audit},
    {"outbox", &Dbs::outbox},         {"outbox_by_target", &Dbs::outbox_by_target},
    {"dead_letters", &Dbs::dead},     {"pending_captures", &Dbs::pending},
    {"markers", &Dbs::markers},       {"cursors", &Dbs::cursors},
    {"accounts", &Dbs::accounts},     {"account_names", &Dbs::account_names},
    {"mappings_by_guid", &Dbs::map_by_guid}, {"mappings_unresolved", &Dbs::map_unresolved},
    {"rules", &Dbs::rules},
};
const std::size_t kDatabaseCount = sizeof kDatabases / sizeof kDatabases[0];

const Dbs& tables() {
    static const Dbs all = [] {
        Dbs d;
        for (std::size_t i = 0; i < kDatabaseCount; ++i) d.*kDatabases[i].member = static_cast<Table>(i);
        return d;
    }();
    return all;
}

std::string app_key(std::string_view app) { return ascii_lower(app); }

std::string mapping_key(std::string_view app, std::string_view windows) {
    std::string k = ascii_lower(app);
    k.push_back('\0');
    k += ascii_lower(windows);
    return k;
}

std::string ext_index_key(std::string_view app, std::string_view external, std::string_view windows) {
    std::string k = ascii_lower(app);
    k.push_back('\0');
    k += ascii_lower(external);
    k.push_back('\0');
    k += ascii_lower(windows);
    return k;
}

std::string win_index_key(std::string_view windows, std::string_view app) {
    std::string k = ascii_lower(windows);
    k.push_back('\0');
    k += ascii_lower(app);
    return k;
}

std::string guid_index_key(std::string_view guid, std::string_view app, std::string_view windows) {
    std::string k = ascii_lower(guid);
    k.push_back('\0');
    k += mapping_key(app, windows);
    return k;
}

std::string audit_key(std::uint64_t id) {
    std::string k(8, '\0');
    for (int i = 7; i >= 0; --i, id >>= 8) k[static_cast<std::size_t>(i)] = static_cast<char>(id & 0xff);
    return k;
}

std::uint64_t audit_id(std::string_view key) {
    std::uint64_t id = 0;
    for (std::size_t i = 0; i < key.size() && i < 8; ++i) id = (id << 8) | static_cast<unsigned char>(key[i]);
    return id;
}

Status check_name(std::string_view what, std::string_view name) {
    if (name.empty()) return fail(Errc::invalid_argument, std::string(what) + " must not be empty");
    if (name.size() > 256) return fail(Errc::invalid_argument, std::string(what) + " is longer than 256 bytes");
    if (!valid_utf8(name)) return fail(Errc::invalid_argument, std::string(what) + " is not valid UTF-8");
    for (unsigned char c : name)
        if (c < 0x20 || c == 0x7f)
            return fail(Errc::invalid_argument, std::string(what) + " contains a control character");
    if (name.front() == ' ' || name.back() == ' ')
        return fail(Errc::invalid_argument, std::string(what) + " must not start or end with a space");
    return {};
}

}  // namespace pwsync::store
