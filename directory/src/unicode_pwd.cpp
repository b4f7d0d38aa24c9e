// The value AD wants in unicodePwd: "password" with its quotes, UTF-16LE.
#include <cstdint>

#include "pwsync/directory.h"

namespace pwsync::directory {
namespace {

void put16(Secret& out, std::uint32_t unit) {
    out.push_back(static_cast<char>(unit & 0xFF));
    out.push_back(static_cast<char>((unit >> 8) & 0xFF));
}

}  // namespace

Result<Secret> encode_unicode_pwd(std::string_view in) {
    // valid_utf8 rejects overlongs, surrogates and truncation, so the decoder
    // below may trust the lead bytes.
    if (!valid_utf8(in)) return fail(Errc::invalid_argument, "the password is not valid UTF-8");
    if (in.empty()) return fail(Errc::invalid_argument, "the password is empty");
    Secret out;
    out.resize(0);
    put16(out, '"');
    for (std::size_t i = 0; i < in.size();) {
        const auto b0 = static_cast<unsigned char>(in[i]);
        std::uint32_t cp = 0;
        std::size_t n = 1;
        if (b0 < 0x80) cp = b0;
        else if ((b0 & 0xE0) == 0xC0) cp = b0 & 0x1F, n = 2;
        else if ((b0 & 0xF0) == 0xE0) cp = b0 & 0x0F, n = 3;
        else cp = b0 & 0x07, n = 4;
        for (std::size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(in[i + k]) & 0x3F);
        i += n;
        if (cp == 0) {
            out.clear();
            return fail(Errc::invalid_argument, "the password contains a NUL character");
        }
        if (cp >= 0x10000) {
            cp -= 0x10000;
            put16(out, 0xD800 + (cp >> 10));
            put16(out, 0xDC00 + (cp & 0x3FF));
        } else {
            put16(out, cp);
        }
        cp = 0;
    }
    put16(out, '"');
    return out;
}

}  // namespace pwsync::directory
