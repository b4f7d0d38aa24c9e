#include <cstdio>
#include <ctime>
#include <limits>

#include "pwsync/util.h"

namespace pwsync {

TimePoint SystemClock::now() const { return std::chrono::system_clock::now(); }
std::chrono::nanoseconds SystemClock::elapsed() const { return std::chrono::steady_clock::now().time_since_epoch(); }

std::int64_t to_unix_micros(TimePoint t) noexcept {
    return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

TimePoint from_unix_micros(std::int64_t us) noexcept {
    // A stored time comes from disk: one beyond what the clock can hold
    // (±292 years in nanoseconds) saturates instead of overflowing.
    constexpr auto lo = std::chrono::duration_cast<std::chrono::microseconds>(TimePoint::min().time_since_epoch());
    constexpr auto hi = std::chrono::duration_cast<std::chrono::microseconds>(TimePoint::max().time_since_epoch());
    if (us <= lo.count()) return TimePoint(std::chrono::duration_cast<TimePoint::duration>(lo));
    if (us >= hi.count()) return TimePoint(std::chrono::duration_cast<TimePoint::duration>(hi));
    return TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::microseconds(us)));
}

namespace {
constexpr std::int64_t kUnixEpochAsFiletime = 116444736000000000;  // 1970-01-01 in 100 ns since 1601
}

std::int64_t to_filetime(TimePoint t) noexcept { return to_unix_micros(t) * 10 + kUnixEpochAsFiletime; }

TimePoint from_filetime(std::int64_t ft) noexcept {
    // Read from a directory: a value below what the subtraction can hold saturates.
    if (ft < std::numeric_limits<std::int64_t>::min() + kUnixEpochAsFiletime) return from_unix_micros(std::numeric_limits<std::int64_t>::min());
    return from_unix_micros((ft - kUnixEpochAsFiletime) / 10);
}

std::string format_iso8601(TimePoint t) {
    const std::time_t secs = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::optional<TimePoint> parse_iso8601(std::string_view text) {
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
    const std::string str(text);
    char tail[8] = {0};
    int n = std::sscanf(str.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%7s", &y, &mo, &d, &h, &mi, &s, tail);
    if (n < 3) return std::nullopt;
    if (n == 3 && str.size() != 10) return std::nullopt;
    if (n == 4) return std::nullopt;  // an hour without minutes
    if (n == 5) {
        // "…THH:MM" or "…THH:MMZ"
        if (!(str.size() == 16 || (str.size() == 17 && str.back() == 'Z'))) return std::nullopt;
    }
    if (n == 7 && std::string_view(tail) != "Z") return std::nullopt;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60 || y < 1970 || y > 2200) return std::nullopt;  // system_clock ends in 2262
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    const std::time_t secs = timegm(&tm);
    if (secs == static_cast<std::time_t>(-1)) return std::nullopt;
    return std::chrono::system_clock::from_time_t(secs);
}

}  // namespace pwsync
