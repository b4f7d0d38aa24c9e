// libFuzzer target: the listener's request decoding. The bytes go through
// what a session does with a received message: frame header, whole-message
// decode (Bind, Extended, Unbind, ...), the Password Modify value, and the
// response the session would write back.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "ldap_codec.h"

namespace ldap = pwsync::gateway::ldap;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // Exactly one spare byte after the message, as the session's buffer has:
    // liblber may peek at it, anything further is a bug ASan reports.
    auto buffer = std::make_unique<char[]>(size + 1);
    if (size != 0) std::memcpy(buffer.get(), data, size);
    buffer[size] = '\0';
    const std::string_view message(buffer.get(), size);

    const auto header = ldap::parse_frame_header(message.substr(0, 6));
    if (header && *header) {
        // A header never claims more than it may: 2 + up to 4 length octets.
        if ((*header)->header_size < 2 || (*header)->header_size > 6) std::abort();
    }

    auto req = ldap::decode_request(message);
    if (!req) return 0;
    if (req->message_id <= 0) std::abort();
    if (auto* ext = std::get_if<ldap::ExtendedRequest>(&req->body); ext && ext->value) {
        if (ext->oid == ldap::oid::password_modify) (void)ldap::decode_password_modify(ext->value->view());
    }
    if (const auto tag = ldap::response_tag(req->op)) {
        auto out = ldap::encode_response(req->message_id, *tag, {0, "ok"});
        if (!out) std::abort();
        // What we write must decode as an LDAPMessage of the same id.
        std::string reply = *out;
        reply.push_back('\0');
        auto top = ldap::BerReader::over(std::string_view(reply.data(), out->size()));
        if (!top) std::abort();
        auto msg = top->enter(ldap::tag::message);
        if (!msg || msg->integer() != req->message_id) std::abort();
    }
    return 0;
}
