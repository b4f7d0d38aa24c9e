#include "ber.h"

namespace pwsync::directory::ber {

void put_length(Secret& out, std::size_t length) {
    if (length < 0x80) {
        out.push_back(static_cast<char>(length));
        return;
    }
    unsigned char bytes[8];
    int n = 0;
    for (std::size_t l = length; l != 0; l >>= 8) bytes[n++] = static_cast<unsigned char>(l & 0xFF);
    out.push_back(static_cast<char>(0x80 | n));
    while (n > 0) out.push_back(static_cast<char>(bytes[--n]));
}

void put_tlv(Secret& out, unsigned char tag, std::string_view content) {
    out.push_back(static_cast<char>(tag));
    put_length(out, content.size());
    out.append(content);
}

void put_integer(Secret& out, std::int64_t value) {
    unsigned char bytes[8];
    for (int i = 0; i < 8; ++i) bytes[7 - i] = static_cast<unsigned char>((static_cast<std::uint64_t>(value) >> (8 * i)) & 0xFF);
    // Drop leading bytes that only repeat the sign.
    int start = 0;
    while (start < 7 && ((bytes[start] == 0x00 && (bytes[start + 1] & 0x80) == 0) ||
                         (bytes[start] == 0xFF && (bytes[start + 1] & 0x80) != 0)))
        ++start;
    put_tlv(out, 0x02, std::string_view(reinterpret_cast<const char*>(bytes + start), static_cast<std::size_t>(8 - start)));
}

Secret password_modify_request(std::string_view user_identity, const Secret* old_password,
                               const Secret* new_password) {
    Secret body;
    if (!user_identity.empty()) put_tlv(body, 0x80, user_identity);
    if (old_password != nullptr) put_tlv(body, 0x81, old_password->view());
    if (new_password != nullptr) put_tlv(body, 0x82, new_password->view());
    Secret out;
    put_tlv(out, 0x30, body.view());
    return out;
}

std::optional<Secret> password_modify_response(std::string_view value, bool& ok) {
    ok = true;
    if (value.empty()) return std::nullopt;  // no response value: nothing generated
    Reader outer(value);
    unsigned char tag = 0;
    std::string_view seq;
    if (!outer.next(tag, seq) || tag != 0x30) {
        ok = false;
        return std::nullopt;
    }
    Reader inner(seq);
    std::string_view gen;
    if (inner.next(tag, gen) && tag == 0x80) return Secret(gen);
    return std::nullopt;
}

std::string policy_hints_value() {
    Secret body;
    put_integer(body, 1);
    Secret out;
    put_tlv(out, 0x30, body.view());
    return std::string(out.view());
}

std::string dirsync_request(std::uint32_t flags, std::int32_t max_bytes, std::string_view cookie) {
    Secret body;
    // AD reads the flags as a 32-bit signed INTEGER (0x80000000 is negative).
    put_integer(body, static_cast<std::int32_t>(flags));
    put_integer(body, max_bytes);
    put_tlv(body, 0x04, cookie);
    Secret out;
    put_tlv(out, 0x30, body.view());
    return std::string(out.view());
}

std::optional<DirSyncResponse> dirsync_response(std::string_view value) {
    Reader outer(value);
    unsigned char tag = 0;
    std::string_view seq;
    if (!outer.next(tag, seq) || tag != 0x30) return std::nullopt;
    Reader r(seq);
    std::int64_t more = 0, unused = 0;
    std::string_view cookie;
    if (!r.integer(more) || !r.integer(unused) || !r.next(tag, cookie) || tag != 0x04) return std::nullopt;
    return DirSyncResponse{more != 0, std::string(cookie)};
}

bool Reader::next(unsigned char& tag, std::string_view& content) {
    if (d_.size() < 2) return false;
    tag = static_cast<unsigned char>(d_[0]);
    if ((tag & 0x1F) == 0x1F) return false;  // multi-byte tags: not used by these values
    std::size_t len = static_cast<unsigned char>(d_[1]);
    std::size_t pos = 2;
    if (len & 0x80) {
        const std::size_t n = len & 0x7F;
        if (n == 0 || n > 4 || d_.size() < 2 + n) return false;  // no indefinite lengths
        len = 0;
        for (std::size_t i = 0; i < n; ++i) len = (len << 8) | static_cast<unsigned char>(d_[2 + i]);
        pos += n;
    }
    if (d_.size() - pos < len) return false;
    content = d_.substr(pos, len);
    d_.remove_prefix(pos + len);
    return true;
}

bool Reader::integer(std::int64_t& value) {
    unsigned char tag = 0;
    std::string_view c;
    if (!next(tag, c) || tag != 0x02 || c.empty() || c.size() > 8) return false;
    std::uint64_t v = (static_cast<unsigned char>(c[0]) & 0x80) ? ~std::uint64_t{0} : 0;
    for (char b : c) v = (v << 8) | static_cast<unsigned char>(b);
    value = static_cast<std::int64_t>(v);
    return true;
}

}  // namespace pwsync::directory::ber
