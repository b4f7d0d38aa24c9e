// `pwsyncd --health-check`: does this gateway's listener answer? For
// container health checks and monitoring probes on the gateway's own host.
#pragma once

#include <string>

#include "config.h"
#include "pwsync/util.h"

namespace pwsync::gateway {

// Sends an anonymous WhoAmI to the first listen URI (a wildcard address is
// asked on loopback) and returns what answered, or why nothing did. The
// server certificate is not verified: the probe sends no secret, and it
// checks that the listener serves, not who it is.
Result<std::string> probe_listener(const DaemonConfig& config, int timeout_seconds);

}  // namespace pwsync::gateway
