#include "spool_record.h"

#include <cstdio>
#include <cstring>

namespace pwsync::win {
namespace {
constexpr char kMagic[4] = {'P', 'W', 'S', 'Q'};
constexpr std::size_t kHeader = 4 + 2 + 2 + 8 + 4;
constexpr std::uint8_t kChangeVersion = 1;
}  // namespace

Bytes encode_record(const Record& r) {
    Bytes out(kMagic, kMagic + 4);
    put_u16(out, kRecordVersion);
    put_u16(out, 0);
    put_u64(out, r.created);
    put_u32(out, static_cast<std::uint32_t>(r.sealed.size()));
    out.insert(out.end(), r.sealed.begin(), r.sealed.end());
    put_u32(out, crc32(out.data(), out.size()));
    return out;
}

std::expected<Record, std::string> decode_record(const std::uint8_t* p, std::size_t n) {
    if (n < kHeader + 4) return std::unexpected("truncated (" + std::to_string(n) + " bytes)");
    if (std::memcmp(p, kMagic, 4) != 0) return std::unexpected(std::string("not a spool record (bad magic)"));
    const auto version = get_u16(p + 4);
    if (version != kRecordVersion) return std::unexpected("unknown record version " + std::to_string(version));
    const auto len = get_u32(p + 16);
    if (len > kMaxSealed || kHeader + len + 4 != n)
        return std::unexpected("length field " + std::to_string(len) + " does not match the file size");
    if (crc32(p, n - 4) != get_u32(p + n - 4)) return std::unexpected(std::string("checksum mismatch"));
    Record r;
    r.created = get_u64(p + 8);
    r.sealed.assign(p + kHeader, p + kHeader + len);
    return r;
}

SecretBytes encode_change(const std::uint8_t* account, std::size_t account_len, const std::uint8_t* password,
                          std::size_t password_len) {
    Bytes head;
    head.reserve(1 + 4 + account_len + 4);
    head.push_back(kChangeVersion);
    put_u32(head, static_cast<std::uint32_t>(account_len));
    head.insert(head.end(), account, account + account_len);
    put_u32(head, static_cast<std::uint32_t>(password_len));
    SecretBytes out;
    out.bytes().reserve(head.size() + password_len);
    out.append(head.data(), head.size());
    out.append(password, password_len);
    return out;
}

std::expected<Change, std::string> decode_change(const SecretBytes& plain) {
    const auto* p = plain.data();
    const std::size_t n = plain.size();
    if (n < 9 || p[0] != kChangeVersion) return std::unexpected(std::string("unsealed change has a bad header"));
    const std::size_t a = get_u32(p + 1);
    if (a > n - 9) return std::unexpected(std::string("unsealed change: account length out of range"));
    const std::size_t m = get_u32(p + 5 + a);
    if (m != n - 9 - a) return std::unexpected(std::string("unsealed change: password length out of range"));
    if (a == 0 || a % 2 != 0 || m % 2 != 0) return std::unexpected(std::string("unsealed change: not UTF-16"));
    Change c;
    c.account.assign(p + 5, p + 5 + a);
    c.password.append(p + 9 + a, m);
    return c;
}

std::string entry_name(std::uint64_t filetime, std::uint32_t counter, std::uint32_t pid) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%016llx-%08x-%08x.pws", static_cast<unsigned long long>(filetime),
                  static_cast<unsigned>(counter), static_cast<unsigned>(pid));
    return buf;
}

bool is_entry_name(const std::string& name) {
    if (name.size() != 16 + 1 + 8 + 1 + 8 + 4 || name.substr(name.size() - 4) != ".pws") return false;
    for (std::size_t i = 0; i < name.size() - 4; ++i) {
        const char c = name[i];
        const bool dash = i == 16 || i == 25;
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

bool utf16le_to_utf8(const std::uint8_t* p, std::size_t n, SecretBytes& out) {
    if (n % 2 != 0) return false;
    out.clear();
    out.bytes().reserve(n * 2);
    for (std::size_t i = 0; i < n; i += 2) {
        std::uint32_t cp = get_u16(p + i);
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (i + 3 >= n) return false;
            const std::uint32_t lo = get_u16(p + i + 2);
            if (lo < 0xDC00 || lo > 0xDFFF) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i += 2;
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return false;
        }
        std::uint8_t b[4];
        std::size_t k;
        if (cp < 0x80) { b[0] = static_cast<std::uint8_t>(cp); k = 1; }
        else if (cp < 0x800) { b[0] = static_cast<std::uint8_t>(0xC0 | (cp >> 6)); b[1] = static_cast<std::uint8_t>(0x80 | (cp & 0x3F)); k = 2; }
        else if (cp < 0x10000) {
            b[0] = static_cast<std::uint8_t>(0xE0 | (cp >> 12));
            b[1] = static_cast<std::uint8_t>(0x80 | ((cp >> 6) & 0x3F));
            b[2] = static_cast<std::uint8_t>(0x80 | (cp & 0x3F));
            k = 3;
        } else {
            b[0] = static_cast<std::uint8_t>(0xF0 | (cp >> 18));
            b[1] = static_cast<std::uint8_t>(0x80 | ((cp >> 12) & 0x3F));
            b[2] = static_cast<std::uint8_t>(0x80 | ((cp >> 6) & 0x3F));
            b[3] = static_cast<std::uint8_t>(0x80 | (cp & 0x3F));
            k = 4;
        }
        out.append(b, k);
        wipe(b, sizeof b);
    }
    return true;
}

}  // namespace pwsync::win
