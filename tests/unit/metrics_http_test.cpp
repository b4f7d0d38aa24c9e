// The /metrics endpoint: loopback only, GET /metrics, bounded requests.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>

#include "metrics_http.h"

namespace pwsync::gateway {
namespace {

std::string http(std::uint16_t port, std::string_view request) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return "connect failed";
    }
    (void)!::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return out;
}

TEST(MetricsHttp, ServesMetricsOnLoopback) {
    std::atomic<int> renders{0};
    auto server = MetricsServer::start("127.0.0.1:0", [&]() -> Result<std::string> {
        ++renders;
        return std::string("pwsync_up 1\n");
    });
    ASSERT_TRUE(server) << server.error().message;
    ASSERT_NE(server->port(), 0);
    auto r = http(server->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
    EXPECT_NE(r.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << r;
    EXPECT_NE(r.find("\r\n\r\npwsync_up 1\n"), std::string::npos) << r;
    EXPECT_EQ(http(server->port(), "GET / HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
    EXPECT_EQ(http(server->port(), "POST /metrics HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 405", 0), 0u);
    // An oversized request head is dropped without an answer.
    EXPECT_EQ(http(server->port(), "GET /metrics HTTP/1.1\r\nX: " + std::string(20000, 'a')), "");
    EXPECT_EQ(renders.load(), 1);
    // Still serving after all that.
    EXPECT_EQ(http(server->port(), "GET /metrics HTTP/1.0\r\n\r\n").rfind("HTTP/1.1 200", 0), 0u);
    server->stop();
    EXPECT_EQ(http(server->port(), "GET /metrics HTTP/1.1\r\n\r\n"), "connect failed");
}

TEST(MetricsHttp, StoreFailureIs503) {
    auto server = MetricsServer::start("localhost:0", []() -> Result<std::string> {
        return fail(Errc::storage, "store unavailable");
    });
    ASSERT_TRUE(server) << server.error().message;
    auto r = http(server->port(), "GET /metrics HTTP/1.1\r\n\r\n");
    EXPECT_EQ(r.rfind("HTTP/1.1 503", 0), 0u) << r;
    EXPECT_NE(r.find("store unavailable"), std::string::npos);
}

TEST(MetricsHttp, OnlyLoopbackAddresses) {
    auto render = []() -> Result<std::string> { return std::string(); };
    for (const char* bad : {"0.0.0.0:9464", "192.0.2.1:9464", "[::]:9464", "example.com:9464", "127.0.0.1", "127.0.0.1:99999"}) {
        auto s = MetricsServer::start(bad, render);
        ASSERT_FALSE(s) << bad;
        EXPECT_EQ(s.error().code, Errc::invalid_argument) << bad;
        EXPECT_NE(s.error().message.find(bad), std::string::npos) << s.error().message;
    }
}

}  // namespace
}  // namespace pwsync::gateway
