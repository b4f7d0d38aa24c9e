#include "metrics.h"

#include <algorithm>
#include <cstdio>

#include "listener.h"

namespace pwsync::gateway {
namespace {

std::size_t mode_index(std::string_view mode) {
    const auto it = std::ranges::find(kModes, mode);
    return it == kModes.end() ? kModes.size() - 1 : static_cast<std::size_t>(it - kModes.begin());
}

std::size_t result_index(ChangeOutcome outcome) {
    switch (outcome) {
        case ChangeOutcome::stored: return 0;
        case ChangeOutcome::incomplete:
        case ChangeOutcome::bad_password:
        case ChangeOutcome::refused:
        case ChangeOutcome::no_mapping:
        case ChangeOutcome::refused_by_ad: return 1;
        case ChangeOutcome::denied:
        case ChangeOutcome::wrong_old_password: return 2;
        case ChangeOutcome::malformed:  // counted as failed, as protocolError always was
        case ChangeOutcome::unavailable:
        case ChangeOutcome::failed: break;
    }
    return 3;
}

std::string escape_label(std::string_view v) {
    std::string out;
    for (const char c : v) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') { out += "\\n"; continue; }
        out += c;
    }
    return out;
}

// An RDN value: escape what RFC 4514 requires.
std::string rdn_value(std::string_view v) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        const char c = v[i];
        if (c == ',' || c == '+' || c == '"' || c == '\\' || c == '<' || c == '>' || c == ';' || c == '=' ||
            (i == 0 && (c == ' ' || c == '#')) || (i + 1 == v.size() && c == ' '))
            out += '\\';
        out += c;
    }
    return out;
}

std::string num(std::int64_t n) { return std::to_string(n); }
std::string seconds(std::chrono::nanoseconds d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6f", std::chrono::duration<double>(d).count());
    return buf;
}
std::int64_t millis(std::chrono::nanoseconds d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

}  // namespace

void Metrics::change(std::string_view mode, ChangeOutcome outcome, std::chrono::nanoseconds took,
                     ChangeTimes parts) noexcept {
    const std::size_t m = mode_index(mode);
    changes_[m][result_index(outcome)].fetch_add(1, std::memory_order_relaxed);
    times_[m].all.fetch_add(took.count(), std::memory_order_relaxed);
    times_[m].directory.fetch_add(parts.directory.count(), std::memory_order_relaxed);
    times_[m].store.fetch_add(parts.store.count(), std::memory_order_relaxed);
}

Metrics::Snapshot Metrics::snapshot(bool watcher_configured) const {
    Snapshot s;
    for (std::size_t m = 0; m < kModes.size(); ++m)
        for (std::size_t r = 0; r < kResults.size(); ++r) s.changes[m][r] = changes_[m][r].load(std::memory_order_relaxed);
    for (std::size_t m = 0; m < kModes.size(); ++m) {
        s.times[m].all = std::chrono::nanoseconds(times_[m].all.load(std::memory_order_relaxed));
        s.times[m].directory = std::chrono::nanoseconds(times_[m].directory.load(std::memory_order_relaxed));
        s.times[m].store = std::chrono::nanoseconds(times_[m].store.load(std::memory_order_relaxed));
    }
    const TimePoint now = clock_.now();
    s.uptime = std::chrono::duration_cast<std::chrono::seconds>(now - started_);
    s.watcher_configured = watcher_configured;
    s.pending_expired = pending_expired_.load(std::memory_order_relaxed);
    if (!watcher_configured) return s;
    const std::size_t n = std::clamp<std::size_t>(watcher_names_.size(), 1, kMaxWatchers);
    s.watcher_up = true;
    for (std::size_t i = 0; i < n; ++i) {
        Snapshot::Watcher w{i < watcher_names_.size() ? watcher_names_[i] : std::string(), watchers_[i].up.load(), {}};
        w.lag = std::chrono::seconds(-1);
        if (const auto last = watchers_[i].last_poll.load(); last != 0)
            w.lag = std::chrono::duration_cast<std::chrono::seconds>(now - TimePoint(TimePoint::duration(last)));
        s.watcher_up = s.watcher_up && w.up;
        // The longest lag; one that never polled counts as never.
        if (i == 0 || s.watcher_lag.count() >= 0) s.watcher_lag = w.lag.count() < 0 ? w.lag : std::max(s.watcher_lag, w.lag);
        if (n > 1) s.watchers.push_back(std::move(w));
    }
    return s;
}

Result<Figures> FigureSource::collect() {
    Figures f;
    f.counters = metrics_.snapshot(watcher_);
    const TimePoint now = metrics_.clock().now();
    PWSYNC_ASSIGN(auto r, store_.read());
    PWSYNC_ASSIGN(auto adapters, r.adapters());
    for (const auto& a : adapters) f.adapters[a.name];
    PWSYNC_ASSIGN(auto jobs, r.jobs());
    for (const auto& j : jobs) {
        auto& a = f.adapters[j.adapter];
        ++a.queued;
        a.oldest_queued = std::max(a.oldest_queued, std::chrono::duration_cast<std::chrono::seconds>(now - j.created));
    }
    PWSYNC_ASSIGN(auto dead, r.dead_letters());
    for (const auto& d : dead) ++f.adapters[d.job.adapter].dead_letters;
    f.queued = jobs.size();
    f.dead_letters = dead.size();
    PWSYNC_ASSIGN(auto counts, r.counts());
    f.pending_captures = counts.pending;
    f.mappings = counts.mappings;
    PWSYNC_ASSIGN(auto rules, r.rules());
    for (const auto& x : rules) f.rule_conflicts += x.conflicts.size();
    std::lock_guard lock(mutex_);
    if (stale_at_ == TimePoint{} || now - stale_at_ >= stale_refresh_) {
        std::uint64_t stale = 0, awaiting = 0;
        PWSYNC_TRY(r.for_each_mapping({}, [&](const store::Mapping& m) {
            stale += m.status == store::MappingStatus::stale;
            awaiting += m.status == store::MappingStatus::awaiting_change;
            return true;
        }));
        stale_ = stale;
        awaiting_ = awaiting;
        stale_at_ = now;
    }
    f.stale_mappings = stale_;
    PWSYNC_ASSIGN(f.dcs, store::dc_health(r));
    f.now = now;
    f.awaiting_change_mappings = awaiting_;
    f.writer = store_.writer_time();
    if (role_) {
        f.role = role_();
        // Gateways heard from in the last hour; a store that does not answer
        // leaves the list empty rather than the figures unanswered.
        if (auto g = store_.gateways(std::chrono::hours(1)); g) f.role.gateways = std::move(*g);
    }
    return f;
}

std::vector<SearchEntry> monitor_entries(const Figures& f) {
    const auto& c = f.counters;
    std::vector<SearchEntry> out;
    out.push_back({"cn=monitor",
                   {{"objectClass", {"top", "extensibleObject"}},
                    {"cn", {"monitor"}},
                    {"description", {"pwsync gateway " PWSYNC_VERSION}},
                    {"pwsyncUptime", {num(c.uptime.count())}},
                    {"pwsyncStoreWriteBatches", {num(static_cast<std::int64_t>(f.writer.batches))}},
                    {"pwsyncStoreWriteUnits", {num(static_cast<std::int64_t>(f.writer.units))}},
                    {"pwsyncStoreWriterRunningMs", {num(millis(f.writer.running))}},
                    {"pwsyncStoreWriterCommittingMs", {num(millis(f.writer.committing))}},
                    {"pwsyncStoreWriterGatheringMs", {num(millis(f.writer.gathering))}},
                    {"pwsyncQueued", {num(static_cast<std::int64_t>(f.queued))}},
                    {"pwsyncDeadLetters", {num(static_cast<std::int64_t>(f.dead_letters))}},
                    {"pwsyncPendingCaptures", {num(static_cast<std::int64_t>(f.pending_captures))}},
                    {"pwsyncPendingExpired", {num(static_cast<std::int64_t>(c.pending_expired))}},
                    {"pwsyncMappings", {num(static_cast<std::int64_t>(f.mappings))}},
                    {"pwsyncStaleMappings", {num(static_cast<std::int64_t>(f.stale_mappings))}},
                    {"pwsyncRuleConflicts", {num(static_cast<std::int64_t>(f.rule_conflicts))}},
                    {"pwsyncAwaitingChangeMappings", {num(static_cast<std::int64_t>(f.awaiting_change_mappings))}},
                    {"pwsyncWatcherUp", {c.watcher_up ? "TRUE" : "FALSE"}},
                    {"pwsyncWatcherLag", {num(c.watcher_lag.count())}}}});
    out.push_back({"cn=changes,cn=monitor", {{"objectClass", {"top", "extensibleObject"}}, {"cn", {"changes"}}}});
    for (std::size_t m = 0; m < kModes.size(); ++m) {
        SearchEntry e{"cn=" + std::string(kModes[m]) + ",cn=changes,cn=monitor",
                      {{"objectClass", {"top", "extensibleObject"}}, {"cn", {std::string(kModes[m])}}}};
        for (std::size_t r = 0; r < kResults.size(); ++r) {
            std::string attr = "pwsync" + std::string(kResults[r]);
            attr[6] = static_cast<char>(attr[6] - 'a' + 'A');
            e.attributes.push_back({attr, {num(static_cast<std::int64_t>(c.changes[m][r]))}});
        }
        e.attributes.push_back({"pwsyncChangeMs", {num(millis(c.times[m].all))}});
        e.attributes.push_back({"pwsyncDirectoryMs", {num(millis(c.times[m].directory))}});
        e.attributes.push_back({"pwsyncStoreMs", {num(millis(c.times[m].store))}});
        out.push_back(std::move(e));
    }
    const auto& r = f.role;
    out.front().attributes.push_back({"pwsyncGatewayActive", {r.active ? "TRUE" : "FALSE"}});
    if (r.shared) {
        out.front().attributes.push_back({"pwsyncGatewayName", {r.name}});
        out.front().attributes.push_back({"pwsyncStoreContactAge", {num(r.contact_age_ms)}});
        out.push_back({"cn=gateways,cn=monitor", {{"objectClass", {"top", "extensibleObject"}}, {"cn", {"gateways"}}}});
        for (const auto& g : r.gateways)
            out.push_back({"cn=" + rdn_value(g.name) + ",cn=gateways,cn=monitor",
                           {{"objectClass", {"top", "extensibleObject"}},
                            {"cn", {g.name}},
                            {"pwsyncHost", {g.host}},
                            {"pwsyncPid", {num(g.pid)}},
                            {"pwsyncActive", {g.active ? "TRUE" : "FALSE"}},
                            {"pwsyncActiveSince", {num(g.active_since)}},
                            {"pwsyncEpoch", {num(static_cast<std::int64_t>(g.epoch))}},
                            {"pwsyncStarted", {num(g.started)}},
                            {"pwsyncLastContact", {num(g.last_contact)}}}});
    }
    out.push_back({"cn=dcs,cn=monitor", {{"objectClass", {"top", "extensibleObject"}}, {"cn", {"dcs"}}}});
    for (const auto& d : f.dcs) {
        const auto day = store::dc_window(d, f.now);
        out.push_back({"cn=" + rdn_value(d.dc) + ",cn=dcs,cn=monitor",
                       {{"objectClass", {"top", "extensibleObject"}},
                        {"cn", {d.dc}},
                        {"pwsyncPasswordChanges", {num(static_cast<std::int64_t>(d.captured + d.uncaptured))}},
                        {"pwsyncCaptured", {num(static_cast<std::int64_t>(d.captured))}},
                        {"pwsyncUncaptured", {num(static_cast<std::int64_t>(d.uncaptured))}},
                        {"pwsyncCaptured24h", {num(static_cast<std::int64_t>(day.captured))}},
                        {"pwsyncUncaptured24h", {num(static_cast<std::int64_t>(day.uncaptured))}},
                        {"pwsyncLastCapture", {num(d.last_capture)}},
                        {"pwsyncLastUncaptured", {num(d.last_uncaptured)}},
                        {"pwsyncVerdict", {store::dc_verdict_name(store::dc_verdict(d, f.now))}}}});
    }
    out.push_back({"cn=adapters,cn=monitor", {{"objectClass", {"top", "extensibleObject"}}, {"cn", {"adapters"}}}});
    for (const auto& [name, a] : f.adapters)
        out.push_back({"cn=" + rdn_value(name) + ",cn=adapters,cn=monitor",
                       {{"objectClass", {"top", "extensibleObject"}},
                        {"cn", {name}},
                        {"pwsyncQueued", {num(static_cast<std::int64_t>(a.queued))}},
                        {"pwsyncOldestQueued", {num(a.oldest_queued.count())}},
                        {"pwsyncDeadLetters", {num(static_cast<std::int64_t>(a.dead_letters))}}}});
    return out;
}

std::string prometheus_text(const Figures& f) {
    const auto& c = f.counters;
    std::string out;
    auto head = [&](const char* name, const char* type, const char* help) {
        out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    };
    auto line = [&](const std::string& name, std::int64_t v) { out += name + " " + num(v) + "\n"; };
    head("pwsync_changes_total", "counter", "Password changes answered by the listener, by sync mode and result.");
    for (std::size_t m = 0; m < kModes.size(); ++m)
        for (std::size_t r = 0; r < kResults.size(); ++r)
            line("pwsync_changes_total{mode=\"" + std::string(kModes[m]) + "\",result=\"" + std::string(kResults[r]) + "\"}",
                 static_cast<std::int64_t>(c.changes[m][r]));
    head("pwsync_change_seconds_total", "counter",
         "Time the listener's password changes took, by sync mode: from the request to the answer (all), and within it "
         "asking the directory (a name, the account's state, full sync's AD write) and in the store (waiting for the "
         "writer's turn and its commit). Divided by pwsync_changes_total: where a change's time goes.");
    for (std::size_t m = 0; m < kModes.size(); ++m) {
        const std::string mode = "pwsync_change_seconds_total{mode=\"" + std::string(kModes[m]) + "\",part=\"";
        out += mode + "all\"} " + seconds(c.times[m].all) + "\n";
        out += mode + "directory\"} " + seconds(c.times[m].directory) + "\n";
        out += mode + "store\"} " + seconds(c.times[m].store) + "\n";
    }
    head("pwsync_queued", "gauge", "Changes waiting for delivery, by adapter.");
    for (const auto& [name, a] : f.adapters)
        line("pwsync_queued{adapter=\"" + escape_label(name) + "\"}", static_cast<std::int64_t>(a.queued));
    head("pwsync_oldest_queued_seconds", "gauge", "Age of the oldest change waiting for delivery, by adapter.");
    for (const auto& [name, a] : f.adapters)
        line("pwsync_oldest_queued_seconds{adapter=\"" + escape_label(name) + "\"}", a.oldest_queued.count());
    head("pwsync_dead_letters", "gauge", "Changes that will not be delivered without an operator, by adapter.");
    for (const auto& [name, a] : f.adapters)
        line("pwsync_dead_letters{adapter=\"" + escape_label(name) + "\"}", static_cast<std::int64_t>(a.dead_letters));
    head("pwsync_pending_captures", "gauge", "Pre-commit captures waiting for the directory to confirm them.");
    line("pwsync_pending_captures", static_cast<std::int64_t>(f.pending_captures));
    head("pwsync_pending_expired_total", "counter",
         "Pre-commit captures the directory never confirmed within pending-ttl (not sent anywhere).");
    line("pwsync_pending_expired_total", static_cast<std::int64_t>(c.pending_expired));
    head("pwsync_mappings", "gauge", "Account mappings in the store.");
    line("pwsync_mappings", static_cast<std::int64_t>(f.mappings));
    head("pwsync_stale_mappings", "gauge", "Mappings whose stored credential is known to be out of date.");
    line("pwsync_stale_mappings", static_cast<std::int64_t>(f.stale_mappings));
    head("pwsync_rule_conflicts", "gauge", "Conflicts the mapping rules' last evaluations found (pwsync status lists them).");
    line("pwsync_rule_conflicts", static_cast<std::int64_t>(f.rule_conflicts));
    head("pwsync_dc_password_changes_total", "counter",
         "Password changes the watcher saw, by the DC they were made on and whether a capture explained them.");
    for (const auto& d : f.dcs)
        for (const bool captured : {true, false})
            line("pwsync_dc_password_changes_total{dc=\"" + escape_label(d.dc) + "\",captured=\"" + (captured ? "true" : "false") + "\"}",
                 static_cast<std::int64_t>(captured ? d.captured : d.uncaptured));
    head("pwsync_dc_uncaptured_24h", "gauge", "Password changes made on the DC in the last 24 hours that no capture explained.");
    for (const auto& d : f.dcs)
        line("pwsync_dc_uncaptured_24h{dc=\"" + escape_label(d.dc) + "\"}", static_cast<std::int64_t>(store::dc_window(d, f.now).uncaptured));
    head("pwsync_dc_last_capture_timestamp_seconds", "gauge",
         "When a capture last explained a change made on the DC (Unix time; 0: never).");
    for (const auto& d : f.dcs) line("pwsync_dc_last_capture_timestamp_seconds{dc=\"" + escape_label(d.dc) + "\"}", d.last_capture);
    head("pwsync_dc_capture_verdict", "gauge",
         "1 for the DC's verdict over the last 24 hours: capturing, partly (some changes uncaptured), silent (none captured).");
    for (const auto& d : f.dcs) {
        const auto v = store::dc_verdict(d, f.now);
        for (const auto each : {store::DcVerdict::capturing, store::DcVerdict::partly, store::DcVerdict::silent, store::DcVerdict::unknown})
            line("pwsync_dc_capture_verdict{dc=\"" + escape_label(d.dc) + "\",verdict=\"" + store::dc_verdict_name(each) + "\"}",
                 v == each ? 1 : 0);
    }
    head("pwsync_awaiting_change_mappings", "gauge",
         "Mappings holding back a temporary password until the user's own change (temporary-passwords = hold).");
    line("pwsync_awaiting_change_mappings", static_cast<std::int64_t>(f.awaiting_change_mappings));
    // Several domains: one series per domain's watcher, labelled directory="NAME".
    head("pwsync_watcher_up", "gauge", "1 while the directory watcher is connected (0 also when none is configured).");
    if (c.watchers.empty()) line("pwsync_watcher_up", c.watcher_up ? 1 : 0);
    for (const auto& w : c.watchers) line("pwsync_watcher_up{directory=\"" + escape_label(w.name) + "\"}", w.up ? 1 : 0);
    head("pwsync_watcher_lag_seconds", "gauge", "Seconds since the directory watcher's last successful poll (-1: never).");
    if (c.watchers.empty()) line("pwsync_watcher_lag_seconds", c.watcher_lag.count());
    for (const auto& w : c.watchers) line("pwsync_watcher_lag_seconds{directory=\"" + escape_label(w.name) + "\"}", w.lag.count());
    const auto& r = f.role;
    head("pwsync_active", "gauge", "1 while this gateway is the active one (runs the watcher and the dispatcher).");
    line("pwsync_active", r.active ? 1 : 0);
    if (r.shared) {
        head("pwsync_active_since_seconds", "gauge", "When this gateway became the active one (Unix time; 0: standby).");
        line("pwsync_active_since_seconds", r.active_since);
        head("pwsync_store_contact_age_seconds", "gauge",
             "Seconds since this gateway's last heartbeat answered by the store (-1: none yet).");
        line("pwsync_store_contact_age_seconds", r.contact_age_ms < 0 ? -1 : r.contact_age_ms / 1000);
        head("pwsync_gateway_active", "gauge", "1 for the gateway that holds the lease, by gateway (as the store sees it).");
        for (const auto& g : r.gateways) line("pwsync_gateway_active{gateway=\"" + escape_label(g.name) + "\"}", g.active ? 1 : 0);
        head("pwsync_gateway_contact_age_seconds", "gauge", "Seconds since each gateway's last heartbeat (database clock).");
        for (const auto& g : r.gateways)
            line("pwsync_gateway_contact_age_seconds{gateway=\"" + escape_label(g.name) + "\"}", g.contact_age_ms / 1000);
    }
    head("pwsync_store_write_batches_total", "counter", "Group commits of the store's single writer (one transaction each).");
    line("pwsync_store_write_batches_total", static_cast<std::int64_t>(f.writer.batches));
    head("pwsync_store_write_units_total", "counter", "Units of work in those commits (a change, a dispatcher pass's outcomes, ...).");
    line("pwsync_store_write_units_total", static_cast<std::int64_t>(f.writer.units));
    head("pwsync_store_writer_seconds_total", "counter",
         "Time the store's single writer spent running units of work, committing them (writing and flushing pages), "
         "and gathering (holding its turn, idle, while more writers join a large commit); "
         "a rate near 1 means the writer is the limit.");
    out += "pwsync_store_writer_seconds_total{part=\"running\"} " + seconds(f.writer.running) + "\n";
    out += "pwsync_store_writer_seconds_total{part=\"committing\"} " + seconds(f.writer.committing) + "\n";
    out += "pwsync_store_writer_seconds_total{part=\"gathering\"} " + seconds(f.writer.gathering) + "\n";
    head("pwsync_uptime_seconds", "gauge", "Seconds since pwsyncd started.");
    line("pwsync_uptime_seconds", c.uptime.count());
    head("pwsync_build_info", "gauge", "The running version.");
    line("pwsync_build_info{version=\"" PWSYNC_VERSION "\"}", 1);
    return out;
}

}  // namespace pwsync::gateway
