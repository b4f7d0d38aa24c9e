// The `ldap` adapter: sets passwords in an external LDAP directory.
// Built on the directory client (directory/); until it lands, creating one
// reports that plainly instead of pretending to deliver.
#include "adapters.h"

namespace pwsync::gateway {

Result<std::unique_ptr<Adapter>> make_ldap_adapter(const AdapterContext& c) {
    return fail(Errc::unavailable, "adapter '" + c.config.name + "': the ldap adapter type is not built yet");
}

}  // namespace pwsync::gateway
