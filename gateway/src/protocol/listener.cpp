// Listening sockets, one acceptor thread per URI, one thread per connection
// (bounded by max_connections), and a stop that wakes and joins them all.
#include "listener.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <list>
#include <mutex>
#include <system_error>
#include <thread>

#include "bind_throttle.h"
#include "listen_uri.h"
#include "session.h"
#include "stream.h"
#include "tls_context.h"

namespace pwsync::gateway {
namespace {

std::string errno_text() { return std::strerror(errno); }

struct AddrinfoFree {
    void operator()(addrinfo* ai) const noexcept { freeaddrinfo(ai); }
};

// Numeric address and port of a socket address.
std::pair<std::string, std::uint16_t> numeric(const sockaddr* sa, socklen_t len) {
    char host[NI_MAXHOST] = "", serv[NI_MAXSERV] = "";
    if (getnameinfo(sa, len, host, sizeof host, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) != 0) return {"?", 0};
    return {host, static_cast<std::uint16_t>(std::atoi(serv))};
}

Result<Fd> open_listen_socket(const std::string& uri, const ListenUri& where, ListenEndpoint& endpoint) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(where.port);
    if (const int rc = getaddrinfo(where.host.c_str(), port.c_str(), &hints, &found); rc != 0)
        return fail(Errc::invalid_argument, "listen URI " + uri + ": cannot resolve " + where.host + ": " + gai_strerror(rc));
    const std::unique_ptr<addrinfo, AddrinfoFree> list(found);
    Fd fd(::socket(found->ai_family, found->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, found->ai_protocol));
    if (!fd) return fail(Errc::io, "listen URI " + uri + ": socket: " + errno_text());
    const int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // [::] must not also take the IPv4 port that 0.0.0.0 may want.
    if (found->ai_family == AF_INET6) ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (::bind(fd.get(), found->ai_addr, found->ai_addrlen) != 0)
        return fail(Errc::io, "listen URI " + uri + ": cannot bind: " + errno_text());
    if (::listen(fd.get(), 128) != 0) return fail(Errc::io, "listen URI " + uri + ": listen: " + errno_text());
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len) != 0)
        return fail(Errc::io, "listen URI " + uri + ": getsockname: " + errno_text());
    endpoint.uri = uri;
    endpoint.ldaps = where.ldaps;
    std::tie(endpoint.address, endpoint.port) = numeric(reinterpret_cast<sockaddr*>(&bound), len);
    return fd;
}

}  // namespace

struct Listener::Impl {
    Impl(const ListenerOptions& opts, RequestHandler& h, TlsContext t)
        : options(opts),
          handler(h),
          clock(opts.clock != nullptr ? *opts.clock : system_clock),
          tls(std::move(t)),
          throttle(opts.throttle, clock) {}

    struct Connection {
        std::thread thread;
        std::atomic<bool> finished{false};
        std::string address;
    };

    ListenerOptions options;
    RequestHandler& handler;
    SystemClock system_clock;
    const Clock& clock;
    TlsContext tls;
    BindThrottle throttle;
    Fd stop_fd;
    std::vector<ListenEndpoint> endpoints;
    std::vector<Fd> sockets;
    std::vector<std::thread> acceptors;
    std::atomic<bool> stopping{false};

    mutable std::mutex mutex;  // guards connections
    std::list<std::unique_ptr<Connection>> connections;

    SessionContext session_context() { return {handler, options, clock, tls, throttle, stop_fd.get()}; }
    void log(const std::string& line) const {
        if (options.log) options.log(line);
    }
    void accept_loop(std::size_t index);
    void admit(Fd fd, bool ldaps, Peer peer);
    // Joins the threads of connections that ended (mutex held).
    void reap_locked();
    std::size_t open_locked() const;
    std::size_t open_from_locked(const std::string& address) const;
    void stop();
};

void Listener::Impl::reap_locked() {
    for (auto it = connections.begin(); it != connections.end();) {
        if ((*it)->finished.load()) {
            (*it)->thread.join();
            it = connections.erase(it);
        } else {
            ++it;
        }
    }
}

std::size_t Listener::Impl::open_locked() const {
    std::size_t n = 0;
    for (const auto& c : connections) n += c->finished.load() ? 0 : 1;
    return n;
}

std::size_t Listener::Impl::open_from_locked(const std::string& address) const {
    std::size_t n = 0;
    for (const auto& c : connections) n += !c->finished.load() && c->address == address ? 1 : 0;
    return n;
}

void Listener::Impl::admit(Fd fd, bool ldaps, Peer peer) {
    const std::lock_guard lock(mutex);
    reap_locked();
    if (open_locked() >= options.max_connections) {
        log("listener: " + peer.address + ": connection refused: " + std::to_string(options.max_connections) +
            " connections are open");
        return;  // fd closes here
    }
    if (open_from_locked(peer.address) >= options.max_connections_per_address) {
        log("listener: " + peer.address + ": connection refused: " + std::to_string(options.max_connections_per_address) +
            " connections from this address are open");
        return;
    }
    auto conn = std::make_unique<Connection>();
    Connection* c = conn.get();
    c->address = peer.address;
    try {
        c->thread = std::thread([this, c, f = std::move(fd), ldaps, p = std::move(peer), at = clock.now()]() mutable {
            serve_session(session_context(), std::move(f), ldaps, std::move(p), at);
            c->finished.store(true);
        });
    } catch (const std::system_error&) {
        log("listener: cannot start a connection thread; connection dropped");
        return;
    }
    connections.push_back(std::move(conn));
}

void Listener::Impl::accept_loop(std::size_t index) {
    const int lfd = sockets[index].get();
    const bool ldaps = endpoints[index].ldaps;
    while (!stopping.load()) {
        pollfd fds[2] = {{lfd, POLLIN, 0}, {stop_fd.get(), POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            log("listener: poll: " + errno_text());
            return;
        }
        if (fds[1].revents != 0) return;
        if (fds[0].revents == 0) continue;
        sockaddr_storage addr{};
        socklen_t len = sizeof addr;
        Fd fd(::accept4(lfd, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!fd) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) {
                log("listener: accept: " + errno_text());
                pollfd s{stop_fd.get(), POLLIN, 0};
                ::poll(&s, 1, 100);  // let connections end instead of spinning
            }
            continue;
        }
        const int one = 1;
        ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        Peer peer;
        std::tie(peer.address, peer.port) = numeric(reinterpret_cast<sockaddr*>(&addr), len);
        admit(std::move(fd), ldaps, std::move(peer));
    }
}

void Listener::Impl::stop() {
    if (stopping.exchange(true)) return;
    const std::uint64_t one = 1;
    if (stop_fd) (void)!::write(stop_fd.get(), &one, sizeof one);
    for (auto& t : acceptors)
        if (t.joinable()) t.join();
    acceptors.clear();
    sockets.clear();  // closes the listening sockets
    std::list<std::unique_ptr<Connection>> all;
    {
        const std::lock_guard lock(mutex);
        all.swap(connections);
    }
    for (auto& c : all) c->thread.join();
}

Result<Listener> Listener::start(const ListenerOptions& options, RequestHandler& handler) {
    if (options.uris.empty()) return fail(Errc::invalid_argument, "the listener needs at least one URI");
    if (options.cert_file.empty() || options.key_file.empty())
        return fail(Errc::invalid_argument, "the listener needs a certificate and a key");
    if (options.max_connections == 0 || options.max_connections_per_address == 0 || options.max_message_size < 64 || options.idle_timeout.count() <= 0)
        return fail(Errc::invalid_argument, "listener limits must be positive (message size at least 64 bytes)");
    PWSYNC_ASSIGN(auto tls, TlsContext::load(options.cert_file, options.key_file, options.client_ca_file));
    auto impl = std::make_unique<Impl>(options, handler, std::move(tls));
    impl->stop_fd = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!impl->stop_fd) return fail(Errc::io, "eventfd: " + errno_text());
    for (const auto& uri : options.uris) {
        PWSYNC_ASSIGN(const auto where, parse_listen_uri(uri));
        ListenEndpoint endpoint;
        PWSYNC_ASSIGN(auto fd, open_listen_socket(uri, where, endpoint));
        impl->endpoints.push_back(std::move(endpoint));
        impl->sockets.push_back(std::move(fd));
    }
    try {
        for (std::size_t i = 0; i < impl->sockets.size(); ++i)
            impl->acceptors.emplace_back([p = impl.get(), i] { p->accept_loop(i); });
    } catch (const std::system_error& e) {
        impl->stop();
        return fail(Errc::internal, std::string("cannot start the listener threads: ") + e.what());
    }
    return Listener(std::move(impl));
}

Listener::Listener(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Listener::Listener(Listener&&) noexcept = default;
Listener& Listener::operator=(Listener&& o) noexcept {
    if (this != &o) {
        stop();
        impl_ = std::move(o.impl_);
    }
    return *this;
}
Listener::~Listener() { stop(); }

void Listener::stop() {
    if (impl_) impl_->stop();
}

const std::vector<ListenEndpoint>& Listener::endpoints() const {
    static const std::vector<ListenEndpoint> none;
    return impl_ ? impl_->endpoints : none;
}

std::size_t Listener::connection_count() const {
    if (!impl_) return 0;
    const std::lock_guard lock(impl_->mutex);
    return impl_->open_locked();
}

}  // namespace pwsync::gateway
