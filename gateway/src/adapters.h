// Factories of the built-in adapter types.
#pragma once

#include "pwsync/gateway.h"

namespace pwsync::gateway {

Result<std::unique_ptr<Adapter>> make_exec_adapter(const AdapterContext& context);
Result<std::unique_ptr<Adapter>> make_ldap_adapter(const AdapterContext& context);
Result<std::unique_ptr<Adapter>> make_null_adapter(const AdapterContext& context);

}  // namespace pwsync::gateway
