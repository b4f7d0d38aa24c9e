// Ad's fail-fast window after AD was unreachable, driven by a fake clock.
// No server: the directory is a closed loopback port, which refuses at once.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "ad.h"

namespace pwsync::gateway {
namespace {

// A loopback port nobody listens on: bound, then closed again.
int closed_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        if (fd >= 0) ::close(fd);
        return 0;
    }
    ::close(fd);
    return ntohs(a.sin_port);
}

constexpr std::string_view kMomentsAgo = "unreachable moments ago";

TEST(AdFailFast, LaterWritesFailAtOnceForTenSecondsOfTheInjectedClock) {
    const int port = closed_port();
    ASSERT_NE(port, 0);
    const std::string uri = "ldaps://127.0.0.1:" + std::to_string(port);
    directory::Settings settings;
    settings.uris = {uri};
    settings.base = "DC=test,DC=example";
    settings.domain = "TEST";
    directory::ConnectOptions options;
    options.uris = {uri};
    options.connect_timeout = std::chrono::milliseconds(2000);
    ManualClock clock(from_unix_micros(1'790'000'000'000'000));
    Ad ad(std::move(settings), std::move(options), &clock);

    // The first write tries, and fails: AD is unreachable.
    auto st = ad.write_password("alice", Secret("Fail-Fast-Pw.1"));
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, Errc::unavailable);
    EXPECT_EQ(st.error().message.find(kMomentsAgo), std::string::npos) << st.error().message;

    // Within the window (the fake clock has not moved, then 9.9 s): at once.
    for (auto step : {std::chrono::milliseconds(0), std::chrono::milliseconds(9900)}) {
        clock.advance(step);
        st = ad.write_password("alice", Secret("Fail-Fast-Pw.1"));
        ASSERT_FALSE(st);
        EXPECT_EQ(st.error().code, Errc::unavailable);
        EXPECT_NE(st.error().message.find(kMomentsAgo), std::string::npos) << st.error().message;
    }

    // Past it on the injected clock, whatever the real one says: tries again.
    clock.advance(std::chrono::milliseconds(200));
    st = ad.write_password("alice", Secret("Fail-Fast-Pw.1"));
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, Errc::unavailable);
    EXPECT_EQ(st.error().message.find(kMomentsAgo), std::string::npos) << st.error().message;
    EXPECT_EQ(st.error().message.find("Fail-Fast-Pw.1"), std::string::npos);
}

}  // namespace
}  // namespace pwsync::gateway
