// pwsync/gateway.h — the sync gateway (pwsyncd): adapters and, as it grows,
// the engine, dispatcher and listener.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pwsync::gateway {

// An adapter type as the CLI and the configuration know it. Types are
// registered by name; each one describes the properties it reads.
struct AdapterType {
    std::string name;
    std::string summary;
    std::vector<std::string> properties;         // plain properties it understands
    std::vector<std::string> secret_properties;  // properties that must be set as secrets
};

const std::vector<AdapterType>& adapter_types();
const AdapterType* find_adapter_type(std::string_view name);

}  // namespace pwsync::gateway
