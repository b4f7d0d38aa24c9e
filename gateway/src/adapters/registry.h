// The registry of adapter types. Adding a type: its folder, which exports
// its AdapterType (type.cpp) and its factory, and one line in registry.cpp
// and in factories.cpp (a unit test checks that the two agree).
#pragma once

#include "pwsync/adapter.h"

namespace pwsync::gateway {

// Exported by each type's folder: its type (pwsync_adapter_types) and its
// factory (pwsync_gateway_adapters).
const AdapterType& ldap_adapter_type();
const AdapterType& exec_adapter_type();
const AdapterType& http_adapter_type();
const AdapterType& null_adapter_type();
Result<std::unique_ptr<Adapter>> make_ldap_adapter(const AdapterContext& context);
Result<std::unique_ptr<Adapter>> make_exec_adapter(const AdapterContext& context);
Result<std::unique_ptr<Adapter>> make_http_adapter(const AdapterContext& context);
Result<std::unique_ptr<Adapter>> make_null_adapter(const AdapterContext& context);

// ------------------------------------------------ types (pwsync_adapter_types)

const std::vector<AdapterType>& adapter_types();
const AdapterType* find_adapter_type(std::string_view name);

// Whether the password-* properties (transforms, any type) are consistent;
// the error names the property.
Status check_password_transform(const std::map<std::string, std::string>& properties);
// Whether the adapter's settings are well formed for its type, its password
// transform (password-*, any type) included; the error names the property.
Status validate_adapter(const store::Adapter& config);
// ---------------------------------------- factories (pwsync_gateway_adapters)

// The factory of a type; nullptr when there is none.
AdapterFactory find_adapter_factory(std::string_view type);
// The adapter of that type, behind its password transform when it has one.
Result<std::unique_ptr<Adapter>> make_adapter(const AdapterContext& context);

// `inner` behind the adapter's password transform (password-* properties),
// or `inner` itself when it has none.
Result<std::unique_ptr<Adapter>> with_password_transform(const AdapterContext& context, std::unique_ptr<Adapter> inner);

}  // namespace pwsync::gateway
