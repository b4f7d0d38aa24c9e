#include "metrics_http.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "stream.h"

namespace pwsync::gateway {
namespace {

constexpr std::size_t kMaxRequest = 8192;
constexpr int kRequestTimeoutMs = 3000;

std::string errno_text() { return std::strerror(errno); }

// Reads the request head, bounded in size and time.
bool read_head(int fd, std::string& head) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(kRequestTimeoutMs);
    char buf[1024];
    while (head.find("\r\n\r\n") == std::string::npos && head.find("\n\n") == std::string::npos) {
        if (head.size() > kMaxRequest) return false;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return false;
        head.append(buf, static_cast<std::size_t>(n));
    }
    return true;
}

void write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, kRequestTimeoutMs) <= 0) return;
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n <= 0) return;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

std::string response(int status, const char* reason, std::string_view type, std::string_view body) {
    return "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Type: " + std::string(type) +
           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + std::string(body);
}

}  // namespace

struct MetricsServer::Impl {
    Fd listen_fd;
    Fd stop_read, stop_write;
    std::uint16_t port = 0;
    std::function<Result<std::string>()> render;
    std::thread thread;
    std::atomic<bool> stopped{false};

    void serve(int fd) {
        std::string head;
        if (!read_head(fd, head)) return;
        const auto eol = head.find_first_of("\r\n");
        const std::string line = head.substr(0, eol);
        if (line.rfind("GET ", 0) != 0 && line.rfind("HEAD ", 0) != 0)
            return write_all(fd, response(405, "Method Not Allowed", "text/plain", "only GET\n"));
        const auto sp1 = line.find(' '), sp2 = line.find(' ', sp1 + 1);
        const std::string path = line.substr(sp1 + 1, sp2 == std::string::npos ? std::string::npos : sp2 - sp1 - 1);
        if (path != "/metrics") return write_all(fd, response(404, "Not Found", "text/plain", "try /metrics\n"));
        auto body = render();
        if (!body) return write_all(fd, response(503, "Service Unavailable", "text/plain", body.error().message + "\n"));
        write_all(fd, response(200, "OK", "text/plain; version=0.0.4; charset=utf-8",
                               line.rfind("HEAD ", 0) == 0 ? std::string_view() : std::string_view(*body)));
    }

    void run() {
        for (;;) {
            pollfd p[2] = {{listen_fd.get(), POLLIN, 0}, {stop_read.get(), POLLIN, 0}};
            if (::poll(p, 2, -1) < 0) {
                if (errno == EINTR) continue;
                return;
            }
            if (p[1].revents != 0) return;
            Fd conn(::accept4(listen_fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (!conn) continue;
            try {
                serve(conn.get());
            } catch (...) {
                // Out of memory rendering: drop this scrape, keep serving.
            }
        }
    }
};

Result<MetricsServer> MetricsServer::start(const std::string& address, std::function<Result<std::string>()> render) {
    const auto colon = address.rfind(':');
    if (colon == std::string::npos) return fail(Errc::invalid_argument, "metrics address " + address + ": expected HOST:PORT");
    std::string host = address.substr(0, colon);
    const std::string port_text = address.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host == "localhost") host = "127.0.0.1";
    char* end = nullptr;
    const unsigned long port = std::strtoul(port_text.c_str(), &end, 10);
    if (port_text.empty() || *end != '\0' || port > 65535)
        return fail(Errc::invalid_argument, "metrics address " + address + ": bad port");
    sockaddr_storage ss{};
    socklen_t len = 0;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        if ((ntohl(v4->sin_addr.s_addr) >> 24) != 127)
            return fail(Errc::invalid_argument, "metrics address " + address + ": only loopback addresses are allowed");
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<std::uint16_t>(port));
        len = sizeof *v4;
    } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr))
            return fail(Errc::invalid_argument, "metrics address " + address + ": only loopback addresses are allowed");
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<std::uint16_t>(port));
        len = sizeof *v6;
    } else {
        return fail(Errc::invalid_argument, "metrics address " + address + ": expected a numeric loopback address");
    }
    auto impl = std::make_unique<Impl>();
    impl->render = std::move(render);
    impl->listen_fd = Fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!impl->listen_fd) return fail(Errc::io, "metrics: socket: " + errno_text());
    const int one = 1;
    ::setsockopt(impl->listen_fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(impl->listen_fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0)
        return fail(Errc::io, "metrics address " + address + ": cannot bind: " + errno_text());
    if (::listen(impl->listen_fd.get(), 16) != 0) return fail(Errc::io, "metrics: listen: " + errno_text());
    sockaddr_storage bound{};
    socklen_t blen = sizeof bound;
    ::getsockname(impl->listen_fd.get(), reinterpret_cast<sockaddr*>(&bound), &blen);
    impl->port = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                                  : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return fail(Errc::io, "metrics: pipe: " + errno_text());
    impl->stop_read = Fd(pipefd[0]);
    impl->stop_write = Fd(pipefd[1]);
    Impl* raw = impl.get();
    impl->thread = std::thread([raw] { raw->run(); });
    return MetricsServer(std::move(impl));
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetricsServer::MetricsServer(MetricsServer&&) noexcept = default;
MetricsServer& MetricsServer::operator=(MetricsServer&&) noexcept = default;
MetricsServer::~MetricsServer() { stop(); }

void MetricsServer::stop() {
    if (!impl_ || impl_->stopped.exchange(true)) return;
    const char byte = 1;
    (void)!::write(impl_->stop_write.get(), &byte, 1);
    if (impl_->thread.joinable()) impl_->thread.join();
    impl_->listen_fd = Fd();  // closed: nobody connects to a server that will not answer
}

std::uint16_t MetricsServer::port() const { return impl_ ? impl_->port : 0; }

}  // namespace pwsync::gateway
