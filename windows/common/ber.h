// The request value of the Password Modify extended operation (RFC 3062),
// which wldap32's ldap_extended_operation_s sends as an opaque berval:
//   PasswdModifyRequestValue ::= SEQUENCE {
//       userIdentity [0] OCTET STRING OPTIONAL,
//       oldPasswd    [1] OCTET STRING OPTIONAL,
//       newPasswd    [2] OCTET STRING OPTIONAL }
#pragma once

#include <string_view>

#include "bytes.h"

namespace pwsync::win {

inline constexpr const char* kPasswordModifyOid = "1.3.6.1.4.1.4203.1.11.1";

SecretBytes encode_password_modify(std::string_view user, const SecretBytes& new_password);

}  // namespace pwsync::win
