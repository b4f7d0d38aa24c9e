// The `exec` adapter type as pwsync and pwsyncd know it: its properties and
// what makes a setting of it well formed. The adapter itself is in exec_adapter.cpp.
#include "registry.h"

namespace pwsync::gateway {
namespace {

Status validate_exec(const store::Adapter& a) {
    auto it = a.properties.find("program");
    if (it != a.properties.end() && !it->second.empty() && !it->second.starts_with('/'))
        return fail(Errc::invalid_argument, "exec adapter '" + a.name + "': program must be an absolute path");
    return {};
}

}  // namespace

const AdapterType& exec_adapter_type() {
    static const AdapterType type{"exec", "a program run with the account names as arguments and the password on stdin",
                                  {"program", "args"}, {}, validate_exec};
    return type;
}

}  // namespace pwsync::gateway
