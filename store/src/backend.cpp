// The backend registry: `Store::open(uri)` picks the backend by the URI's
// scheme. Adding a backend: its BackendType here.
#include "backend.h"

#include <algorithm>
#include <vector>

namespace pwsync::store {
namespace {

const BackendType* const kBackends[] = {&kLmdbBackend, &kPostgresqlBackend, &kPostgresBackend};

std::vector<const BackendType*>& registered() {
    static std::vector<const BackendType*> types;
    return types;
}

}  // namespace

void register_backend_type(const BackendType& type) {
    auto& types = registered();
    if (std::find(types.begin(), types.end(), &type) == types.end()) types.push_back(&type);
}

Result<BackendUri> resolve_backend(std::string_view uri) {
    if (uri.empty()) return fail(Errc::invalid_argument, "no store folder given");
    if (const auto colon = uri.find(':'); colon != std::string_view::npos) {
        const std::string_view scheme = uri.substr(0, colon);
        for (const BackendType* b : kBackends)
            if (b->scheme == scheme) return BackendUri{b, std::string(uri.substr(colon + 1))};
        for (const BackendType* b : registered())
            if (b->scheme == scheme) return BackendUri{b, std::string(uri.substr(colon + 1))};
        // "name:" with a scheme-like name and no slash before it: an unknown backend.
        if (scheme.find('/') == std::string_view::npos && !scheme.empty() && uri.substr(colon + 1).starts_with("//"))
            return fail(Errc::invalid_argument, "unknown store backend '" + std::string(scheme) + "' in " + std::string(uri));
    }
    return BackendUri{&kLmdbBackend, std::string(uri)};  // a folder
}

}  // namespace pwsync::store
