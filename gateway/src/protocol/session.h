// One client connection, served on its own thread: LDAP framing with a size
// check before any allocation, the TLS-first rule, and the operations.
#pragma once

#include <functional>
#include <string_view>

#include "bind_throttle.h"
#include "listener.h"
#include "stream.h"
#include "tls_context.h"

namespace pwsync::gateway {

// What every connection of one listener shares (all of it outlives them).
struct SessionContext {
    RequestHandler& handler;
    const ListenerOptions& options;
    const Clock& clock;
    const TlsContext& tls;
    BindThrottle& throttle;
    int stop_fd;  // readable once the listener stops
};

// Serves the connection until it ends; never throws. Idle time (and the
// TLS handshake's time) counts from `accepted_at`.
void serve_session(const SessionContext& ctx, Fd fd, bool ldaps, Peer peer, TimePoint accepted_at) noexcept;

}  // namespace pwsync::gateway
