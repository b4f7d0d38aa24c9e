// The optional Prometheus endpoint: plain HTTP GET /metrics on a loopback
// address only (the figures carry no secrets, but names of adapters and
// volumes are nobody else's business). One thread, one request per
// connection, small bounded reads with a deadline.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "pwsync/util.h"

namespace pwsync::gateway {

class MetricsServer {
public:
    // `address` is "127.0.0.1:PORT", "[::1]:PORT" or "localhost:PORT"; port 0
    // picks a free one. Anything not loopback is refused.
    static Result<MetricsServer> start(const std::string& address, std::function<Result<std::string>()> render);

    MetricsServer(MetricsServer&&) noexcept;
    MetricsServer& operator=(MetricsServer&&) noexcept;
    ~MetricsServer();  // stop()
    void stop();
    std::uint16_t port() const;

    struct Impl;

private:
    explicit MetricsServer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace pwsync::gateway
