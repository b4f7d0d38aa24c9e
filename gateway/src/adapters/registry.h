// Factories of the built-in adapter types.
#pragma once

#include "pwsync/adapter.h"

namespace pwsync::gateway {

Result<std::unique_ptr<Adapter>> make_exec_adapter(const AdapterContext& context);
Result<std::unique_ptr<Adapter>> make_ldap_adapter(const AdapterContext& context);
Result<std::unique_ptr<Adapter>> make_http_adapter(const AdapterContext& context);

// `inner` behind the adapter's password transform (password-* properties),
// or `inner` itself when it has none.
Result<std::unique_ptr<Adapter>> with_password_transform(const AdapterContext& context, std::unique_ptr<Adapter> inner);
Result<std::unique_ptr<Adapter>> make_null_adapter(const AdapterContext& context);

}  // namespace pwsync::gateway
