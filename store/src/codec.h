// Record encoding: a format byte, then fields as (tag, length, bytes) with
// varint tags and lengths. Unknown tags are skipped and missing ones keep
// their defaults, so a release reads what an earlier one wrote, and an
// earlier one reads a later one's records as long as the format byte allows.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "pwsync/util.h"

namespace pwsync::store::codec {

class Encoder {
public:
    explicit Encoder(std::uint8_t format) { out_.push_back(static_cast<char>(format)); }
    Encoder& bytes(std::uint32_t tag, std::string_view value);
    Encoder& str(std::uint32_t tag, std::string_view value) { return bytes(tag, value); }
    Encoder& u64(std::uint32_t tag, std::uint64_t value);
    Encoder& i64(std::uint32_t tag, std::int64_t value) { return u64(tag, static_cast<std::uint64_t>(value)); }
    Encoder& boolean(std::uint32_t tag, bool value) { return u64(tag, value ? 1 : 0); }
    const std::string& data() const { return out_; }
    std::string take() { return std::move(out_); }

private:
    std::string out_;
};

void put_varint(std::string& out, std::uint64_t v);
// Reads a varint at `pos`, advancing it; false on truncation or overflow.
bool get_varint(std::string_view in, std::size_t& pos, std::uint64_t& v) noexcept;

using FieldVisitor = std::function<Status(std::uint32_t tag, std::string_view value)>;

// Walks the fields of a record. `what` names the record in error messages.
// Fails with Errc::version when the format byte is newer than `max_format`,
// and with Errc::corrupt when the bytes do not decode.
Status decode(std::string_view record, std::uint8_t max_format, std::string_view what,
              const FieldVisitor& visit);

Result<std::uint64_t> as_u64(std::string_view value);
Result<bool> as_bool(std::string_view value);
Result<std::int64_t> as_i64(std::string_view value);

}  // namespace pwsync::store::codec
