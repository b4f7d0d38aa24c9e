// Small BER encoders and decoders for the few values pwsync builds itself:
// the Password Modify request (it holds passwords, so it is built straight
// into a Secret instead of a liblber buffer that is freed unwiped), and the
// controls libldap has no helper for.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "pwsync/util.h"

namespace pwsync::directory::ber {

// One TLV: tag, then the definite length, then the content.
void put_tlv(Secret& out, unsigned char tag, std::string_view content);
void put_length(Secret& out, std::size_t length);
// A minimal two's-complement INTEGER.
void put_integer(Secret& out, std::int64_t value);

// RFC 3062 PasswdModifyRequestValue; absent fields are omitted.
Secret password_modify_request(std::string_view user_identity, const Secret* old_password,
                               const Secret* new_password);
// PasswdModifyResponseValue: the generated password, if the server sent one.
std::optional<Secret> password_modify_response(std::string_view value, bool& ok);

// LDAP_SERVER_POLICY_HINTS value: SEQUENCE { INTEGER 1 }.
std::string policy_hints_value();

// DirSync request value: SEQUENCE { INTEGER flags, INTEGER maxBytes, OCTET STRING cookie }.
std::string dirsync_request(std::uint32_t flags, std::int32_t max_bytes, std::string_view cookie);
struct DirSyncResponse {
    bool more = false;
    std::string cookie;
};
// SEQUENCE { INTEGER moreResults, INTEGER unused, OCTET STRING cookie }.
std::optional<DirSyncResponse> dirsync_response(std::string_view value);

// Reads TLVs from a buffer; every read checks bounds.
class Reader {
public:
    explicit Reader(std::string_view data) : d_(data) {}
    // The next element's tag and content; false at the end or on bad data.
    bool next(unsigned char& tag, std::string_view& content);
    bool integer(std::int64_t& value);  // the next element, which must be an INTEGER
    bool at_end() const { return d_.empty(); }

private:
    std::string_view d_;
};

}  // namespace pwsync::directory::ber
