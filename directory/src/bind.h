// Binds on a connected handle: simple (DN or UPN + password, TLS only) or
// SASL GSSAPI with credentials from a keytab.
#pragma once

#include "connection_impl.h"

namespace pwsync::directory {

// Binds impl.ld and records the SASL security strength in impl.ssf.
LdapStatus bind_handle(Connection::Impl& impl, const Credentials& credentials);

}  // namespace pwsync::directory
