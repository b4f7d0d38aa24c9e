#include "https_test_server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace pwsync::test {

HttpsTestServer::HttpsTestServer(const std::string& cert, const std::string& key, const std::string& client_ca) {
    auto tls = gateway::TlsContext::load(cert, key, client_ca);
    if (!tls) {
        ADD_FAILURE() << tls.error().message;
        return;
    }
    tls_ = std::move(*tls);
    listen_ = gateway::Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(listen_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_.get(), 16) != 0 ||
        ::getsockname(listen_.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        ADD_FAILURE() << "cannot listen on 127.0.0.1";
        return;
    }
    port_ = ntohs(a.sin_port);
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
        ADD_FAILURE() << "pipe2 failed";
        return;
    }
    stop_read_ = gateway::Fd(p[0]);
    stop_write_ = gateway::Fd(p[1]);
    thread_ = std::thread([this] { serve(); });
}

HttpsTestServer::~HttpsTestServer() {
    if (stop_write_) (void)!::write(stop_write_.get(), "x", 1);
    if (thread_.joinable()) thread_.join();
}

std::string HttpsTestServer::url(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(port_) + path;
}

void HttpsTestServer::replies(std::vector<Reply> next) {
    std::lock_guard lock(mutex_);
    replies_ = std::move(next);
}

std::vector<HttpsTestServer::Request> HttpsTestServer::requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
}

int HttpsTestServer::failed_handshakes() const {
    std::lock_guard lock(mutex_);
    return failed_handshakes_;
}

void HttpsTestServer::serve() {
    for (;;) {
        pollfd fds[2] = {{listen_.get(), POLLIN, 0}, {stop_read_.get(), POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) continue;
        if (fds[1].revents != 0) return;
        gateway::Fd fd(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
        if (fd) handle(std::move(fd));
    }
}

void HttpsTestServer::handle(gateway::Fd fd) {
    gateway::Stream s(std::move(fd), stop_read_.get(), clock_);
    const TimePoint deadline = clock_.now() + std::chrono::seconds(10);
    if (s.start_tls(tls_.get(), deadline) != gateway::Io::ok) {
        std::lock_guard lock(mutex_);
        ++failed_handshakes_;
        return;
    }
    Request req;
    req.client_subject = gateway::verified_peer_subject(s.ssl());
    std::string head;
    char c = 0;
    while (!head.ends_with("\r\n\r\n")) {
        if (s.read_exact(&c, 1, deadline) != gateway::Io::ok || head.size() > 65536) return;
        head.push_back(c);
    }
    std::size_t at = head.find("\r\n");
    const std::string first = head.substr(0, at);
    req.method = first.substr(0, first.find(' '));
    req.target = first.substr(req.method.size() + 1, first.rfind(' ') - req.method.size() - 1);
    for (at += 2; at < head.size();) {
        const std::size_t end = head.find("\r\n", at);
        const std::string line = head.substr(at, end - at);
        at = end + 2;
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(' '));
        req.headers[ascii_lower(line.substr(0, colon))] = value;
    }
    const std::size_t length = req.headers.contains("content-length") ? std::stoul(req.headers["content-length"]) : 0;
    req.body.resize(length);
    if (length > 0 && s.read_exact(req.body.data(), length, deadline) != gateway::Io::ok) return;
    Reply reply;
    {
        std::lock_guard lock(mutex_);
        requests_.push_back(req);
        if (!replies_.empty()) {
            reply = replies_.front();
            replies_.erase(replies_.begin());
        }
    }
    const std::string answer = "HTTP/1.1 " + std::to_string(reply.status) + " X\r\nContent-Length: 2\r\nConnection: close\r\n" +
                               reply.headers + "\r\nok";
    (void)s.write_all(answer, deadline);
    s.shutdown();
}

}  // namespace pwsync::test
