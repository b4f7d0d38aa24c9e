// A TCP forwarder for reliability tests: listens on one address, forwards
// each connection to the real server, and can cut every connection (the
// server "went away") or stop accepting (the server is down).
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pwsync::test {

class TcpProxy {
public:
    // Listens on listen_ip:listen_port, forwards to target_ip:target_port.
    TcpProxy(const std::string& listen_ip, int listen_port, const std::string& target_ip, int target_port);
    TcpProxy(const TcpProxy&) = delete;
    TcpProxy& operator=(const TcpProxy&) = delete;
    ~TcpProxy();

    bool listening() const { return listen_fd_ >= 0; }
    // Closes every forwarded connection (new ones are still accepted).
    void cut();
    // Stops accepting new connections (they are refused) or starts again.
    void set_accepting(bool on) { accepting_ = on; }
    int connections_seen() const { return seen_; }

private:
    void loop();

    int listen_fd_ = -1;
    int wake_[2] = {-1, -1};
    std::string target_ip_;
    int target_port_;
    std::atomic<bool> stop_{false};
    std::atomic<bool> accepting_{true};
    std::atomic<bool> cut_{false};
    std::atomic<int> seen_{0};
    std::thread thread_;
};

}  // namespace pwsync::test
