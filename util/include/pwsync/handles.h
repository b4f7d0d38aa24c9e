// RAII owners for the C handles more than one library holds: a file
// descriptor, and liblber's BerElement (the LDAP encoder and decoder of the
// gateway's listener and of the directory client). Library-specific handles
// (LDAP*, SSL*, CURL*) stay with the one library that uses them.
#pragma once

#include <lber.h>
#include <unistd.h>

#include <memory>
#include <utility>

namespace pwsync {

// A file descriptor that closes itself.
class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept {
        if (this != &o) reset(std::exchange(o.fd_, -1));
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

// A BerElement. One that liblber encoded into owns its buffer; one that reads
// bytes it was lent (a decoder in place, libldap's attribute iterator) must
// leave them alone.
enum class BerBuffer { lent, owned };
template <BerBuffer buffer>
struct BerFree {
    void operator()(BerElement* b) const noexcept { ber_free(b, buffer == BerBuffer::owned ? 1 : 0); }
};
using BerReading = std::unique_ptr<BerElement, BerFree<BerBuffer::lent>>;
using BerWriting = std::unique_ptr<BerElement, BerFree<BerBuffer::owned>>;

}  // namespace pwsync
