// The registry of adapter types. Adding a type: its folder, which exports
// one AdapterType, and one line in registry.cpp.
#pragma once

#include "pwsync/adapter.h"

namespace pwsync::gateway {

// Exported by each type's folder.
const AdapterType& ldap_adapter_type();
const AdapterType& exec_adapter_type();
const AdapterType& http_adapter_type();
const AdapterType& null_adapter_type();

const std::vector<AdapterType>& adapter_types();
const AdapterType* find_adapter_type(std::string_view name);

// Whether the password-* properties (transforms, any type) are consistent;
// the error names the property.
Status check_password_transform(const std::map<std::string, std::string>& properties);
// Whether the adapter's settings are well formed for its type, its password
// transform (password-*, any type) included; the error names the property.
Status validate_adapter(const store::Adapter& config);
// The adapter of that type, behind its password transform when it has one.
Result<std::unique_ptr<Adapter>> make_adapter(const AdapterContext& context);

// `inner` behind the adapter's password transform (password-* properties),
// or `inner` itself when it has none.
Result<std::unique_ptr<Adapter>> with_password_transform(const AdapterContext& context, std::unique_ptr<Adapter> inner);

}  // namespace pwsync::gateway
