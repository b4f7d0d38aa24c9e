// Connects the listener to the engine: binds and Password Modify requests
// become engine calls, engine results become LDAP results.
#pragma once

#include "engine.h"
#include "listener.h"
#include "log_limiter.h"
#include "metrics.h"

namespace pwsync::gateway {

class EngineHandler final : public RequestHandler {
public:
    explicit EngineHandler(Engine& engine) : engine_(engine) {}
    // Counts changes in `metrics` and serves cn=monitor from `figures` to
    // monitor principals of `store`.
    EngineHandler(Engine& engine, store::Store& store, Metrics& metrics, FigureSource& figures)
        : engine_(engine), store_(&store), metrics_(&metrics), figures_(&figures) {}

    std::expected<std::string, LdapResult> bind_simple(std::string_view dn, const Secret& password,
                                                       const Peer& peer) override;
    std::expected<std::string, LdapResult> bind_external(const Peer& peer) override;
    LdapResult password_modify(const std::string& principal, std::string_view user_identity,
                               const std::optional<Secret>& old_password, const Secret& new_password,
                               const Peer& peer) override;
    std::expected<std::vector<SearchEntry>, LdapResult> search_subtree(const std::string& principal,
                                                                       std::string_view base) override;

private:
    // A bind the store could not check: logged (rate-limited), answered 52 or 80.
    LdapResult unchecked(std::string_view what, const Peer& peer, const Error& e);

    Engine& engine_;
    store::Store* store_ = nullptr;
    Metrics* metrics_ = nullptr;
    FigureSource* figures_ = nullptr;
    LogLimiter unchecked_log_{std::chrono::seconds(10)};
};

}  // namespace pwsync::gateway
