// A file descriptor that closes itself (pwsync/handles.h has one too, but
// pulls in liblber's header, which the hook does not link).
#pragma once

#include <unistd.h>

#include <utility>

namespace pwsync::notify {

class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        std::swap(fd_, o.fd_);
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const noexcept { return fd_; }

private:
    int fd_ = -1;
};

}  // namespace pwsync::notify
