#include "ber.h"

namespace pwsync::win {
namespace {

Bytes ber_length(std::size_t n) {
    if (n < 0x80) return {static_cast<std::uint8_t>(n)};
    Bytes digits;
    for (; n != 0; n >>= 8) digits.insert(digits.begin(), static_cast<std::uint8_t>(n & 0xFF));
    digits.insert(digits.begin(), static_cast<std::uint8_t>(0x80 | digits.size()));
    return digits;
}

void put_tlv(SecretBytes& out, std::uint8_t tag, const std::uint8_t* p, std::size_t n) {
    out.append(&tag, 1);
    const Bytes len = ber_length(n);
    out.append(len.data(), len.size());
    out.append(p, n);
}

}  // namespace

SecretBytes encode_password_modify(std::string_view user, const SecretBytes& new_password) {
    SecretBytes body;
    put_tlv(body, 0x80, reinterpret_cast<const std::uint8_t*>(user.data()), user.size());
    put_tlv(body, 0x82, new_password.data(), new_password.size());
    SecretBytes out;
    out.bytes().reserve(body.size() + 8);
    put_tlv(out, 0x30, body.data(), body.size());
    return out;
}

}  // namespace pwsync::win
