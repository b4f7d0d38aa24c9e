// The spool: one file per captured change, written by pwsyncflt.dll inside
// lsass and consumed in name order by pwsync-agent. A file holds one record:
//
//   "PWSQ"  u16 version (1)  u16 flags (0)  u64 created (Unix seconds)
//   u32 n   n bytes sealed change            u32 CRC-32 of everything before
//
// (little endian). The sealed part is the change below after the Sealer
// (DPAPI machine scope on Windows) has sealed it; the record is never
// cleartext. The CRC catches torn or damaged files before unsealing, so
// that a corrupt entry can be set aside with a reason.
#pragma once

#include <cstdint>
#include <expected>
#include <string>

#include "bytes.h"

namespace pwsync::win {

inline constexpr std::uint16_t kRecordVersion = 1;
inline constexpr std::size_t kMaxSealed = 64 * 1024;

struct Record {
    std::uint64_t created = 0;  // Unix seconds, when lsass handed the change over
    Bytes sealed;
};

Bytes encode_record(const Record& r);
std::expected<Record, std::string> decode_record(const std::uint8_t* p, std::size_t n);

// The change before sealing: u8 version (1), u32 n, account (UTF-16LE as
// LSA gives it), u32 m, new password (UTF-16LE).
struct Change {
    Bytes account;          // UTF-16LE
    SecretBytes password;   // UTF-16LE
};

SecretBytes encode_change(const std::uint8_t* account, std::size_t account_len, const std::uint8_t* password,
                          std::size_t password_len);
std::expected<Change, std::string> decode_change(const SecretBytes& plain);

// Seals and unseals changes at rest. The key must not be in the binary: on
// Windows DPAPI with CRYPTPROTECT_LOCAL_MACHINE; tests use a fake.
class Sealer {
public:
    virtual ~Sealer() = default;
    virtual std::expected<Bytes, std::string> seal(const SecretBytes& plain) = 0;
    virtual std::expected<SecretBytes, std::string> unseal(const Bytes& sealed) = 0;
};

// Entry file names sort in capture order: 16 hex digits of the capture time
// (FILETIME), 8 of a per-process counter, 8 of the process id.
std::string entry_name(std::uint64_t filetime, std::uint32_t counter, std::uint32_t pid);
bool is_entry_name(const std::string& name);

// UTF-16LE to UTF-8 for the wire; false on a lone surrogate or odd length.
bool utf16le_to_utf8(const std::uint8_t* p, std::size_t n, SecretBytes& out);

}  // namespace pwsync::win
