// The few LDAPv3 messages the capture hook client sends and reads (RFC 4511):
// BindRequest (simple), ExtendedRequest (StartTLS, Password Modify),
// UnbindRequest, and the LDAPResult of a BindResponse or ExtendedResponse.
// Built on directory/src/ber.h, which needs nothing but pwsync_util, so the
// hook links no libldap/liblber. Requests that hold secrets are Secrets.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "pwsync/util.h"

namespace pwsync::notify::ldap {

inline constexpr std::string_view kStartTlsOid = "1.3.6.1.4.1.1466.20037";
inline constexpr std::string_view kPasswordModifyOid = "1.3.6.1.4.1.4203.1.11.1";

inline constexpr unsigned char kBindResponse = 0x61;
inline constexpr unsigned char kExtendedResponse = 0x78;

// Result codes the client tells apart (RFC 4511 appendix A).
inline constexpr int kSuccess = 0;

// LDAPMessage { id, BindRequest { version 3, name, simple [0] password } }.
Secret bind_request(int message_id, std::string_view name, std::string_view password);
// LDAPMessage { id, ExtendedRequest { [0] oid, [1] value (when given) } }.
Secret extended_request(int message_id, std::string_view oid, std::optional<std::string_view> value);
// LDAPMessage { id, UnbindRequest }.
std::string unbind_request(int message_id);

// How long the message starting with `head` is in total: nullopt when more
// bytes are needed, 0 when `head` cannot start an LDAPMessage (not a
// SEQUENCE, an indefinite length, or longer than `limit`).
std::optional<std::size_t> message_size(std::string_view head, std::size_t limit);

// The parts of an LDAPResult-shaped response the client uses.
struct Response {
    int message_id = 0;
    unsigned char op = 0;  // protocolOp tag: kBindResponse, kExtendedResponse, ...
    int result_code = -1;
    std::string diagnostic;    // diagnosticMessage, trailing blanks/NULs removed
    std::string response_name; // ExtendedResponse responseName, when sent
};
// Decodes one whole LDAPMessage holding an LDAPResult; nullopt when malformed.
// A responseValue is checked but not kept (it may carry a generated password).
std::optional<Response> decode_response(std::string_view message);

// Result codes worth another try later (the gateway busy or failing), as
// directory/src/errors.cpp classifies them; anything else is a refusal.
bool retryable_result(int result_code) noexcept;
// "invalid credentials (49)"-style text for a result code.
std::string result_name(int result_code);

}  // namespace pwsync::notify::ldap
