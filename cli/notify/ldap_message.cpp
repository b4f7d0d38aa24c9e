#include "ldap_message.h"

#include "ber.h"

namespace pwsync::notify::ldap {
namespace ber = directory::ber;
namespace {

constexpr unsigned char kSequence = 0x30, kInteger = 0x02, kOctets = 0x04, kEnumerated = 0x0a;
constexpr unsigned char kBindRequest = 0x60, kUnbindRequest = 0x42, kExtendedRequest = 0x77;
constexpr unsigned char kSimple = 0x80, kExtName = 0x80, kExtValue = 0x81;
constexpr unsigned char kReferral = 0xa3, kSaslCreds = 0x87, kRespName = 0x8a, kRespValue = 0x8b;

// LDAPMessage { messageID, protocolOp }: the op's contents already encoded.
Secret message(int message_id, unsigned char op, std::string_view op_contents) {
    Secret body;
    ber::put_integer(body, message_id);
    ber::put_tlv(body, op, op_contents);
    Secret out;
    ber::put_tlv(out, kSequence, body.view());
    return out;
}

// An INTEGER or ENUMERATED's value (the tag already read); false if too long.
bool small_int(std::string_view c, int& value) {
    if (c.empty() || c.size() > 4) return false;
    std::int64_t v = (static_cast<unsigned char>(c[0]) & 0x80) ? -1 : 0;
    for (char b : c) v = v * 256 + static_cast<unsigned char>(b);
    value = static_cast<int>(v);
    return true;
}

std::string clean(std::string_view t) {
    while (!t.empty() && (t.back() == '\0' || t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.remove_suffix(1);
    return std::string(t);
}

}  // namespace

Secret bind_request(int message_id, std::string_view name, std::string_view password) {
    Secret op;
    ber::put_integer(op, 3);
    ber::put_tlv(op, kOctets, name);
    ber::put_tlv(op, kSimple, password);
    return message(message_id, kBindRequest, op.view());
}

Secret extended_request(int message_id, std::string_view oid, std::optional<std::string_view> value) {
    Secret op;
    ber::put_tlv(op, kExtName, oid);
    if (value) ber::put_tlv(op, kExtValue, *value);
    return message(message_id, kExtendedRequest, op.view());
}

std::string unbind_request(int message_id) {
    return std::string(message(message_id, kUnbindRequest, {}).view());
}

std::optional<std::size_t> message_size(std::string_view head, std::size_t limit) {
    if (head.empty()) return std::nullopt;
    if (static_cast<unsigned char>(head[0]) != kSequence) return 0;
    if (head.size() < 2) return std::nullopt;
    const auto l0 = static_cast<unsigned char>(head[1]);
    std::size_t header = 2, body = l0;
    if (l0 & 0x80) {
        const std::size_t n = l0 & 0x7fU;
        if (n == 0 || n > 4) return 0;  // indefinite, or over 4 GiB
        if (head.size() < 2 + n) return std::nullopt;
        body = 0;
        for (std::size_t i = 0; i < n; ++i) body = (body << 8) | static_cast<unsigned char>(head[2 + i]);
        header += n;
    }
    if (body > limit || header + body > limit) return 0;
    return header + body;
}

std::optional<Response> decode_response(std::string_view bytes) {
    ber::Reader top(bytes);
    unsigned char tag = 0;
    std::string_view msg, c;
    if (!top.next(tag, msg) || tag != kSequence || !top.at_end()) return std::nullopt;
    ber::Reader m(msg);
    Response r;
    if (!m.next(tag, c) || tag != kInteger || !small_int(c, r.message_id) || r.message_id < 0) return std::nullopt;
    std::string_view op;
    if (!m.next(r.op, op)) return std::nullopt;
    // Controls may follow the op: the client asks for none and ignores any.
    ber::Reader o(op);
    std::string_view matched, diag;
    if (!o.next(tag, c) || tag != kEnumerated || !small_int(c, r.result_code) || r.result_code < 0) return std::nullopt;
    if (!o.next(tag, matched) || tag != kOctets || !o.next(tag, diag) || tag != kOctets) return std::nullopt;
    r.diagnostic = clean(diag);
    // Optional fields, in order: referral [3], then serverSaslCreds [7] (bind)
    // or responseName [10] and responseValue [11] (extended).
    unsigned char last = 0;
    while (!o.at_end()) {
        if (!o.next(tag, c) || tag <= last) return std::nullopt;
        last = tag;
        if (tag == kRespName) r.response_name = std::string(c);
        else if (tag != kReferral && tag != kSaslCreds && tag != kRespValue) return std::nullopt;
    }
    return r;
}

bool retryable_result(int rc) noexcept {
    // operationsError, timeLimitExceeded, busy, unavailable, other.
    return rc == 1 || rc == 3 || rc == 51 || rc == 52 || rc == 80;
}

std::string result_name(int rc) {
    const char* name = nullptr;
    switch (rc) {
    case 0: name = "success"; break;
    case 1: name = "operations error"; break;
    case 2: name = "protocol error"; break;
    case 3: name = "time limit exceeded"; break;
    case 7: name = "auth method not supported"; break;
    case 8: name = "stronger auth required"; break;
    case 12: name = "unavailable critical extension"; break;
    case 13: name = "confidentiality required"; break;
    case 19: name = "constraint violation"; break;
    case 32: name = "no such object"; break;
    case 48: name = "inappropriate authentication"; break;
    case 49: name = "invalid credentials"; break;
    case 50: name = "insufficient access rights"; break;
    case 51: name = "busy"; break;
    case 52: name = "unavailable"; break;
    case 53: name = "unwilling to perform"; break;
    case 80: name = "other"; break;
    default: break;
    }
    return (name != nullptr ? std::string(name) : std::string("result")) + " (" + std::to_string(rc) + ")";
}

}  // namespace pwsync::notify::ldap
