// pwsync/util.h — the small shared vocabulary of every pwsync library:
// typed errors, results, secrets that wipe themselves, and an injectable clock.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pwsync {

// ---------------------------------------------------------------- errors

// Every failure is one of these codes plus a message meant for an admin.
enum class Errc {
    invalid_argument = 1,  // bad input from the caller
    not_found,             // the named object does not exist
    already_exists,        // an object with that name exists
    conflict,              // a rule forbids this combination (ESSO rules, mapping conflicts)
    in_use,                // still referenced by another object
    permission,            // file modes, access rights
    crypto,                // sealing / opening / key problems
    io,                    // files, sockets
    storage,               // store backend failures
    version,               // data written by a newer release
    corrupt,               // data that does not decode or does not verify
    unavailable,           // a server is down or unreachable (retryable)
    timeout,               // an operation ran out of time (retryable)
    refused,               // a server refused the operation (permanent)
    protocol,              // malformed protocol data
    internal,              // a bug: never expected
    busy,                  // a concurrent writer won: run the unit of work again (Store::transact)
};

const char* errc_name(Errc code) noexcept;

struct Error {
    Errc code;
    std::string message;
};

template <class T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

inline std::unexpected<Error> fail(Errc code, std::string message) {
    return std::unexpected<Error>(Error{code, std::move(message)});
}

// Propagates the error of a Status or Result expression to the caller.
// The name is unique per use: `expr` may hold a lambda that uses
// PWSYNC_TRY itself (Store::transact), and would shadow a fixed name.
#define PWSYNC_TRY(expr) PWSYNC_TRY_(PWSYNC_CONCAT(pwsync_try_, __COUNTER__), expr)
#define PWSYNC_TRY_(tmp, expr)                                             \
    do {                                                                   \
        if (auto tmp = (expr); !tmp)                                       \
            return std::unexpected(std::move(tmp).error());                \
    } while (0)

#define PWSYNC_CONCAT_(a, b) a##b
#define PWSYNC_CONCAT(a, b) PWSYNC_CONCAT_(a, b)
// Declares `var` from the value of a Result, or returns its error.
#define PWSYNC_ASSIGN(var, expr) PWSYNC_ASSIGN_(PWSYNC_CONCAT(pwsync_r_, __LINE__), var, expr)
#define PWSYNC_ASSIGN_(tmp, var, expr)                                     \
    auto tmp = (expr);                                                     \
    if (!tmp) return std::unexpected(std::move(tmp).error());              \
    var = std::move(*tmp)

// ---------------------------------------------------------------- secrets

// Overwrites memory in a way the optimiser may not drop (OPENSSL_cleanse).
void wipe(void* data, std::size_t size) noexcept;

// Allocator whose deallocate wipes the block first, so no copy of a secret
// survives a reallocation.
template <class T>
struct WipingAllocator {
    using value_type = T;
    WipingAllocator() noexcept = default;
    template <class U>
    WipingAllocator(const WipingAllocator<U>&) noexcept {}
    T* allocate(std::size_t n) { return std::allocator<T>{}.allocate(n); }
    void deallocate(T* p, std::size_t n) noexcept {
        wipe(p, n * sizeof(T));
        std::allocator<T>{}.deallocate(p, n);
    }
    template <class U>
    bool operator==(const WipingAllocator<U>&) const noexcept { return true; }
};

// A password or key: move-only, heap-held (no small-string buffer to leak),
// wiped when destroyed. Copies are explicit (clone) so they stand out.
class Secret {
public:
    Secret() = default;
    explicit Secret(std::string_view value) : bytes_(value.begin(), value.end()) {}
    Secret(const Secret&) = delete;
    Secret& operator=(const Secret&) = delete;
    Secret(Secret&&) noexcept = default;
    Secret& operator=(Secret&&) noexcept = default;
    ~Secret() = default;

    Secret clone() const { return Secret(view()); }
    std::string_view view() const noexcept { return {bytes_.data(), bytes_.size()}; }
    const char* data() const noexcept { return bytes_.data(); }
    char* data() noexcept { return bytes_.data(); }
    std::size_t size() const noexcept { return bytes_.size(); }
    bool empty() const noexcept { return bytes_.empty(); }
    void append(std::string_view more) { bytes_.insert(bytes_.end(), more.begin(), more.end()); }
    void push_back(char c) { bytes_.push_back(c); }
    void pop_back() { bytes_.pop_back(); }
    void resize(std::size_t n) { bytes_.resize(n); }
    void clear() noexcept { wipe(bytes_.data(), bytes_.size()); bytes_.clear(); }

private:
    std::vector<char, WipingAllocator<char>> bytes_;
};

// Compares without an early exit, so timing does not reveal where two
// secrets differ (the length is not hidden).
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

// Keeps secrets out of core dumps: no core file, not dumpable, not ptrace-able
// by other processes of the same user. Called first thing by every program.
void harden_process() noexcept;

// ---------------------------------------------------------------- time

using TimePoint = std::chrono::system_clock::time_point;

// Time is passed in so that tests control expiry and backoff.
class Clock {
public:
    virtual ~Clock() = default;
    virtual TimePoint now() const = 0;
    // A reading for measuring how long something took: it never steps back
    // when the wall clock is set. Only differences between readings mean
    // anything. A manual clock's is its now().
    virtual std::chrono::nanoseconds elapsed() const { return now().time_since_epoch(); }
};

class SystemClock final : public Clock {
public:
    TimePoint now() const override;
    std::chrono::nanoseconds elapsed() const override;
};

// A clock that only moves when told to (tests).
class ManualClock final : public Clock {
public:
    explicit ManualClock(TimePoint start) : now_(start) {}
    TimePoint now() const override { return now_; }
    void advance(std::chrono::microseconds by) { now_ += by; }
    void set(TimePoint to) { now_ = to; }

private:
    TimePoint now_;
};

std::int64_t to_unix_micros(TimePoint t) noexcept;
TimePoint from_unix_micros(std::int64_t us) noexcept;
// Windows FILETIME / AD time: 100 ns units since 1601-01-01 UTC.
std::int64_t to_filetime(TimePoint t) noexcept;
TimePoint from_filetime(std::int64_t ft) noexcept;
// "2026-11-24T21:49:59Z" (UTC, seconds precision).
std::string format_iso8601(TimePoint t);
// Accepts "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS]" with an optional "Z"; UTC.
std::optional<TimePoint> parse_iso8601(std::string_view text);

// ---------------------------------------------------------------- text

std::string ascii_lower(std::string_view s);
std::string hex_encode(std::string_view bytes);
// True when s is valid UTF-8 (no overlongs, no surrogates).
bool valid_utf8(std::string_view s) noexcept;
// Strips one trailing "\n" or "\r\n" (for values read from a file or a pipe).
std::string_view trim_newline(std::string_view s) noexcept;

// ---------------------------------------------------------------- files

// True when something is at `path`: a file or a folder (links are
// followed, so a dangling link is not).
bool path_exists(const std::string& path) noexcept;

}  // namespace pwsync
