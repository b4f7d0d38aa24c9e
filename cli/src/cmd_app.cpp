// pwsync app create|update|delete|list|show
#include "cli.h"

namespace pwsync::cli {
namespace {

void app_name_arg(po::options_description& d, po::positional_options_description& p) {
    d.add_options()("NAME", po::value<std::string>(), "application name");
    p.add("NAME", 1);
}

void app_fields(po::options_description& d, po::positional_options_description& p, bool update) {
    app_name_arg(d, p);
    d.add_options()("description", po::value<std::string>()->value_name("TEXT"), "what the application is")
                   ("contact", po::value<std::string>()->value_name("TEXT"), "who to ask about it")
                   ("disabled", "the application takes part in no sync")
                   ("allow-privileged", po::value<std::string>()->implicit_value("yes")->value_name("yes|no"),
                    "allow privileged accounts (adminCount=1, protected groups such as Domain Admins) in its mappings (audited)");
    if (update) d.add_options()("enabled", "enable the application again");
}

void json_opt(po::options_description& d) { d.add_options()("json", "print JSON"); }

std::optional<bool> allow_privileged(Context& c) {
    const auto v = c.opt<std::string>("allow-privileged");
    if (!v) return std::nullopt;
    const std::string s = ascii_lower(*v);
    if (s == "yes" || s == "true" || s == "on" || s == "1") return true;
    if (s == "no" || s == "false" || s == "off" || s == "0") return false;
    throw UsageError{"--allow-privileged: '" + *v + "' is not yes or no"};
}

}  // namespace

void add_app_commands(std::vector<Command>& out) {
    out.push_back({"app", "create", "NAME [--description TEXT] [--contact TEXT] [--disabled] [--allow-privileged]",
                   "create an affiliate application",
                   [](auto& d, auto& p) { app_fields(d, p, false); },
                   [](Context& c) -> Status {
                       store::App a;
                       a.name = c.arg("NAME");
                       a.description = c.opt<std::string>("description").value_or("");
                       a.contact = c.opt<std::string>("contact").value_or("");
                       a.enabled = c.vm().count("disabled") == 0;
                       a.allow_privileged = allow_privileged(c).value_or(false);
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       PWSYNC_TRY(s.transact(c.actor(), [&](store::WriteTxn& w) -> Status {
                           PWSYNC_TRY(w.create_app(a));
                           return {};
                       }));
                       c.out() << "created application " << a.name << "\n";
                       return {};
                   }});
    out.push_back({"app", "update", "NAME [--description TEXT] [--contact TEXT] [--disabled|--enabled] [--allow-privileged[=no]]",
                   "change an application",
                   [](auto& d, auto& p) { app_fields(d, p, true); },
                   [](Context& c) -> Status {
                       if (c.vm().count("disabled") && c.vm().count("enabled"))
                           throw UsageError{"--enabled and --disabled exclude each other"};
                       const auto privileged = allow_privileged(c);
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       store::App a;
                       PWSYNC_TRY(s.transact(c.actor(), [&](store::WriteTxn& w) -> Status {
                           PWSYNC_ASSIGN(a, w.app(c.arg("NAME")));
                           if (auto v = c.opt<std::string>("description")) a.description = *v;
                           if (auto v = c.opt<std::string>("contact")) a.contact = *v;
                           if (c.vm().count("disabled")) a.enabled = false;
                           if (c.vm().count("enabled")) a.enabled = true;
                           if (privileged) a.allow_privileged = *privileged;
                           PWSYNC_TRY(w.update_app(a));
                           return {};
                       }));
                       c.out() << "updated application " << a.name << "\n";
                       return {};
                   }});
    out.push_back({"app", "delete", "NAME", "delete an application that has no mappings", app_name_arg,
                   [](Context& c) -> Status {
                       const auto name = c.arg("NAME");
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       PWSYNC_TRY(s.transact(c.actor(), [&](store::WriteTxn& w) -> Status {
                           PWSYNC_TRY(w.delete_app(name));
                           return {};
                       }));
                       c.out() << "deleted application " << name << "\n";
                       return {};
                   }});
    out.push_back({"app", "list", "[--json]", "list applications",
                   [](auto& d, auto&) { json_opt(d); },
                   [](Context& c) -> Status {
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       PWSYNC_ASSIGN(auto r, s.read());
                       PWSYNC_ASSIGN(auto apps, r.apps());
                       if (c.want_json()) {
                           json arr = json::array();
                           for (const auto& a : apps) arr.push_back(to_json(a));
                           c.print_json(arr);
                           return {};
                       }
                       std::vector<std::vector<std::string>> rows;
                       for (const auto& a : apps)
                           rows.push_back({a.name, yes_no(a.enabled), a.adapter.empty() ? "-" : a.adapter, a.description});
                       print_table(c.out(), {"NAME", "ENABLED", "ADAPTER", "DESCRIPTION"}, rows);
                       return {};
                   }});
    out.push_back({"app", "show", "NAME [--json]", "show one application",
                   [](auto& d, auto& p) { app_name_arg(d, p); json_opt(d); },
                   [](Context& c) -> Status {
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       PWSYNC_ASSIGN(auto r, s.read());
                       PWSYNC_ASSIGN(store::App a, r.app(c.arg("NAME")));
                       std::size_t mappings = 0;
                       store::MappingFilter only_this;
                       only_this.app = a.name;
                       PWSYNC_TRY(r.for_each_mapping(only_this, [&](const store::Mapping&) { ++mappings; return true; }));
                       if (c.want_json()) {
                           json doc = to_json(a);
                           doc["mappings"] = mappings;
                           c.print_json(doc);
                           return {};
                       }
                       c.out() << "name:        " << a.name << "\n"
                               << "description: " << a.description << "\n"
                               << "contact:     " << a.contact << "\n"
                               << "enabled:     " << yes_no(a.enabled) << "\n"
                               << "adapter:     " << (a.adapter.empty() ? "-" : a.adapter) << "\n"
                               << "privileged:  " << (a.allow_privileged ? "allowed" : "refused") << "\n"
                               << "mappings:    " << mappings << "\n"
                               << "created:     " << time_text(a.created) << "\n"
                               << "updated:     " << time_text(a.updated) << "\n";
                       return {};
                   }});
}

}  // namespace pwsync::cli
