// One pass over the spool: every entry in capture order is unsealed and sent;
// it is deleted only once the gateway said stored. A damaged entry goes to
// spool\bad, a change the gateway refused for good to spool\refused, one
// older than max-age (if configured) to spool\expired: set aside with an
// event log entry, never silently dropped.
#pragma once

#include <cstddef>

#include "gateway_client.h"
#include "spool_record.h"

namespace pwsync::win {

struct PassResult {
    std::size_t sent = 0, set_aside = 0, left = 0;
    bool unreachable = false;
};

PassResult spool_pass(GatewayClient& client, Sealer& sealer, const AgentConfig& cfg);

}  // namespace pwsync::win
