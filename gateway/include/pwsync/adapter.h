// pwsync/adapter.h — the adapter SDK: what an adapter is, what it is given,
// and what it answers. Adapter types build on this header alone (and on the
// directory library, for LDAP).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pwsync/store.h"
#include "pwsync/util.h"

namespace pwsync::gateway {

// One password to set on one external account.
struct Delivery {
    std::string windows;           // the Windows account it came from (for programs that want it)
    std::string external;          // the account to change
    const Secret* password = nullptr;
    const Secret* old_password = nullptr;  // with send-old-password, when the store had one
    std::string origin;            // the principal that sent the change
    std::string app;               // the application of the mapping it serves
    std::uint64_t change_id = 0;   // the outbox job: the same on every retry
    TimePoint changed{};           // when the change was queued
    // Several gateways (docs/HA.md): the delivery must be over by then (this
    // gateway's right to deliver ends), so an adapter stops waiting for its
    // system at this time if its own timeout has not ended it before. A
    // default time point: no limit.
    std::chrono::steady_clock::time_point deadline{};
};

// What is left of an adapter's `timeout` under a delivery's deadline.
inline std::chrono::milliseconds time_allowed(const Delivery& d, std::chrono::milliseconds timeout) {
    if (d.deadline == std::chrono::steady_clock::time_point{}) return timeout;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(d.deadline - std::chrono::steady_clock::now());
    return std::clamp(left, std::chrono::milliseconds(1), timeout);
}

enum class Outcome {
    done,       // the external system has the password
    retry,      // try again later (server down, busy, timeout)
    permanent,  // will not work by retrying (no such user, policy refusal)
};

struct DeliveryResult {
    Outcome outcome = Outcome::done;
    std::string message;  // for the audit and dead letters: never a password
    std::chrono::seconds retry_after{0};  // retry: not before this (e.g. HTTP Retry-After)
};

// An adapter talks to one external system. Instances are made from the
// adapter's stored configuration and may be used from several threads.
class Adapter {
public:
    virtual ~Adapter() = default;
    virtual DeliveryResult deliver(const Delivery& delivery) = 0;
};

// What a factory gets: the stored configuration and a way to open its secrets.
struct AdapterContext {
    store::Adapter config;
    std::function<Result<Secret>(std::string_view property)> secret;
};

using AdapterFactory = std::function<Result<std::unique_ptr<Adapter>>(const AdapterContext&)>;

// An adapter type, registered by name (adapters/registry.cpp). Its folder
// under gateway/src/adapters/ exports one of these (type.cpp) and its
// factory (make_<type>_adapter, adapters/factories.cpp): apart, so that
// pwsync, which validates settings, does not link what the adapters
// themselves need (libcurl).
struct AdapterType {
    std::string name;
    std::string summary;
    std::vector<std::string> properties;         // plain properties it understands
    std::vector<std::string> secret_properties;  // properties that must be set as secrets
    // Whether what is set is well formed (a URI that parses, an absolute
    // program): `pwsync adapter create/update` refuse what fails here, so a
    // bad setting is not first found as a dead letter. Properties still
    // missing are left to `make` (an adapter may be completed by updates).
    Status (*validate)(const store::Adapter& config);
};

}  // namespace pwsync::gateway
