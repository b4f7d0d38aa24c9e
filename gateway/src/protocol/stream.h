// One accepted connection as a byte stream: a non-blocking socket, plain or
// TLS, read and written against deadlines on the injected clock. Every wait
// also watches the listener's stop descriptor, so stop() wakes it at once.
#pragma once

#include <openssl/ssl.h>

#include <string>
#include <string_view>
#include <utility>

#include "pwsync/handles.h"
#include "pwsync/util.h"
#include "tls_context.h"

namespace pwsync::gateway {

using Fd = UniqueFd;

enum class Io { ok, eof, timeout, stopped, error };

class Stream {
public:
    Stream(Fd fd, int stop_fd, const Clock& clock) : fd_(std::move(fd)), stop_fd_(stop_fd), clock_(clock) {}

    // Reads exactly `size` bytes.
    Io read_exact(char* data, std::size_t size, TimePoint deadline);
    Io write_all(std::string_view data, TimePoint deadline);
    // Server side of a TLS handshake on this socket (ldaps, or after StartTLS).
    Io start_tls(SSL_CTX* ctx, TimePoint deadline);
    // Sends a TLS close_notify if it can without waiting.
    void shutdown() noexcept;

    bool tls() const noexcept { return ssl_ != nullptr; }
    SSL* ssl() const noexcept { return ssl_.get(); }
    // Why the last operation failed, for the log.
    const std::string& last_error() const noexcept { return error_; }

private:
    Io wait(short events, TimePoint deadline);
    Io tls_retry(int ret, TimePoint deadline);

    Fd fd_;
    int stop_fd_;
    const Clock& clock_;
    SslPtr ssl_;
    std::string error_;
};

}  // namespace pwsync::gateway
