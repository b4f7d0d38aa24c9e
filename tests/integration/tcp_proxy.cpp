#include "tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace pwsync::test {
namespace {

sockaddr_in address(const std::string& ip, int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
    return a;
}

}  // namespace

TcpProxy::TcpProxy(const std::string& listen_ip, int listen_port, const std::string& target_ip, int target_port)
    : target_ip_(target_ip), target_port_(target_port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const auto a = address(listen_ip, listen_port);
    if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 16) != 0) {
        ::close(listen_fd_);
        listen_fd_ = -1;
        return;
    }
    if (::pipe2(wake_, O_CLOEXEC) != 0) return;
    thread_ = std::thread([this] { loop(); });
}

TcpProxy::~TcpProxy() {
    stop_ = true;
    if (wake_[1] >= 0) (void)!::write(wake_[1], "x", 1);
    if (thread_.joinable()) thread_.join();
    for (int fd : {listen_fd_, wake_[0], wake_[1]})
        if (fd >= 0) ::close(fd);
}

void TcpProxy::cut() {
    cut_ = true;
    (void)!::write(wake_[1], "x", 1);
    // Wait until the loop has done it, so the caller knows they are gone.
    while (cut_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void TcpProxy::loop() {
    std::vector<std::pair<int, int>> pairs;  // client, server
    const auto close_all = [&] {
        for (auto [c, s] : pairs) ::close(c), ::close(s);
        pairs.clear();
    };
    while (!stop_) {
        std::vector<pollfd> fds{{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
        for (auto [c, s] : pairs) fds.push_back({c, POLLIN, 0}), fds.push_back({s, POLLIN, 0});
        if (::poll(fds.data(), fds.size(), 1000) < 0) continue;
        if (fds[0].revents) {
            char b[64];
            (void)!::read(wake_[0], b, sizeof b);
        }
        if (cut_) {
            close_all();
            cut_ = false;
            continue;
        }
        // Only the pairs that were polled have entries in fds.
        const std::size_t polled = pairs.size();
        if (fds[1].revents & POLLIN) {
            const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c >= 0) {
                if (!accepting_) {
                    ::close(c);  // a refused service: the peer sees a reset
                } else {
                    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                    const auto a = address(target_ip_, target_port_);
                    if (::connect(s, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0) {
                        pairs.emplace_back(c, s);
                        ++seen_;
                    } else {
                        ::close(s), ::close(c);
                    }
                }
            }
        }
        // Shuttle bytes; a closed side closes the pair.
        std::vector<std::size_t> dead;
        for (std::size_t i = 0; i < polled; ++i) {
            for (int side = 0; side < 2; ++side) {
                const pollfd& p = fds[2 + 2 * i + static_cast<std::size_t>(side)];
                if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
                const int from = side == 0 ? pairs[i].first : pairs[i].second;
                const int to = side == 0 ? pairs[i].second : pairs[i].first;
                char buf[16384];
                const ssize_t n = ::read(from, buf, sizeof buf);
                if (n <= 0 || ::send(to, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) {
                    dead.push_back(i);
                    break;
                }
            }
        }
        for (auto it = dead.rbegin(); it != dead.rend(); ++it) {
            ::close(pairs[*it].first), ::close(pairs[*it].second);
            pairs.erase(pairs.begin() + static_cast<std::ptrdiff_t>(*it));
        }
    }
    close_all();
}

}  // namespace pwsync::test
