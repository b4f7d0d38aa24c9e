// pwsync adapter ... and pwsync group ...
#include <algorithm>

#include "cli.h"
#include "registry.h"

namespace pwsync::cli {
namespace {

struct FlagOption {
    const char* name;
    const char* help;
    std::optional<bool> store::AdapterUpdate::*field;
};

const FlagOption kFlags[] = {
    {"sync-to-adapter", "send Windows changes to this adapter [syncToAdapter]", &store::AdapterUpdate::sync_to_adapter},
    {"sync-from-adapter", "accept changes from it into the store (partial) [syncFromAdapter]",
     &store::AdapterUpdate::sync_from_adapter},
    {"change-windows-password", "also set the AD password (full) [changeWindowsPassword]",
     &store::AdapterUpdate::change_windows_password},
    {"verify-old-password", "require the old password to match the stored one (default on) [verifyOldPassword]",
     &store::AdapterUpdate::verify_old_password},
    {"send-old-password", "pass the stored old password to the adapter [sendOldPassword]",
     &store::AdapterUpdate::send_old_password},
    {"allow-mapping-conflicts", "allow one external user in several mappings [allowMappingConflicts]",
     &store::AdapterUpdate::allow_mapping_conflicts},
};

struct NumberOption {
    const char* name;
    const char* help;
    std::optional<std::uint32_t> store::AdapterUpdate::*field;
};

const NumberOption kNumbers[] = {
    {"retry-count", "attempts after the first before a change dead-letters (default 5)", &store::AdapterUpdate::retry_count},
    {"retry-delay", "first backoff step in seconds, doubled each retry (default 60)", &store::AdapterUpdate::retry_delay},
    {"max-age", "seconds a change may wait before it dead-letters (default 86400)", &store::AdapterUpdate::max_age},
    {"concurrency", "deliveries at once (default 1)", &store::AdapterUpdate::concurrency},
    {"timeout", "seconds per delivery attempt (default 30)", &store::AdapterUpdate::timeout},
};

bool parse_bool(const std::string& flag, const std::string& v) {
    const std::string s = ascii_lower(v);
    if (s == "yes" || s == "true" || s == "on" || s == "1") return true;
    if (s == "no" || s == "false" || s == "off" || s == "0") return false;
    throw UsageError{"--" + flag + ": '" + v + "' is not yes or no"};
}

void name_arg(po::options_description& d, po::positional_options_description& p, const char* help = "adapter name") {
    d.add_options()("NAME", po::value<std::string>(), help);
    p.add("NAME", 1);
}

void adapter_options(po::options_description& d, po::positional_options_description& p, bool update) {
    name_arg(d, p);
    if (!update) d.add_options()("type", po::value<std::string>()->value_name("TYPE"), "adapter type (ldap, exec, http)");
    d.add_options()("description", po::value<std::string>()->value_name("TEXT"), "what the adapter talks to")
        ("property", po::value<std::vector<std::string>>()->composing()->value_name("KEY=VALUE"), "set a property (repeatable)")
        ("secret-property", po::value<std::vector<std::string>>()->composing()->value_name("KEY"),
         "set a secret property; the value is read from stdin (one line each when repeated)");
    if (update) d.add_options()("unset-property", po::value<std::vector<std::string>>()->composing()->value_name("KEY"),
                                "remove a property or secret property");
    for (const auto& f : kFlags)
        d.add_options()(f.name, po::value<std::string>()->implicit_value("yes")->value_name("yes|no"), f.help);
    d.add_options()("no-verify-old-password", "same as --verify-old-password=no");
    for (const auto& n : kNumbers) d.add_options()(n.name, po::value<std::uint32_t>()->value_name("N"), n.help);
}

// Collects the options common to create and update into an AdapterUpdate.
store::AdapterUpdate collect(Context& c, const gateway::AdapterType* type) {
    store::AdapterUpdate u;
    u.description = c.opt<std::string>("description");
    for (const auto& f : kFlags)
        if (auto v = c.opt<std::string>(f.name)) u.*f.field = parse_bool(f.name, *v);
    if (c.vm().count("no-verify-old-password")) {
        if (u.verify_old_password.value_or(false))
            throw UsageError{"--verify-old-password and --no-verify-old-password exclude each other"};
        u.verify_old_password = false;
    }
    for (const auto& n : kNumbers) u.*n.field = c.opt<std::uint32_t>(n.name);
    auto known = [](const std::vector<std::string>& list, const std::string& k) {
        return std::find(list.begin(), list.end(), k) != list.end();
    };
    for (const auto& kv : c.opt<std::vector<std::string>>("property").value_or(std::vector<std::string>{})) {
        const auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0) throw UsageError{"--property wants KEY=VALUE, got '" + kv + "'"};
        const std::string key = kv.substr(0, eq);
        if (type && known(type->secret_properties, key))
            throw UsageError{"property '" + key + "' is a secret: use --secret-property " + key + " and give the value on stdin"};
        if (type && !known(type->properties, key))
            throw UsageError{"adapter type " + type->name + " has no property '" + key + "'"};
        u.set_properties[key] = kv.substr(eq + 1);
    }
    return u;
}

Status read_secret_properties(Context& c, const gateway::AdapterType* type, std::map<std::string, Secret>& out) {
    const auto names = c.opt<std::vector<std::string>>("secret-property").value_or(std::vector<std::string>{});
    if (names.empty()) return {};
    for (const auto& n : names)
        if (type && std::find(type->secret_properties.begin(), type->secret_properties.end(), n) ==
                        type->secret_properties.end() && std::find(type->properties.begin(), type->properties.end(), n) ==
                        type->properties.end())
            throw UsageError{"adapter type " + type->name + " has no property '" + n + "'"};
    std::vector<std::string> what;
    for (const auto& n : names) what.push_back("value of secret property " + n);
    PWSYNC_ASSIGN(auto values, c.read_secrets(what));
    for (std::size_t i = 0; i < names.size(); ++i) out[names[i]] = std::move(values[i]);
    return {};
}

const gateway::AdapterType* require_type(const std::string& name) {
    const auto* t = gateway::find_adapter_type(name);
    if (t == nullptr) {
        std::string known;
        for (const auto& k : gateway::adapter_types()) known += (known.empty() ? "" : ", ") + k.name;
        throw UsageError{"unknown adapter type '" + name + "' (known: " + known + ")"};
    }
    return t;
}

Status set_enabled(Context& c, bool enabled) {
    const auto name = c.arg("NAME");
    PWSYNC_ASSIGN(auto s, c.open_store());
    PWSYNC_TRY(s.transact(c.actor(), [&](store::WriteTxn& w) -> Status {
        store::AdapterUpdate u;
        u.enabled = enabled;
        PWSYNC_TRY(w.update_adapter(name, std::move(u)));
        return {};
    }));
    c.out() << (enabled ? "enabled" : "disabled") << " adapter " << name << "\n";
    return {};
}


void print_adapter(Context& c, const store::Adapter& a, const std::vector<std::string>& apps) {
    auto& o = c.out();
    o << "name:                    " << a.name << "\n"
      << "type:                    " << a.type << "\n"
      << "description:             " << a.description << "\n"
      << "enabled:                 " << yes_no(a.flags.enabled) << "\n"
      << "sync-to-adapter:         " << yes_no(a.flags.sync_to_adapter) << "\n"
      << "sync-from-adapter:       " << yes_no(a.flags.sync_from_adapter) << "\n"
      << "change-windows-password: " << yes_no(a.flags.change_windows_password) << "\n"
      << "verify-old-password:     " << yes_no(a.flags.verify_old_password) << "\n"
      << "send-old-password:       " << yes_no(a.flags.send_old_password) << "\n"
      << "allow-mapping-conflicts: " << yes_no(a.flags.allow_mapping_conflicts) << "\n"
      << "retry-count:             " << a.retry_count << "\n"
      << "retry-delay:             " << a.retry_delay << " s\n"
      << "max-age:                 " << a.max_age << " s\n"
      << "concurrency:             " << a.concurrency << "\n"
      << "timeout:                 " << a.timeout << " s\n"
      << "group:                   " << (a.group.empty() ? "-" : a.group) << "\n";
    std::string list;
    for (const auto& app : apps) list += (list.empty() ? "" : ", ") + app;
    o << "applications:            " << (list.empty() ? "-" : list) << "\n";
    for (const auto& [k, v] : a.properties) o << "property " << k << " = " << v << "\n";
    for (const auto& k : a.secret_properties) o << "property " << k << " = (secret, set)\n";
    o << "created:                 " << time_text(a.created) << "\n"
      << "updated:                 " << time_text(a.updated) << "\n";
}

}  // namespace

void add_adapter_commands(std::vector<Command>& out) {
    out.push_back({"adapter", "create", "NAME --type TYPE [--property KEY=VALUE]... [--secret-property KEY] [flags]",
                   "create an adapter (all flags off but verify-old-password)",
                   [](auto& d, auto& p) { adapter_options(d, p, false); },
                   [](Context& c) -> Status {
                       const auto name = c.arg("NAME");
                       const auto* type = require_type(c.arg("type"));
                       auto u = collect(c, type);
                       store::Adapter a;
                       a.name = name;
                       a.type = type->name;
                       a.description = u.description.value_or("");
                       a.flags.sync_to_adapter = u.sync_to_adapter.value_or(false);
                       a.flags.sync_from_adapter = u.sync_from_adapter.value_or(false);
                       a.flags.change_windows_password = u.change_windows_password.value_or(false);
                       a.flags.verify_old_password = u.verify_old_password.value_or(true);
                       a.flags.send_old_password = u.send_old_password.value_or(false);
                       a.flags.allow_mapping_conflicts = u.allow_mapping_conflicts.value_or(false);
                       a.retry_count = u.retry_count.value_or(a.retry_count);
                       a.retry_delay = u.retry_delay.value_or(a.retry_delay);
                       a.max_age = u.max_age.value_or(a.max_age);
                       a.concurrency = u.concurrency.value_or(a.concurrency);
                       a.timeout = u.timeout.value_or(a.timeout);
                       a.properties = u.set_properties;
                       PWSYNC_TRY(gateway::validate_adapter(a));
                       std::map<std::string, Secret> secrets;
                       PWSYNC_TRY(read_secret_properties(c, type, secrets));
                       return write_and_say(c, [&](store::WriteTxn& w) { return w.create_adapter(a, std::move(secrets)); },
                                            "created adapter " + name + " (disabled; enable it with: pwsync adapter enable " + name + ")");
                   }});
    out.push_back({"adapter", "update", "NAME [--property KEY=VALUE]... [--unset-property KEY]... [flags]",
                   "change an adapter's properties and flags",
                   [](auto& d, auto& p) { adapter_options(d, p, true); },
                   [](Context& c) -> Status {
                       const auto name = c.arg("NAME");
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       std::string type_name;
                       std::map<std::string, std::string> properties;
                       {
                           PWSYNC_ASSIGN(auto r, s.read());
                           PWSYNC_ASSIGN(auto a, r.adapter(name));
                           type_name = a.type;
                           properties = a.properties;
                       }
                       const auto* type = gateway::find_adapter_type(type_name);
                       auto u = collect(c, type);
                       u.unset_properties = c.opt<std::vector<std::string>>("unset-property").value_or(std::vector<std::string>{});
                       // The settings as they will be after this update must hold together.
                       for (const auto& k : u.unset_properties) properties.erase(k);
                       for (const auto& [k, v] : u.set_properties) properties[k] = v;
                       store::Adapter after;
                       after.name = name;
                       after.type = type_name;
                       after.properties = std::move(properties);
                       PWSYNC_TRY(gateway::validate_adapter(after));
                       PWSYNC_TRY(read_secret_properties(c, type, u.set_secrets));
                       PWSYNC_TRY(s.transact(c.actor(), [&](store::WriteTxn& w) -> Status {
                           PWSYNC_TRY(w.update_adapter(name, std::move(u)));
                           return {};
                       }));
                       c.out() << "updated adapter " << name << "\n";
                       return {};
                   }});
    out.push_back({"adapter", "delete", "NAME", "delete an adapter with no applications, group or principals",
                   [](auto& d, auto& p) { name_arg(d, p); },
                   [](Context& c) -> Status {
                       const auto name = c.arg("NAME");
                       return write_and_say(c, [&](store::WriteTxn& w) { return w.delete_adapter(name); }, "deleted adapter " + name);
                   }});
    out.push_back({"adapter", "enable", "NAME", "enable an adapter [enableApp]", [](auto& d, auto& p) { name_arg(d, p); },
                   [](Context& c) { return set_enabled(c, true); }});
    out.push_back({"adapter", "disable", "NAME", "disable an adapter", [](auto& d, auto& p) { name_arg(d, p); },
                   [](Context& c) { return set_enabled(c, false); }});
    out.push_back({"adapter", "add-app", "ADAPTER APP", "put an application under an adapter",
                   [](auto& d, auto& p) {
                       d.add_options()("ADAPTER", po::value<std::string>(), "adapter name")("APP", po::value<std::string>(), "application name");
                       p.add("ADAPTER", 1).add("APP", 1);
                   },
                   [](Context& c) -> Status {
                       const auto adapter = c.arg("ADAPTER"), app = c.arg("APP");
                       return write_and_say(c, [&](store::WriteTxn& w) { return w.add_app_to_adapter(adapter, app); },
                                            "application " + app + " now belongs to adapter " + adapter);
                   }});
    out.push_back({"adapter", "remove-app", "APP", "take an application out of its adapter",
                   [](auto& d, auto& p) {
                       d.add_options()("APP", po::value<std::string>(), "application name");
                       p.add("APP", 1);
                   },
                   [](Context& c) -> Status {
                       const auto app = c.arg("APP");
                       return write_and_say(c, [&](store::WriteTxn& w) { return w.remove_app_from_adapter(app); },
                                            "application " + app + " belongs to no adapter now");
                   }});
    out.push_back({"adapter", "list", "[--json]", "list adapters",
                   [](auto& d, auto&) { d.add_options()("json", "print JSON"); },
                   [](Context& c) -> Status {
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       PWSYNC_ASSIGN(auto r, s.read());
                       PWSYNC_ASSIGN(auto list, r.adapters());
                       if (c.want_json()) {
                           json arr = json::array();
                           for (const auto& a : list) {
                               PWSYNC_ASSIGN(auto apps, r.adapter_apps(a.name));
                               json doc = to_json(a);
                               doc["applications"] = apps;
                               arr.push_back(std::move(doc));
                           }
                           c.print_json(arr);
                           return {};
                       }
                       std::vector<std::vector<std::string>> rows;
                       for (const auto& a : list) {
                           std::string dirs;
                           if (a.flags.sync_to_adapter) dirs += "to ";
                           if (a.flags.sync_from_adapter) dirs += "from ";
                           if (a.flags.change_windows_password) dirs += "full ";
                           rows.push_back({a.name, a.type, yes_no(a.flags.enabled), dirs.empty() ? "-" : dirs.substr(0, dirs.size() - 1),
                                           a.group.empty() ? "-" : a.group});
                       }
                       print_table(c.out(), {"NAME", "TYPE", "ENABLED", "SYNC", "GROUP"}, rows);
                       return {};
                   }});
    out.push_back({"adapter", "show", "NAME [--json]", "show one adapter (secret values are never shown)",
                   [](auto& d, auto& p) { name_arg(d, p); d.add_options()("json", "print JSON"); },
                   [](Context& c) -> Status {
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       PWSYNC_ASSIGN(auto r, s.read());
                       PWSYNC_ASSIGN(auto a, r.adapter(c.arg("NAME")));
                       PWSYNC_ASSIGN(auto apps, r.adapter_apps(a.name));
                       if (c.want_json()) {
                           json doc = to_json(a);
                           doc["applications"] = apps;
                           c.print_json(doc);
                       } else {
                           print_adapter(c, a, apps);
                       }
                       return {};
                   }});

    // ---------------------------------------------------------- groups
    auto group_adapter = [](auto& d, auto& p) {
        d.add_options()("GROUP", po::value<std::string>(), "group name")("ADAPTER", po::value<std::string>(), "adapter name");
        p.add("GROUP", 1).add("ADAPTER", 1);
    };
    out.push_back({"group", "create", "NAME [--description TEXT]", "create an adapter group",
                   [](auto& d, auto& p) {
                       name_arg(d, p, "group name");
                       d.add_options()("description", po::value<std::string>()->value_name("TEXT"), "what the group is for");
                   },
                   [](Context& c) -> Status {
                       store::Group g{c.arg("NAME"), c.opt<std::string>("description").value_or(""), {}};
                       return write_and_say(c, [&](store::WriteTxn& w) { return w.create_group(g); }, "created group " + g.name);
                   }});
    out.push_back({"group", "delete", "NAME", "delete an empty adapter group",
                   [](auto& d, auto& p) { name_arg(d, p, "group name"); },
                   [](Context& c) -> Status {
                       const auto name = c.arg("NAME");
                       return write_and_say(c, [&](store::WriteTxn& w) { return w.delete_group(name); }, "deleted group " + name);
                   }});
    out.push_back({"group", "add", "GROUP ADAPTER", "put an adapter into a group", group_adapter,
                   [](Context& c) -> Status {
                       const auto g = c.arg("GROUP"), a = c.arg("ADAPTER");
                       return write_and_say(c, [&](store::WriteTxn& w) { return w.add_to_group(g, a); },
                                            "adapter " + a + " is in group " + g);
                   }});
    out.push_back({"group", "remove", "GROUP ADAPTER", "take an adapter out of a group", group_adapter,
                   [](Context& c) -> Status {
                       const auto g = c.arg("GROUP"), a = c.arg("ADAPTER");
                       return write_and_say(c, [&](store::WriteTxn& w) { return w.remove_from_group(g, a); },
                                            "adapter " + a + " left group " + g);
                   }});
    out.push_back({"group", "list", "[--json]", "list adapter groups and their adapters",
                   [](auto& d, auto&) { d.add_options()("json", "print JSON"); },
                   [](Context& c) -> Status {
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       PWSYNC_ASSIGN(auto r, s.read());
                       PWSYNC_ASSIGN(auto groups, r.groups());
                       json arr = json::array();
                       std::vector<std::vector<std::string>> rows;
                       for (const auto& g : groups) {
                           PWSYNC_ASSIGN(auto members, r.group_members(g.name));
                           arr.push_back(to_json(g, members));
                           std::string list;
                           for (const auto& m : members) list += (list.empty() ? "" : ", ") + m;
                           rows.push_back({g.name, list.empty() ? "-" : list, g.description});
                       }
                       if (c.want_json()) c.print_json(arr);
                       else print_table(c.out(), {"NAME", "ADAPTERS", "DESCRIPTION"}, rows);
                       return {};
                   }});
}

}  // namespace pwsync::cli
