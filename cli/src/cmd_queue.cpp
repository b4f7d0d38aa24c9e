// pwsync status, queue list|retry|drop, damping reset
#include <algorithm>
#include <map>

#include "cli.h"

namespace pwsync::cli {
namespace {

json job_json(const store::Job& j) {
    return {{"id", j.id},           {"adapter", j.adapter},
            {"app", j.app},         {"windows", j.windows},
            {"external", j.external}, {"origin", j.origin},
            {"attempts", j.attempts}, {"created", format_iso8601(j.created)},
            {"next_attempt", format_iso8601(j.next_attempt)},
            {"last_error", j.last_error.empty() ? json(nullptr) : json(j.last_error)}};
}

std::uint64_t id_arg(Context& c) {
    const auto text = c.arg("ID");
    try {
        std::size_t used = 0;
        const auto id = std::stoull(text, &used);
        if (used == text.size()) return id;
    } catch (const std::exception&) {
    }
    throw UsageError{"ID must be a job number, not '" + text + "'"};
}

void id_option(po::options_description& d, po::positional_options_description& p) {
    d.add_options()("ID", po::value<std::string>(), "dead letter (job) number, from pwsync queue list");
    p.add("ID", 1);
}

std::string age(TimePoint from, TimePoint to) {
    const auto s = std::chrono::duration_cast<std::chrono::seconds>(to - from).count();
    if (s < 120) return std::to_string(s) + " s";
    if (s < 7200) return std::to_string(s / 60) + " min";
    return std::to_string(s / 3600) + " h";
}

}  // namespace

void add_queue_commands(std::vector<Command>& out) {
    out.push_back({"status", "", "[--json]", "adapters, queues, dead letters, pending captures, stale mappings",
                   [](auto& d, auto&) { d.add_options()("json", "print JSON"); },
                   [](Context& c) -> Status {
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       PWSYNC_ASSIGN(auto r, s.read());
                       const TimePoint now = std::chrono::system_clock::now();
                       PWSYNC_ASSIGN(auto sync, r.sync_settings());
                       PWSYNC_ASSIGN(auto adapters, r.adapters());
                       PWSYNC_ASSIGN(auto jobs, r.jobs());
                       PWSYNC_ASSIGN(auto dead, r.dead_letters());
                       PWSYNC_ASSIGN(auto pending, r.pending_captures());
                       PWSYNC_ASSIGN(auto audit, r.audit(now - std::chrono::hours(24 * 7)));
                       PWSYNC_ASSIGN(auto dcs, store::dc_health(r));
                       std::size_t stale = 0, awaiting = 0;
                       store::MappingFilter all;
                       PWSYNC_TRY(r.for_each_mapping(all, [&](const store::Mapping& m) {
                           stale += m.status == store::MappingStatus::stale;
                           awaiting += m.status == store::MappingStatus::awaiting_change;
                           return true;
                       }));
                       // Mapping rules' conflicts, as their last evaluation found them.
                       PWSYNC_ASSIGN(auto all_rules, r.rules());
                       json rule_conflicts = json::array();
                       for (const auto& x : all_rules)
                           for (const auto& k : x.conflicts) rule_conflicts.push_back({{"rule", x.name}, {"conflict", k}});
                       struct Row { std::size_t queued = 0, dead = 0; TimePoint oldest{}; std::string last_ok, last_fail; };
                       std::map<std::string, Row> rows;
                       for (const auto& a : adapters) rows[ascii_lower(a.name)];
                       for (const auto& j : jobs) {
                           auto& row = rows[ascii_lower(j.adapter)];
                           ++row.queued;
                           if (row.oldest == TimePoint{} || j.created < row.oldest) row.oldest = j.created;
                       }
                       for (const auto& d : dead) ++rows[ascii_lower(d.job.adapter)].dead;
                       // Last success and failure per adapter, from the audit (newest wins).
                       for (const auto& a : audit) {
                           const auto colon = a.object.find(':');
                           const auto space = colon == std::string::npos ? colon : a.object.rfind(' ', colon);
                           if (a.action.rfind("job.", 0) != 0 || colon == std::string::npos || space == std::string::npos) continue;
                           auto it = rows.find(ascii_lower(a.object.substr(space + 1, colon - space - 1)));
                           if (it == rows.end()) continue;
                           if (a.action == "job.delivered") it->second.last_ok = format_iso8601(a.time);
                           if (a.action == "job.retry" || a.action == "job.dead") it->second.last_fail = format_iso8601(a.time);
                       }
                       // Several gateways (a shared store): who reported in the last hour, who is active.
                       std::vector<store::GatewayStatus> gateways;
                       if (s.shared()) { PWSYNC_ASSIGN(gateways, s.gateways(std::chrono::hours(1))); }
                       const auto active = std::find_if(gateways.begin(), gateways.end(), [](const auto& g) { return g.active; });
                       const auto unix_time = [](std::int64_t t) { return format_iso8601(TimePoint{std::chrono::seconds(t)}); };
                       if (c.want_json()) {
                           json gws = json::array();
                           for (const auto& g : gateways)
                               gws.push_back({{"name", g.name}, {"host", g.host}, {"pid", g.pid}, {"instance", g.instance},
                                              {"started", unix_time(g.started)}, {"last_contact", unix_time(g.last_contact)},
                                              {"last_contact_age_ms", g.contact_age_ms}, {"active", g.active},
                                              {"active_since", g.active ? json(unix_time(g.active_since)) : json(nullptr)},
                                              {"epoch", g.epoch}});
                           json arr = json::array();
                           for (const auto& a : adapters) {
                               const auto& row = rows[ascii_lower(a.name)];
                               arr.push_back({{"name", a.name}, {"enabled", a.flags.enabled}, {"queued", row.queued},
                                              {"oldest_job_age_seconds", row.oldest == TimePoint{} ? json(nullptr)
                                                   : json(std::chrono::duration_cast<std::chrono::seconds>(now - row.oldest).count())},
                                              {"dead_letters", row.dead},
                                              {"last_success", row.last_ok.empty() ? json(nullptr) : json(row.last_ok)},
                                              {"last_failure", row.last_fail.empty() ? json(nullptr) : json(row.last_fail)}});
                           }
                           c.print_json({{"sync", {{"windows", sync.windows}, {"partial", sync.partial}, {"full", sync.full}}},
                                         {"adapters", arr}, {"queued", jobs.size()}, {"dead_letters", dead.size()},
                                         {"pending_captures", pending.size()}, {"stale_mappings", stale},
                                         {"rule_conflicts", rule_conflicts},
                                         {"domain_controllers", dc_health_json(dcs, now)},
                                         {"awaiting_change_mappings", awaiting},
                                         {"shared_store", s.shared()}, {"gateways", gws},
                                         {"active_gateway", active == gateways.end() ? json(nullptr) : json(active->name)}});
                           return {};
                       }
                       c.out() << "sync: windows " << (sync.windows ? "on" : "off") << ", partial " << (sync.partial ? "on" : "off")
                               << ", full " << (sync.full ? "on" : "off") << "\n\n";
                       if (s.shared()) {
                           std::vector<std::vector<std::string>> gt;
                           for (const auto& g : gateways)
                               gt.push_back({g.name, g.host, std::to_string(g.pid), g.active ? "active" : "standby",
                                             g.active ? unix_time(g.active_since) : "-",
                                             std::to_string(g.contact_age_ms / 1000) + " s ago"});
                           print_table(c.out(), {"GATEWAY", "HOST", "PID", "ROLE", "ACTIVE SINCE", "LAST CONTACT"}, gt);
                           c.out() << (active == gateways.end() ? "no gateway is active (none holds the lease)\n\n"
                                                                : "active gateway: " + active->name + "\n\n");
                       }
                       std::vector<std::vector<std::string>> table;
                       for (const auto& a : adapters) {
                           const auto& row = rows[ascii_lower(a.name)];
                           table.push_back({a.name, yes_no(a.flags.enabled), std::to_string(row.queued),
                                            row.oldest == TimePoint{} ? "-" : age(row.oldest, now), std::to_string(row.dead),
                                            row.last_ok.empty() ? "-" : row.last_ok, row.last_fail.empty() ? "-" : row.last_fail});
                       }
                       print_table(c.out(), {"ADAPTER", "ENABLED", "QUEUED", "OLDEST", "DEAD", "LAST SUCCESS", "LAST FAILURE"}, table);
                       c.out() << "\nqueued jobs: " << jobs.size() << "   dead letters: " << dead.size()
                               << "   pending captures: " << pending.size() << "   stale mappings: " << stale
                               << "   awaiting the user's change: " << awaiting << "\n";
                       if (!rule_conflicts.empty()) {
                           c.out() << "rule conflicts: " << rule_conflicts.size() << "\n";
                           for (const auto& k : rule_conflicts)
                               c.out() << "  " << k["rule"].get<std::string>() << ": " << k["conflict"].get<std::string>() << "\n";
                       }
                       if (!dcs.empty()) {
                           c.out() << "\n";
                           print_dc_health(c.out(), dcs, now);
                       }
                       return {};
                   }});

    out.push_back({"queue", "list", "[--json]", "queued jobs and dead letters (never their passwords)",
                   [](auto& d, auto&) { d.add_options()("json", "print JSON"); },
                   [](Context& c) -> Status {
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       PWSYNC_ASSIGN(auto r, s.read());
                       PWSYNC_ASSIGN(auto jobs, r.jobs());
                       PWSYNC_ASSIGN(auto dead, r.dead_letters());
                       if (c.want_json()) {
                           json q = json::array(), d = json::array();
                           for (const auto& j : jobs) q.push_back(job_json(j));
                           for (const auto& x : dead) {
                               json doc = job_json(x.job);
                               doc["reason"] = x.reason;
                               doc["died"] = format_iso8601(x.died);
                               d.push_back(std::move(doc));
                           }
                           c.print_json({{"queued", q}, {"dead_letters", d}});
                           return {};
                       }
                       std::vector<std::vector<std::string>> rows;
                       for (const auto& j : jobs)
                           rows.push_back({std::to_string(j.id), "queued", j.adapter, j.external, j.windows,
                                           std::to_string(j.attempts), j.last_error.empty() ? "-" : j.last_error});
                       for (const auto& x : dead)
                           rows.push_back({std::to_string(x.job.id), "dead", x.job.adapter, x.job.external, x.job.windows,
                                           std::to_string(x.job.attempts), x.reason});
                       print_table(c.out(), {"ID", "STATE", "ADAPTER", "EXTERNAL", "WINDOWS", "ATTEMPTS", "LAST ERROR / REASON"}, rows);
                       return {};
                   }});
    out.push_back({"queue", "retry", "ID", "put a dead letter back in the queue", id_option, [](Context& c) -> Status {
                       const auto id = id_arg(c);
                       return write_and_say(c, [&](store::WriteTxn& w) { return w.dead_letter_retry(id); },
                                            "job " + std::to_string(id) + " is queued again");
                   }});
    out.push_back({"queue", "drop", "ID", "delete a dead letter for good", id_option, [](Context& c) -> Status {
                       const auto id = id_arg(c);
                       return write_and_say(c, [&](store::WriteTxn& w) { return w.dead_letter_drop(id); },
                                            "dropped dead letter " + std::to_string(id));
                   }});
    out.push_back({"damping", "reset", "", "forget recent changes so the same password can be sent again", nullptr,
                   [](Context& c) -> Status {
                       PWSYNC_ASSIGN(auto s, c.open_store());
                       std::size_t n = 0;
                       PWSYNC_TRY(s.transact(c.actor(), [&](store::WriteTxn& w) -> Status {
                           PWSYNC_ASSIGN(n, w.purge_markers({}, true));
                           PWSYNC_TRY(w.audit("damping.reset", "markers", std::to_string(n) + " removed"));
                           return {};
                       }));
                       c.out() << "forgot " << n << " recent change(s)\n";
                       return {};
                   }});
}

}  // namespace pwsync::cli
