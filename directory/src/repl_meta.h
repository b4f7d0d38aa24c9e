// replPropertyMetaData: AD's per-attribute replication metadata. Its
// local USNs tell which attributes of an entry changed after a given USN,
// which is what uSNChanged polling needs to tell a password change from a
// rename without keeping a copy of the directory.
#pragma once

#include <cstdint>
#include <optional>
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

struct AttributeMeta {
    std::uint32_t attid = 0;
    std::uint32_t version = 0;
    std::uint64_t local_usn = 0;
};

// Decodes the NDR replPropertyMetaDataBlob (version 1); nullopt when malformed.
std::optional<std::vector<AttributeMeta>> parse_repl_metadata(std::string_view blob);

}  // namespace pwsync::directory
