// Byte buffers for the Windows capture code, shared by the DLL, the agent
// and the host unit tests: no Windows headers, no exceptions across calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pwsync::win {

using Bytes = std::vector<std::uint8_t>;

// Overwrites a buffer in a way the compiler may not drop.
void wipe(void* p, std::size_t n) noexcept;

// A byte buffer that is wiped when it goes away: for passwords and for
// anything a password was encoded into.
class SecretBytes {
public:
    SecretBytes() = default;
    explicit SecretBytes(Bytes b) : b_(std::move(b)) {}
    SecretBytes(const SecretBytes&) = delete;
    SecretBytes& operator=(const SecretBytes&) = delete;
    SecretBytes(SecretBytes&& o) noexcept : b_(std::move(o.b_)) { o.b_.clear(); }
    SecretBytes& operator=(SecretBytes&& o) noexcept {
        if (this != &o) {
            clear();
            b_ = std::move(o.b_);
            o.b_.clear();
        }
        return *this;
    }
    ~SecretBytes() { clear(); }
    void clear() noexcept {
        wipe(b_.data(), b_.capacity());
        b_.clear();
    }
    // Grows without leaving a copy of the old contents behind.
    void append(const std::uint8_t* p, std::size_t n);
    Bytes& bytes() noexcept { return b_; }
    const Bytes& bytes() const noexcept { return b_; }
    std::size_t size() const noexcept { return b_.size(); }
    const std::uint8_t* data() const noexcept { return b_.data(); }

private:
    Bytes b_;
};

std::uint32_t crc32(const std::uint8_t* p, std::size_t n) noexcept;

// Little-endian integers.
void put_u16(Bytes& out, std::uint16_t v);
void put_u32(Bytes& out, std::uint32_t v);
void put_u64(Bytes& out, std::uint64_t v);
std::uint16_t get_u16(const std::uint8_t* p) noexcept;
std::uint32_t get_u32(const std::uint8_t* p) noexcept;
std::uint64_t get_u64(const std::uint8_t* p) noexcept;

}  // namespace pwsync::win
