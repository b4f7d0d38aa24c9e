// Account names as admins write them, filter escaping, and objectGUIDs.
#include <ldap.h>

#include <cstdio>

#include "pwsync/directory.h"

namespace pwsync::directory {
namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Characters AD forbids in sAMAccountName.
bool valid_sam(std::string_view s) {
    if (s.empty() || s.size() > 256) return false;
    for (char c : s) {
        if (static_cast<unsigned char>(c) < 0x20) return false;
        if (std::string_view("\"/\\[]:;|=,+*?<>@").find(c) != std::string_view::npos) return false;
    }
    return s.find_first_not_of(". ") != std::string_view::npos;  // not only dots and spaces
}

bool valid_dn(std::string_view s) {
    LDAPDN dn = nullptr;
    const std::string copy(s);
    const int rc = ldap_str2dn(copy.c_str(), &dn, LDAP_DN_FORMAT_LDAPV3);
    // Every RDN needs a value ("CN=" parses, but names nothing).
    bool ok = rc == LDAP_SUCCESS && dn != nullptr && dn[0] != nullptr;
    for (int i = 0; ok && dn[i] != nullptr; ++i)
        for (int j = 0; ok && dn[i][j] != nullptr; ++j) ok = dn[i][j]->la_value.bv_len > 0;
    if (dn != nullptr) ldap_dnfree(dn);
    return ok;
}

}  // namespace

std::string escape_filter_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        switch (c) {
        case '*': out += "\\2a"; break;
        case '(': out += "\\28"; break;
        case ')': out += "\\29"; break;
        case '\\': out += "\\5c"; break;
        case '\0': out += "\\00"; break;
        default: out.push_back(c);
        }
    }
    return out;
}

std::string escape_filter_bytes(std::string_view bytes) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 3);
    for (char c : bytes) {
        const auto b = static_cast<unsigned char>(c);
        out.push_back('\\');
        out.push_back(digits[b >> 4]);
        out.push_back(digits[b & 0xF]);
    }
    return out;
}

std::string format_guid(std::string_view b) {
    if (b.size() != 16) return {};
    const auto u = [&](std::size_t i) { return static_cast<unsigned>(static_cast<unsigned char>(b[i])); };
    char buf[40];
    // The first three fields are stored little-endian, the last two as bytes.
    std::snprintf(buf, sizeof buf, "{%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x}",
                  u(3), u(2), u(1), u(0), u(5), u(4), u(7), u(6), u(8), u(9), u(10), u(11), u(12), u(13), u(14),
                  u(15));
    return buf;
}

std::optional<std::string> parse_guid(std::string_view t) {
    if (t.size() == 38 && t.front() == '{' && t.back() == '}') t = t.substr(1, 36);
    if (t.size() != 36 || t[8] != '-' || t[13] != '-' || t[18] != '-' || t[23] != '-') return std::nullopt;
    std::string hex;
    for (char c : t)
        if (c != '-') hex.push_back(c);
    if (hex.size() != 32) return std::nullopt;
    unsigned char text_order[16];
    for (std::size_t i = 0; i < 16; ++i) {
        const int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        text_order[i] = static_cast<unsigned char>(hi * 16 + lo);
    }
    static constexpr int kOrder[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
    std::string bytes(16, '\0');
    for (std::size_t i = 0; i < 16; ++i) bytes[static_cast<std::size_t>(kOrder[i])] = static_cast<char>(text_order[i]);
    return bytes;
}

std::optional<std::string> guid_dn(std::string_view guid) {
    const auto bytes = parse_guid(guid);
    if (!bytes) return std::nullopt;
    const std::string text = format_guid(*bytes);  // {...}, lower case
    return "<GUID=" + text.substr(1, text.size() - 2) + ">";
}

Result<AccountName> parse_account_name(std::string_view name) {
    if (name.empty()) return fail(Errc::invalid_argument, "empty account name");
    if (name.find('\0') != std::string_view::npos) return fail(Errc::invalid_argument, "account name with a NUL byte");
    AccountName a;
    if (auto g = parse_guid(name)) {
        a.kind = NameKind::guid;
        a.value = std::move(*g);
        return a;
    }
    const std::string shown(name);
    if (name.front() == '{') return fail(Errc::invalid_argument, "not a GUID: " + shown);
    // A DN has '=' before any backslash (an escaped character in a DN is
    // preceded by its attribute type).
    const auto eq = name.find('=');
    const auto bs = name.find('\\');
    if (eq != std::string_view::npos && (bs == std::string_view::npos || eq < bs)) {
        if (!valid_dn(name)) return fail(Errc::invalid_argument, "not a valid DN: " + shown);
        a.kind = NameKind::dn;
        a.value = shown;
        return a;
    }
    if (bs != std::string_view::npos) {
        const auto domain = name.substr(0, bs);
        const auto sam = name.substr(bs + 1);
        if (domain.empty() || sam.find('\\') != std::string_view::npos || !valid_sam(sam))
            return fail(Errc::invalid_argument, "not a valid DOMAIN\\sam name: " + shown);
        a.kind = NameKind::domain_sam;
        a.domain = std::string(domain);
        a.value = std::string(sam);
        return a;
    }
    if (const auto at = name.rfind('@'); at != std::string_view::npos) {
        if (at == 0 || at + 1 == name.size()) return fail(Errc::invalid_argument, "not a valid UPN: " + shown);
        a.kind = NameKind::upn;
        a.domain = std::string(name.substr(at + 1));
        a.value = shown;
        return a;
    }
    if (!valid_sam(name)) return fail(Errc::invalid_argument, "not a valid sAMAccountName: " + shown);
    a.kind = NameKind::sam;
    a.value = shown;
    return a;
}

bool is_bare_sam(std::string_view name) {
    auto parsed = parse_account_name(name);
    return parsed && parsed->kind == NameKind::sam;
}

}  // namespace pwsync::directory
