#include "codec.h"

namespace pwsync::store::codec {

void put_varint(std::string& out, std::uint64_t v) {
    while (v >= 0x80) {
        out.push_back(static_cast<char>((v & 0x7f) | 0x80));
        v >>= 7;
    }
    out.push_back(static_cast<char>(v));
}

bool get_varint(std::string_view in, std::size_t& pos, std::uint64_t& v) noexcept {
    v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (pos >= in.size()) return false;
        const auto b = static_cast<unsigned char>(in[pos++]);
        if (shift == 63 && b > 1) return false;  // would overflow 64 bits
        v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
        if ((b & 0x80) == 0) return true;
    }
    return false;
}

Encoder& Encoder::bytes(std::uint32_t tag, std::string_view value) {
    put_varint(out_, tag);
    put_varint(out_, value.size());
    out_.append(value);
    return *this;
}

Encoder& Encoder::u64(std::uint32_t tag, std::uint64_t value) {
    std::string v;
    put_varint(v, value);
    return bytes(tag, v);
}

Status decode(std::string_view record, std::uint8_t max_format, std::string_view what,
              const FieldVisitor& visit) {
    if (record.empty()) return fail(Errc::corrupt, std::string(what) + " record is empty");
    const auto format = static_cast<unsigned char>(record[0]);
    if (format == 0 || format > max_format)
        return fail(Errc::version, std::string(what) + " record has format " + std::to_string(format) +
                                       "; this release reads up to " + std::to_string(max_format) +
                                       " (written by a newer pwsync?)");
    std::size_t pos = 1;
    while (pos < record.size()) {
        std::uint64_t tag = 0, len = 0;
        if (!get_varint(record, pos, tag) || !get_varint(record, pos, len) || tag > 0xffffffffu ||
            len > record.size() - pos)
            return fail(Errc::corrupt, std::string(what) + " record is truncated or malformed");
        auto st = visit(static_cast<std::uint32_t>(tag), record.substr(pos, len));
        if (!st) return st;
        pos += len;
    }
    return {};
}

Result<std::uint64_t> as_u64(std::string_view value) {
    std::size_t pos = 0;
    std::uint64_t v = 0;
    if (!get_varint(value, pos, v) || pos != value.size())
        return fail(Errc::corrupt, "malformed integer field");
    return v;
}

Result<bool> as_bool(std::string_view value) {
    auto v = as_u64(value);
    if (!v) return std::unexpected(v.error());
    if (*v > 1) return fail(Errc::corrupt, "malformed boolean field");
    return *v == 1;
}

Result<std::int64_t> as_i64(std::string_view value) {
    auto v = as_u64(value);
    if (!v) return std::unexpected(v.error());
    return static_cast<std::int64_t>(*v);
}

}  // namespace pwsync::store::codec
