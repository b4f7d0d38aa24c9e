#include "stream.h"

#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

namespace pwsync::gateway {
namespace {

// The injected clock may be a test clock that jumps: poll in short slices
// and look at it again after each.
constexpr std::chrono::milliseconds kSlice{200};

}  // namespace

Io Stream::wait(short events, TimePoint deadline) {
    for (;;) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock_.now());
        if (left.count() <= 0) return Io::timeout;
        pollfd fds[2] = {{fd_.get(), events, 0}, {stop_fd_, POLLIN, 0}};
        const int n = ::poll(fds, 2, static_cast<int>(std::min(left, kSlice).count()));
        if (n < 0) {
            if (errno == EINTR) continue;
            error_ = std::string("poll: ") + std::strerror(errno);
            return Io::error;
        }
        if (fds[1].revents != 0) return Io::stopped;
        if (fds[0].revents != 0) return Io::ok;  // readable, writable, or an error the next call reports
    }
}

Io Stream::tls_retry(int ret, TimePoint deadline) {
    const int err = SSL_get_error(ssl_.get(), ret);
    switch (err) {
        case SSL_ERROR_WANT_READ: return wait(POLLIN, deadline);
        case SSL_ERROR_WANT_WRITE: return wait(POLLOUT, deadline);
        case SSL_ERROR_ZERO_RETURN: return Io::eof;
        case SSL_ERROR_SYSCALL:
            if (ERR_peek_error() == 0 && (ret == 0 || errno == 0 || errno == ECONNRESET || errno == EPIPE)) {
                error_ = "connection closed by the peer";
                return Io::eof;
            }
            error_ = tls_error_text(std::strerror(errno));
            return Io::error;
        default:
            error_ = tls_error_text("TLS failure");
            return Io::error;
    }
}

Io Stream::read_exact(char* data, std::size_t size, TimePoint deadline) {
    std::size_t got = 0;
    while (got < size) {
        const std::size_t want = std::min<std::size_t>(size - got, INT_MAX / 2);
        if (ssl_) {
            ERR_clear_error();
            const int r = SSL_read(ssl_.get(), data + got, static_cast<int>(want));
            if (r > 0) {
                got += static_cast<std::size_t>(r);
                continue;
            }
            if (const Io io = tls_retry(r, deadline); io != Io::ok) return io;
            continue;
        }
        const ssize_t r = ::recv(fd_.get(), data + got, want, 0);
        if (r > 0) {
            got += static_cast<std::size_t>(r);
            continue;
        }
        if (r == 0) return Io::eof;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (const Io io = wait(POLLIN, deadline); io != Io::ok) return io;
            continue;
        }
        if (errno == ECONNRESET) return Io::eof;
        error_ = std::string("recv: ") + std::strerror(errno);
        return Io::error;
    }
    return Io::ok;
}

Io Stream::write_all(std::string_view data, TimePoint deadline) {
    std::size_t sent = 0;
    while (sent < data.size()) {
        const std::size_t want = std::min<std::size_t>(data.size() - sent, INT_MAX / 2);
        if (ssl_) {
            ERR_clear_error();
            const int r = SSL_write(ssl_.get(), data.data() + sent, static_cast<int>(want));
            if (r > 0) {
                sent += static_cast<std::size_t>(r);
                continue;
            }
            if (const Io io = tls_retry(r, deadline); io != Io::ok) return io;
            continue;
        }
        const ssize_t r = ::send(fd_.get(), data.data() + sent, want, MSG_NOSIGNAL);
        if (r >= 0) {
            sent += static_cast<std::size_t>(r);
            continue;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (const Io io = wait(POLLOUT, deadline); io != Io::ok) return io;
            continue;
        }
        if (errno == EPIPE || errno == ECONNRESET) return Io::eof;
        error_ = std::string("send: ") + std::strerror(errno);
        return Io::error;
    }
    return Io::ok;
}

Io Stream::start_tls(SSL_CTX* ctx, TimePoint deadline) {
    ERR_clear_error();
    ssl_.reset(SSL_new(ctx));
    if (!ssl_ || SSL_set_fd(ssl_.get(), fd_.get()) != 1) {
        error_ = tls_error_text("cannot start TLS");
        ssl_.reset();
        return Io::error;
    }
    for (;;) {
        ERR_clear_error();
        const int r = SSL_accept(ssl_.get());
        if (r == 1) return Io::ok;
        const Io io = tls_retry(r, deadline);
        if (io == Io::ok) continue;
        if (io == Io::eof && error_.empty()) error_ = "connection closed during the TLS handshake";
        ssl_.reset();  // a failed handshake leaves no usable TLS state
        return io;
    }
}

void Stream::shutdown() noexcept {
    if (ssl_) {
        ERR_clear_error();
        SSL_shutdown(ssl_.get());
        ERR_clear_error();
    }
}

}  // namespace pwsync::gateway
