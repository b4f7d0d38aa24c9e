// pwsync/gateway.h — the sync gateway (pwsyncd): the adapter extension point
// and the pieces the daemon is built from.
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

// ---------------------------------------------------------------- adapters

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
};

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

// An adapter type as the CLI and the daemon know it, registered by name.
struct AdapterType {
    std::string name;
    std::string summary;
    std::vector<std::string> properties;         // plain properties it understands
    std::vector<std::string> secret_properties;  // properties that must be set as secrets
    AdapterFactory factory;
};

const std::vector<AdapterType>& adapter_types();
const AdapterType* find_adapter_type(std::string_view name);
// The adapter of that type, behind its password transform when it has one.
Result<std::unique_ptr<Adapter>> make_adapter(const AdapterContext& context);

// Whether the password-* properties (transforms, any type) are consistent;
// the error names the property.
Status check_password_transform(const std::map<std::string, std::string>& properties);

// ----------------------------------------------------------- configuration

// Every "key = value" of an INI file in order, keys as "section.key" (or
// "key" before any section); comments and blank lines dropped. Shared by
// pwsyncd, pwsync and the capture hook, which read parts of the same files.
struct IniEntry {
    std::string section, key, value;
};
Result<std::vector<IniEntry>> read_ini(const std::string& path);

// "a b  c" -> {"a", "b", "c"} (URI lists).
std::vector<std::string> split_words(const std::string& s);

}  // namespace pwsync::gateway
