// LDAPv3 messages as the listener reads and writes them, through liblber.
// Decoding works in place on a caller-owned buffer (no copy of a password
// but the Secret it ends up in), so the caller can wipe that buffer after.
#pragma once

#include <lber.h>

#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "ldap_search.h"
#include "listener.h"
#include "pwsync/handles.h"
#include "pwsync/util.h"

namespace pwsync::gateway::ldap {

// A request that does not follow RFC 4511: the connection's protocol error.
inline std::unexpected<Error> protocol_error(std::string why) { return fail(Errc::protocol, std::move(why)); }

// protocolOp tags (RFC 4511 appendix B).
namespace tag {
inline constexpr ber_tag_t message = 0x30;  // LDAPMessage SEQUENCE
inline constexpr ber_tag_t bind_request = 0x60;
inline constexpr ber_tag_t bind_response = 0x61;
inline constexpr ber_tag_t unbind_request = 0x42;
inline constexpr ber_tag_t search_request = 0x63;
inline constexpr ber_tag_t search_done = 0x65;
inline constexpr ber_tag_t modify_request = 0x66;
inline constexpr ber_tag_t modify_response = 0x67;
inline constexpr ber_tag_t add_request = 0x68;
inline constexpr ber_tag_t add_response = 0x69;
inline constexpr ber_tag_t delete_request = 0x4a;
inline constexpr ber_tag_t delete_response = 0x6b;
inline constexpr ber_tag_t moddn_request = 0x6c;
inline constexpr ber_tag_t moddn_response = 0x6d;
inline constexpr ber_tag_t compare_request = 0x6e;
inline constexpr ber_tag_t compare_response = 0x6f;
inline constexpr ber_tag_t abandon_request = 0x50;
inline constexpr ber_tag_t extended_request = 0x77;
inline constexpr ber_tag_t extended_response = 0x78;
inline constexpr ber_tag_t controls = 0xa0;
}  // namespace tag

namespace oid {
inline constexpr std::string_view start_tls = "1.3.6.1.4.1.1466.20037";
inline constexpr std::string_view notice_of_disconnection = "1.3.6.1.4.1.1466.20036";
inline constexpr std::string_view password_modify = "1.3.6.1.4.1.4203.1.11.1";
inline constexpr std::string_view who_am_i = "1.3.6.1.4.1.4203.1.11.3";
}  // namespace oid

// ---------------------------------------------------------------- framing

struct FrameHeader {
    std::size_t header_size = 0;  // tag + length octets
    std::uint64_t body_size = 0;  // contents octets
};

enum class FrameError { not_a_message, indefinite_length, length_too_long };

// Looks at the first bytes of a message: nullopt when more bytes are needed
// (at most 6 are ever needed), else its header, else why it cannot be one.
std::expected<std::optional<FrameHeader>, FrameError> parse_frame_header(std::string_view first_bytes);

// ---------------------------------------------------------------- reading

// A bounded reader over one BER encoding, in place. liblber looks at the
// byte just past an element, so the byte after `bytes` must be readable.
class BerReader {
public:
    static std::optional<BerReader> over(std::string_view bytes);

    bool at_end() const;
    ber_tag_t peek_tag() const;  // LBER_DEFAULT at the end or on bad input
    // The contents of the next element, which must have tag `expected`.
    std::optional<std::string_view> element(ber_tag_t expected);
    std::optional<std::pair<ber_tag_t, std::string_view>> any_element();
    std::optional<ber_int_t> integer(ber_tag_t expected = LBER_INTEGER);
    // A reader over the contents of the next (constructed) element.
    std::optional<BerReader> enter(ber_tag_t expected);

private:
    explicit BerReader(BerReading ber) : ber_(std::move(ber)) {}
    BerReading ber_;
};

struct SimpleBind {
    std::string dn;
    Secret password;
};

struct SaslBind {
    std::string dn;
    std::string mechanism;
    std::optional<Secret> credentials;
};

struct BindRequest {
    int version = 0;
    std::variant<SimpleBind, SaslBind> auth;
};

struct ExtendedRequest {
    std::string oid;
    std::optional<Secret> value;  // may carry passwords
};

// Any other operation: only its tag matters.
struct OtherRequest {};

struct Request {
    int message_id = 0;
    ber_tag_t op = 0;
    bool critical_control = false;  // a control we do not support, marked critical
    std::variant<OtherRequest, BindRequest, ExtendedRequest, SearchRequest> body;
};

// Decodes one whole LDAPMessage (see BerReader for the byte after it).
// Errors are Errc::protocol with a reason fit for a Notice of Disconnection.
Result<Request> decode_request(std::string_view message);

// RFC 3062 PasswdModifyRequestValue.
struct PasswordModify {
    std::optional<std::string> user_identity;
    std::optional<Secret> old_password;
    std::optional<Secret> new_password;
};
Result<PasswordModify> decode_password_modify(std::string_view value);

// ---------------------------------------------------------------- writing

// The response tag of a request, or nullopt when it has none (Unbind,
// Abandon) or the tag is not an LDAP request at all.
std::optional<ber_tag_t> response_tag(ber_tag_t request_tag);
bool is_known_request(ber_tag_t request_tag);

// An LDAPResult-shaped response: BindResponse, ExtendedResponse (with an
// optional responseName [10] and responseValue [11]), SearchResultDone, ...
Result<std::string> encode_response(int message_id, ber_tag_t response_tag, const LdapResult& result,
                                    std::optional<std::string_view> response_name = std::nullopt,
                                    std::optional<std::string_view> response_value = std::nullopt);
// Unsolicited notification that the server is closing the connection.
Result<std::string> encode_notice_of_disconnection(const LdapResult& result);

}  // namespace pwsync::gateway::ldap
