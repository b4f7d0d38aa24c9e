// The `http` adapter type as pwsync and pwsyncd know it: its properties and
// what makes a setting of it well formed. The adapter itself is in http_adapter.cpp.
#include "registry.h"

namespace pwsync::gateway {
namespace {

Status validate_http(const store::Adapter& a) {
    const std::string name = "http adapter '" + a.name + "'";
    auto get = [&](const char* k) { auto it = a.properties.find(k); return it == a.properties.end() ? std::string() : it->second; };
    if (a.properties.contains("url") && !get("url").starts_with("https://"))
        return fail(Errc::invalid_argument, name + ": url must be https://...");
    if (get("cert").empty() != get("key").empty()) return fail(Errc::invalid_argument, name + ": cert and key go together");
    return {};
}

}  // namespace

const AdapterType& http_adapter_type() {
    static const AdapterType type{"http", "a webhook: an HTTPS POST of a signed JSON body", {"url", "ca", "cert", "key"},
                                  {"token", "hmac-secret"}, validate_http};
    return type;
}

}  // namespace pwsync::gateway
