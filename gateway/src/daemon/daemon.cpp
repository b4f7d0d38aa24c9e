#include "daemon.h"

#include <unistd.h>

#include <future>
#include <optional>
#include <random>
#include <set>

#include "accounts.h"
#include "ad.h"
#include "dispatcher.h"
#include "domains.h"
#include "engine.h"
#include "handler.h"
#include "leadership.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "pwsync/stop_flag.h"
#include "registry.h"
#include "rule_keeper.h"
#include "watch.h"

namespace pwsync::gateway {

static_assert(Metrics::kMaxWatchers >= directory::kMaxDirectories, "a watcher's figures for every domain");

struct Daemon::Parts {
    SystemClock clock;  // first: the store and the rest keep a pointer to it
    AccountEvents account_events;  // the watchers' events, for the background resolution
    std::optional<store::Store> store;
    Domains domains;  // one per [directory] section; none: no directory
    std::optional<Engine> engine;
    std::optional<Dispatcher> dispatcher;
    std::optional<EngineHandler> handler;
    std::optional<Listener> listener;
    std::optional<Metrics> metrics;
    std::optional<FigureSource> figures;
    std::optional<MetricsServer> metrics_server;
    std::optional<Leadership> leadership;  // a shared store only
    std::chrono::seconds rule_interval{0};  // [gateway] rule-interval; 0: rules applied by hand only
};

namespace {

std::string host_name() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
    return buf;
}

// New at every start: the lease names this process, not the gateway.
std::string new_instance_id() {
    std::random_device rd;
    std::string id;
    for (int i = 0; i < 4; ++i) {
        char part[9];
        std::snprintf(part, sizeof part, "%08x", rd());
        id += part;
    }
    return id;
}

// A thread that throws would end the process (std::terminate): log and
// carry on instead.
template <class Loop>
std::thread guarded(std::string what, const std::atomic<bool>& stop, Loop loop) {
    return std::thread([what = std::move(what), &stop, loop] {
        while (!stop) {
            try { loop(); } catch (const std::exception& e) {
                log_error(what + ": " + e.what());
                std::this_thread::sleep_for(std::chrono::seconds(1));
            }
        }
    });
}

// Several domains: a mapping named by a bare sAMAccountName (made before a
// second domain was added) is found by its objectGUID once resolved, but
// its markers and full-sync writes need the domain: say which to rename.
void warn_bare_mappings(const store::Store& store) {
    auto r = store.read();
    if (!r) return;
    std::vector<std::string> bare;
    (void)r->for_each_mapping({}, [&](const store::Mapping& m) {
        if (directory::is_bare_sam(m.windows)) bare.push_back(m.app + "/" + m.windows);
        return true;
    });
    if (bare.empty()) return;
    std::string list;
    for (std::size_t i = 0; i < bare.size() && i < 5; ++i) list += (i ? ", " : "") + bare[i];
    log_warning(std::to_string(bare.size()) + " mapping(s) name their Windows account by a bare sAMAccountName (" + list +
                (bare.size() > 5 ? ", ..." : "") + "), which several domains make ambiguous: create them again as DOMAIN\\sam");
}

// Several gateways: this one's right to write as the active one, as the
// dispatcher sees it; one gateway: none needed.
std::function<std::optional<Fence>()> lease_fence(Daemon::Parts& p) {
    if (!p.leadership) return {};
    return [l = &*p.leadership] { return l->fence(); };
}

}  // namespace

Result<std::unique_ptr<Daemon>> Daemon::start(const DaemonConfig& config, bool check_only) {
    std::unique_ptr<Daemon> d(new Daemon());
    d->parts_ = std::make_unique<Parts>();
    Parts& p = *d->parts_;

    store::Options so;
    so.uri = config.store;
    so.key_file = config.key;
    so.clock = &p.clock;
    PWSYNC_ASSIGN(auto s, store::Store::open(so));
    p.store.emplace(std::move(s));

    PWSYNC_ASSIGN(p.domains, Domains::open(config.directories, &p.clock, [](std::string_view w) { log_warning(w); }));
    if (!p.domains.empty()) p.rule_interval = config.rule_interval;

    EngineOptions eo;
    eo.clock = &p.clock;
    eo.pending_ttl = config.pending_ttl;
    eo.damping_window = config.damping_window;
    eo.ad_retry_delay = config.ad_retry_delay;
    if (!p.domains.empty()) {
        const Domains* domains = &p.domains;
        const store::Store* st = &*p.store;
        eo.domain = domains->several() ? std::string() : p.domains[0].domain().netbios;
        eo.several_domains = domains->several();
        eo.capture_domain = [domains](std::string_view principal) { return domains->domain_of_principal(principal); };
        eo.domain_of_name = [domains](std::string_view account) { return domains->domain_of_name(account); };
        // The objectGUID the store knows for the account: AD is asked by it
        // in one round trip. Empty when unknown (or unreadable): by name.
        const auto known_guid = [st](std::string_view account) {
            if (auto r = st->read())
                if (auto known = r->account(account); known && *known) return (*known)->guid;
            return std::string();
        };
        eo.ad_writer = [domains, st, known_guid](std::string_view account, const Secret& pw) -> Status {
            PWSYNC_ASSIGN(Ad * ad, domains->route(account, *st));
            return ad->write_password(account, pw, {}, known_guid(account));
        };
        eo.resolve = [domains, st](std::string_view account) { return domains->lookup(account, *st); };
        eo.account_state = [domains, st, known_guid](std::string_view account) -> Result<AccountState> {
            PWSYNC_ASSIGN(Ad * ad, domains->route(account, *st));
            PWSYNC_ASSIGN(auto now, ad->state(account, known_guid(account)));
            return AccountState{!now.first.enabled, std::move(now.second), now.first.pwd_last_set == 0};
        };
        // A connection of its own: the shared one is held across full-sync
        // writes, whose capture hook may be the caller.
        eo.account_of_dn = [domains, st](std::string_view dn) -> Result<std::string> {
            PWSYNC_ASSIGN(Ad * ad, domains->route(dn, *st));
            auto c = directory::Connection::open(ad->connect_options());
            if (!c) return fail(Errc::unavailable, c.error().message);
            auto a = directory::resolve_account(*c, ad->domain(), dn);
            if (a) return ad->account_name(a->sam);
            const auto& e = a.error();
            return fail(e.retryable() ? Errc::unavailable : e.reason == directory::Reason::no_such_object ? Errc::not_found
                                                                                                        : Errc::refused,
                        e.message);
        };
    }
    Parts* parts = &p;
    eo.queued = [parts] { if (parts->dispatcher) parts->dispatcher->wake(); };
    p.engine.emplace(*p.store, std::move(eo));

    DispatcherOptions dopts;
    dopts.clock = &p.clock;
    dopts.workers = config.workers;
    dopts.factory = make_adapter;
    dopts.log = [](std::string_view line) { log_error(line); };
    if (p.store->shared()) {
        store::GatewayIdentity me{new_instance_id(), config.name.empty() ? host_name() : config.name, host_name(),
                                  static_cast<std::uint32_t>(::getpid())};
        LeadershipOptions lo;
        lo.failover_timeout = config.failover_timeout;
        lo.info = [](std::string_view line) { log_info(line); };
        lo.warn = [](std::string_view line) { log_warning(line); };
        p.leadership.emplace(*p.store, std::move(me), std::move(lo));
        dopts.fence = lease_fence(p);
        // Jobs queued by the other gateways wake nobody here: look often.
        dopts.idle_poll = std::chrono::milliseconds(250);
    }
    p.dispatcher.emplace(*p.store, dopts);
    if (!p.domains.empty()) {
        store::Adapter settings;  // [gateway] ad-retry-count, ad-retry-delay, ad-max-age
        settings.name = std::string(kWindowsTarget);
        settings.flags.enabled = true;
        settings.retry_count = config.ad_retry_count;
        settings.retry_delay = static_cast<std::uint32_t>(config.ad_retry_delay.count());
        settings.max_age = static_cast<std::uint32_t>(config.ad_max_age.count());
        Engine* engine = &*p.engine;
        auto before = [engine](std::string_view account, const Secret& pw, std::string_view origin, std::string_view app) {
            return engine->before_ad_write(account, pw, origin, app);
        };
        auto hold = [engine](std::string_view account) -> Result<std::shared_ptr<void>> {
            PWSYNC_ASSIGN(auto h, engine->hold_account(account));
            return std::shared_ptr<void>(std::make_shared<Engine::AccountHold>(std::move(h)));
        };
        auto route = [domains = &p.domains, st = &*p.store](std::string_view account) { return domains->route(account, *st); };
        p.dispatcher->add_builtin(settings.name, {settings, std::make_shared<AdTarget>(route, before, hold)});
    }

    p.metrics.emplace(p.clock);
    if (p.domains.several()) {
        std::vector<std::string> names;
        for (std::size_t i = 0; i < p.domains.size(); ++i) names.push_back(p.domains[i].settings().name);
        p.metrics->set_watchers(std::move(names));
    }
    p.figures.emplace(*p.store, *p.metrics, !p.domains.empty());
    if (p.leadership) {
        Leadership* l = &*p.leadership;
        p.figures->set_role([l] {
            const auto st = l->state();
            GatewayRole r;
            r.shared = true;
            r.name = l->identity().name;
            r.active = st.active;
            r.epoch = st.epoch;
            if (st.active)
                r.active_since = std::chrono::duration_cast<std::chrono::seconds>(st.active_since.time_since_epoch()).count();
            if (st.contact_age) r.contact_age_ms = st.contact_age->count();
            r.holder = st.holder;
            return r;
        });
    }
    if (p.domains.several()) warn_bare_mappings(*p.store);
    // Before the listener answers: a change captured from now on is never
    // taken by the watcher's first read for an account's old state.
    if (!check_only)
        for (std::size_t i = 0; i < p.domains.size(); ++i)
            PWSYNC_TRY(began_watching(*p.store, watcher_cursors(p.domains[i], p.domains.several(), i == 0)));
    p.handler.emplace(*p.engine, *p.store, *p.metrics, *p.figures);
    ListenerOptions lo;
    lo.uris = config.listen_uris;
    lo.cert_file = config.cert;
    lo.key_file = config.cert_key;
    lo.client_ca_file = config.client_ca;
    lo.max_connections = config.max_connections;
    lo.max_connections_per_address = config.max_connections_per_address;
    lo.max_message_size = config.max_message_size;
    lo.idle_timeout = config.idle_timeout;
    lo.log = [](std::string_view line) { log_info(line); };
    PWSYNC_ASSIGN(auto listener, Listener::start(lo, *p.handler));
    p.listener.emplace(std::move(listener));
    if (!config.metrics_http.empty()) {
        FigureSource* figures = &*p.figures;
        PWSYNC_ASSIGN(auto server, MetricsServer::start(config.metrics_http, [figures]() -> Result<std::string> {
                          PWSYNC_ASSIGN(auto f, figures->collect());
                          return prometheus_text(f);
                      }));
        p.metrics_server.emplace(std::move(server));
    }
    if (check_only) {
        if (p.metrics_server) p.metrics_server->stop();
        p.listener->stop();
        return d;
    }
    if (p.metrics_server) log_info("metrics on http://" + config.metrics_http + "/metrics");
    for (const auto& e : p.listener->endpoints())
        log_info("listening on " + std::string(e.ldaps ? "ldaps://" : "ldap://") + e.address + ":" + std::to_string(e.port));
    if (p.leadership) {
        Daemon* raw = d.get();
        d->lease_ = guarded("gateway lease", d->stopping_, [raw] { raw->lease_loop(); });
    } else {
        d->start_active();
    }
    return d;
}

void Daemon::start_active() {
    Parts& p = *parts_;
    active_stop_ = false;
    active_ = true;
    p.dispatcher->start();
    housekeeping_ = guarded("housekeeping", active_stop_, [this] { housekeeping_loop(); });
    // Mappings whose account is not resolved yet: resolved in the
    // background, so the listener serves meanwhile.
    if (!p.domains.empty()) resolver_ = guarded("account resolution", active_stop_, [this] { resolve_loop(); });
    for (std::size_t i = 0; i < p.domains.size(); ++i)
        watchers_.push_back(guarded("watcher", active_stop_, [this, i] { watch_loop(i); }));
    if (!p.domains.empty() && p.rule_interval.count() > 0)
        rules_ = guarded("mapping rules", active_stop_, [this] { rules_loop(); });
}

void Daemon::stop_active() {
    if (!active_) return;
    active_stop_ = true;
    // Deliveries in flight end (by the right's deadline at the latest) and
    // their outcomes are recorded while the lease still allows it.
    if (parts_->dispatcher) parts_->dispatcher->stop();
    for (auto* t : {&housekeeping_, &resolver_, &rules_})
        if (t->joinable()) t->join();
    for (auto& t : watchers_) t.join();
    watchers_.clear();
    active_ = false;
}

// Several gateways: heartbeats; the active parts run while this gateway
// holds the lease, from the end of its settling wait.
void Daemon::lease_loop() {
    Leadership& l = *parts_->leadership;
    const auto right_ran_out = [this, &l] {
        if (!active_ || l.fence()) return;
        log_warning("standby: this gateway's right to act as the active one ran out (no heartbeat answered in time): "
                    "the watcher and the dispatcher stop");
        stop_active();
    };
    while (!stopping_) {
        // The heartbeat may hang on a database that vanished: the right is
        // watched meanwhile, and runs out on time whatever the heartbeat does.
        auto beat = std::async(std::launch::async, [&l] { return l.beat(true); });
        while (beat.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) right_ran_out();
        const SteadyTime next = beat.get();
        if (!active_ && l.fence()) {
            // A new term: wait out what the previous holder had on the wire.
            while (!stopping_ && l.fence() && !l.may_deliver()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
            if (!stopping_ && l.may_deliver()) start_active();
        }
        while (!stopping_ && std::chrono::steady_clock::now() < next) {
            if (active_ && !l.fence()) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        right_ran_out();
    }
    stop_active();
    l.release();
}

Daemon::~Daemon() { stop(); }

void Daemon::stop() {
    if (stopping_.exchange(true)) return;
    // Deliveries first: an AD write in flight makes the DC call our listener
    // (its capture hook), which must still answer. With a lease, its thread
    // stops them and gives the lease up.
    if (lease_.joinable()) lease_.join();
    else stop_active();
    if (parts_ && parts_->listener) parts_->listener->stop();
    if (parts_ && parts_->metrics_server) parts_->metrics_server->stop();
}

// Resolves mappings whose account the store does not know: at start, then
// every minute (a mapping created while the directory was unreachable).
void Daemon::resolve_loop() {
    std::set<std::string> reported;
    // A pass ends with the gateway's turn as the active one, and writes only
    // under its lease: once the right is gone (before the lease thread
    // stops the active parts) no lookup is asked in vain.
    const auto fence = lease_fence(*parts_);
    const ResolveGuard guard{[this, fence] { return active_stop_.load() || (fence && !fence()); }, fence};
    while (!active_stop_) {
        const auto lookup = [this](std::string_view account) { return parts_->domains.lookup(account, *parts_->store); };
        auto n = resolve_unresolved(*parts_->store, parts_->clock, &parts_->account_events, lookup, reported,
                                    [](std::string_view line) { log_warning(line); }, guard);
        if (!n && n.error().code == Errc::refused) log_info("resolving mappings' accounts: " + n.error().message);
        else if (!n) log_warning("resolving mappings' accounts: " + n.error().message + " (tried again in a minute)");
        else if (*n > 0) log_info("resolved the accounts of " + std::to_string(*n) + " mapping(s)");
        sleep_unless_stopped(active_stop_, std::chrono::minutes(1));
    }
}

// Mapping rules (rule_keeper.h): a look every rule-interval, an evaluation
// when the directory or a rule changed.
void Daemon::rules_loop() {
    const auto fence = lease_fence(*parts_);
    // One keeper per domain, each with the rules whose scope lies in it.
    const Domains& domains = parts_->domains;
    std::vector<std::unique_ptr<RuleKeeper>> keepers;
    for (std::size_t i = 0; i < domains.size(); ++i) {
        keepers.push_back(std::make_unique<RuleKeeper>(*parts_->store, domains[i],
                                                       [](std::string_view line) { log_info(line); }, fence));
        if (domains.several())
            keepers.back()->only([&domains, i](const store::Rule& r) { return domains.rule_domain(r) == i; });
    }
    while (!active_stop_) {
        for (auto& keeper : keepers)
            if (auto r = keeper->round(); !r) log_warning("mapping rules: " + r.error().message + " (tried again later)");
        sleep_unless_stopped(active_stop_, parts_->rule_interval);
    }
}

void Daemon::housekeeping_loop() {
    while (!active_stop_) {
        if (auto n = parts_->engine->expire_pending(); !n) log_error("expiring pending captures: " + n.error().message);
        else if (*n > 0) {
            parts_->metrics->pending_expired(*n);
            log_warning(std::to_string(*n) + " pending capture(s) expired unconfirmed (see the audit: capture.expired)");
        }
        sleep_unless_stopped(active_stop_, std::chrono::seconds(5));
    }
}

void Daemon::watch_loop(std::size_t domain) {
    Parts& p = *parts_;
    WatchHooks hooks;
    hooks.polled = [&p, domain] { p.metrics->watcher_polled(domain); };
    hooks.down = [&p, domain] { p.metrics->watcher_down(domain); };
    hooks.info = [](std::string_view line) { log_info(line); };
    hooks.error = [](std::string_view line) { log_error(line); };
    hooks.events = &p.account_events;
    Ad& ad = p.domains[domain];
    watch_directory(*p.store, ad, watcher_cursors(ad, p.domains.several(), domain == 0), *p.engine, hooks, active_stop_);
}

}  // namespace pwsync::gateway
