#include "daemon.h"

#include <optional>
#include <set>

#include "accounts.h"
#include "ad.h"
#include "dispatcher.h"
#include "engine.h"
#include "handler.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "pwsync/stop_flag.h"
#include "registry.h"
#include "watch.h"

namespace pwsync::gateway {

struct Daemon::Parts {
    std::optional<store::Store> store;
    std::unique_ptr<Ad> ad;
    std::optional<Engine> engine;
    std::optional<Dispatcher> dispatcher;
    std::optional<EngineHandler> handler;
    std::optional<Listener> listener;
    SystemClock clock;
    std::optional<Metrics> metrics;
    std::optional<FigureSource> figures;
    std::optional<MetricsServer> metrics_server;
};

Result<std::unique_ptr<Daemon>> Daemon::start(const DaemonConfig& config, bool check_only) {
    std::unique_ptr<Daemon> d(new Daemon());
    d->parts_ = std::make_unique<Parts>();
    Parts& p = *d->parts_;

    store::Options so;
    so.uri = config.store;
    so.key_file = config.key;
    PWSYNC_ASSIGN(auto s, store::Store::open(so));
    p.store.emplace(std::move(s));

    if (!config.directory.empty()) {
        PWSYNC_ASSIGN(auto settings, directory::parse_settings(config.directory));
        PWSYNC_ASSIGN(auto options, directory::connect_options(settings));
        options.warn = [](std::string_view w) { log_warning(w); };
        p.ad = std::make_unique<Ad>(std::move(settings), std::move(options), &p.clock);
    }

    EngineOptions eo;
    eo.clock = &p.clock;
    eo.pending_ttl = config.pending_ttl;
    eo.damping_window = config.damping_window;
    eo.ad_retry_delay = config.ad_retry_delay;
    if (p.ad) {
        Ad* ad = p.ad.get();
        eo.domain = ad->domain().netbios;
        eo.ad_writer = [ad](std::string_view account, const Secret& pw) { return ad->write_password(account, pw); };
        eo.resolve = [ad](std::string_view account) { return ad->lookup(account); };
        // A connection of its own: the shared one is held across full-sync
        // writes, whose capture hook may be the caller.
        eo.account_of_dn = [ad](std::string_view dn) -> Result<std::string> {
            auto c = directory::Connection::open(ad->connect_options());
            if (!c) return fail(Errc::unavailable, c.error().message);
            auto a = directory::resolve_account(*c, ad->domain(), dn);
            if (a) return a->sam;
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
    p.dispatcher.emplace(*p.store, dopts);
    if (p.ad) {
        store::Adapter settings;  // [gateway] ad-retry-count, ad-retry-delay, ad-max-age
        settings.name = std::string(kWindowsTarget);
        settings.flags.enabled = true;
        settings.retry_count = config.ad_retry_count;
        settings.retry_delay = static_cast<std::uint32_t>(config.ad_retry_delay.count());
        settings.max_age = static_cast<std::uint32_t>(config.ad_max_age.count());
        Engine* engine = &*p.engine;
        auto before = [engine](std::string_view account, const Secret& pw, std::string_view origin) {
            return engine->before_ad_write(account, pw, origin);
        };
        p.dispatcher->add_builtin(settings.name, {settings, std::make_shared<AdTarget>(*p.ad, before)});
    }

    p.metrics.emplace(p.clock);
    p.figures.emplace(*p.store, *p.metrics, p.ad != nullptr);
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
    p.dispatcher->start();
    // A thread that throws would end the process (std::terminate): log and
    // carry on instead.
    d->housekeeping_ = std::thread([raw = d.get()] {
        while (!raw->stopping_) {
            try { raw->housekeeping_loop(); } catch (const std::exception& e) {
                log_error(std::string("housekeeping: ") + e.what());
                std::this_thread::sleep_for(std::chrono::seconds(1));
            }
        }
    });
    // Mappings whose account is not resolved yet: resolved in the
    // background, so the listener serves meanwhile.
    if (p.ad) d->resolver_ = std::thread([raw = d.get()] {
        while (!raw->stopping_) {
            try { raw->resolve_loop(); } catch (const std::exception& e) {
                log_error(std::string("account resolution: ") + e.what());
                std::this_thread::sleep_for(std::chrono::seconds(1));
            }
        }
    });
    if (p.ad) d->watcher_ = std::thread([raw = d.get()] {
        while (!raw->stopping_) {
            try { raw->watch_loop(); } catch (const std::exception& e) {
                log_error(std::string("watcher: ") + e.what());
                std::this_thread::sleep_for(std::chrono::seconds(1));
            }
        }
    });
    return d;
}

Daemon::~Daemon() { stop(); }

void Daemon::stop() {
    if (stopping_.exchange(true)) return;
    // Deliveries first: an AD write in flight makes the DC call our listener
    // (its capture hook), which must still answer.
    if (parts_ && parts_->dispatcher) parts_->dispatcher->stop();
    if (parts_ && parts_->listener) parts_->listener->stop();
    if (parts_ && parts_->metrics_server) parts_->metrics_server->stop();
    if (housekeeping_.joinable()) housekeeping_.join();
    if (watcher_.joinable()) watcher_.join();
    if (resolver_.joinable()) resolver_.join();
}

// Resolves mappings whose account the store does not know: at start, then
// every minute (a mapping created while the directory was unreachable).
void Daemon::resolve_loop() {
    std::set<std::string> reported;
    while (!stopping_) {
        auto n = resolve_unresolved(*parts_->store, *parts_->ad, reported, [](std::string_view line) { log_warning(line); });
        if (!n) log_warning("resolving mappings' accounts: " + n.error().message + " (tried again in a minute)");
        else if (*n > 0) log_info("resolved the accounts of " + std::to_string(*n) + " mapping(s)");
        sleep_unless_stopped(stopping_, std::chrono::minutes(1));
    }
}

void Daemon::housekeeping_loop() {
    while (!stopping_) {
        if (auto n = parts_->engine->expire_pending(); !n) log_error("expiring pending captures: " + n.error().message);
        else if (*n > 0) {
            parts_->metrics->pending_expired(*n);
            log_warning(std::to_string(*n) + " pending capture(s) expired unconfirmed (see the audit: capture.expired)");
        }
        sleep_unless_stopped(stopping_, std::chrono::seconds(5));
    }
}

void Daemon::watch_loop() {
    Parts& p = *parts_;
    WatchHooks hooks;
    hooks.polled = [&p] { p.metrics->watcher_polled(); };
    hooks.down = [&p] { p.metrics->watcher_down(); };
    hooks.info = [](std::string_view line) { log_info(line); };
    hooks.error = [](std::string_view line) { log_error(line); };
    watch_directory(*p.store, *p.ad, *p.engine, hooks, stopping_);
}

}  // namespace pwsync::gateway
