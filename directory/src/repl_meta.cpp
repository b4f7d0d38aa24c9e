#include "repl_meta.h"

#include <cstring>

namespace pwsync::directory {
namespace {

template <class T>
T little_endian(std::string_view b, std::size_t at) {
    T v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(static_cast<unsigned char>(b[at + i])) << (8 * i);
    return v;
}

}  // namespace

std::optional<std::vector<AttributeMeta>> parse_repl_metadata(std::string_view blob) {
    // version u32, reserved u32, count u32, reserved u32, then 48-byte
    // entries: attid u32, version u32, originating time u64, originating
    // invocation GUID (16), originating USN u64, local USN u64.
    constexpr std::size_t kHeader = 16, kEntry = 48;
    if (blob.size() < kHeader || little_endian<std::uint32_t>(blob, 0) != 1) return std::nullopt;
    const auto count = little_endian<std::uint32_t>(blob, 8);
    if (count > (blob.size() - kHeader) / kEntry) return std::nullopt;
    std::vector<AttributeMeta> out;
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        const std::size_t at = kHeader + i * kEntry;
        out.push_back({little_endian<std::uint32_t>(blob, at), little_endian<std::uint32_t>(blob, at + 4),
                       little_endian<std::uint64_t>(blob, at + 40), little_endian<std::uint64_t>(blob, at + 8),
                       std::string(blob.substr(at + 16, 16))});
    }
    return out;
}

std::optional<PasswordMeta> password_meta(const std::vector<AttributeMeta>& meta) {
    std::optional<PasswordMeta> out;
    for (const auto& m : meta) {
        if (!is_password_attid(m.attid)) continue;
        if (!out) out.emplace();
        if (m.local_usn >= out->local_usn) {
            out->local_usn = m.local_usn;
            out->changed_at = static_cast<std::int64_t>(m.originating_time) * 10'000'000;
            out->originating_invocation_id = m.originating_invocation_id;
        }
    }
    return out;
}

std::optional<std::uint64_t> dirsync_cookie_usn(std::string_view cookie) {
    constexpr std::size_t kHighestUsn = 44;
    if (cookie.size() < kHighestUsn + 8 || cookie.substr(0, 4) != "MSDS") return std::nullopt;
    return little_endian<std::uint64_t>(cookie, kHighestUsn);
}

std::optional<DirSyncCookieSource> dirsync_cookie_source(std::string_view cookie) {
    constexpr std::size_t kCreated = 8, kInvocation = 52;
    if (cookie.size() < kInvocation + 16 || cookie.substr(0, 4) != "MSDS") return std::nullopt;
    return DirSyncCookieSource{std::string(cookie.substr(kInvocation, 16)),
                               static_cast<std::int64_t>(little_endian<std::uint64_t>(cookie, kCreated))};
}

}  // namespace pwsync::directory
