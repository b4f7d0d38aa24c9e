// Readiness for systemd's Type=notify, without linking libsystemd: one
// datagram to $NOTIFY_SOCKET (a path, or an abstract name starting with '@').
#pragma once

#include <string_view>

namespace pwsync::gateway {

// Sends `state` ("READY=1", "STOPPING=1", ...). Returns false when systemd
// did not ask (no NOTIFY_SOCKET) or the datagram could not be sent.
bool sd_notify(std::string_view state) noexcept;

}  // namespace pwsync::gateway
