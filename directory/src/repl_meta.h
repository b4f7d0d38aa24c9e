// replPropertyMetaData: AD's per-attribute replication metadata. Its
// local USNs tell which attributes of an entry changed after a given USN,
// which is what uSNChanged polling needs to tell a password change from a
// rename without keeping a copy of the directory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pwsync::directory {

// ATTIDs of the base schema (prefix index << 16 | last OID arc).
inline constexpr std::uint32_t kAttidName = 0x00090001;
inline constexpr std::uint32_t kAttidUserAccountControl = 0x00090008;
inline constexpr std::uint32_t kAttidPwdLastSet = 0x00090060;
inline constexpr std::uint32_t kAttidSamAccountName = 0x000900DD;
inline constexpr std::uint32_t kAttidUserPrincipalName = 0x00090290;
inline constexpr std::uint32_t kAttidIsDeleted = 0x00020030;
// The password's own attributes: any of them moves when a password is set.
inline constexpr std::uint32_t kAttidDbcsPwd = 0x00090037;
inline constexpr std::uint32_t kAttidUnicodePwd = 0x0009005A;
inline constexpr std::uint32_t kAttidNtPwdHistory = 0x0009005E;
inline constexpr std::uint32_t kAttidSupplementalCredentials = 0x0009007D;

inline constexpr bool is_password_attid(std::uint32_t attid) {
    return attid == kAttidUnicodePwd || attid == kAttidNtPwdHistory || attid == kAttidDbcsPwd ||
           attid == kAttidSupplementalCredentials;
}

struct AttributeMeta {
    std::uint32_t attid = 0;
    std::uint32_t version = 0;
    std::uint64_t local_usn = 0;
    std::uint64_t originating_time = 0;  // seconds since 1601 (NTTIME_1sec)
    // invocationId of the DC where the write was made (16 bytes, AD order):
    // which DC a password change came from, wherever it replicated since.
    std::string originating_invocation_id{};
};

// Decodes the NDR replPropertyMetaDataBlob (version 1); nullopt when malformed.
std::optional<std::vector<AttributeMeta>> parse_repl_metadata(std::string_view blob);

// What the metadata says of the password: the newest write of one of its
// attributes. nullopt: the metadata holds none of them (not readable).
struct PasswordMeta {
    std::uint64_t local_usn = 0;
    std::int64_t changed_at = 0;  // 100 ns units since 1601, as pwdLastSet
    std::string originating_invocation_id{};  // of that newest write (16 bytes)
};
std::optional<PasswordMeta> password_meta(const std::vector<AttributeMeta>& meta);

// The high-water USN in a DirSync cookie (MS-ADTS: "MSDS", version, time,
// reserved, UTD size, then the USN vector whose third field is the highest
// USN the cookie covers). nullopt: not a cookie of that layout.
std::optional<std::uint64_t> dirsync_cookie_usn(std::string_view cookie);

// The DC a DirSync cookie is from (its invocationId, 16 bytes, after the USN
// vector) and when it was made (creationTime, 100 ns units since 1601; 0
// when not set). nullopt: not a cookie of that layout.
struct DirSyncCookieSource {
    std::string invocation_id;
    std::int64_t created = 0;
};
std::optional<DirSyncCookieSource> dirsync_cookie_source(std::string_view cookie);

}  // namespace pwsync::directory
