// The `null` adapter type as pwsync and pwsyncd know it: its properties and
// what makes a setting of it well formed. The adapter itself is in null_adapter.cpp.
#include "registry.h"

namespace pwsync::gateway {

const AdapterType& null_adapter_type() {
    static const AdapterType type{"null", "accepts every password and does nothing (benchmarks, dry runs)", {}, {},
                                  [](const store::Adapter&) -> Status { return {}; }};
    return type;
}

}  // namespace pwsync::gateway
