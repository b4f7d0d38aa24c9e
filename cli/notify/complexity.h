// Active Directory's "password must meet complexity requirements" rule.
// Samba skips its own complexity check while a check password script is
// configured, so the capture hook applies it instead (pwsync notify
// --complexity): installing pwsync must not weaken the domain's policy.
#pragma once

#include <string>
#include <string_view>

namespace pwsync::cli {

// Empty when the password passes; else why not (never the password itself).
// Characters from three of: upper case, lower case, digits, symbols, other
// letters (non-ASCII); not containing the account name (3+ characters) or a
// 3+ character part of the full name (split on , . - _ # space tab).
std::string complexity_problem(std::string_view password, std::string_view account, std::string_view full_name);

}  // namespace pwsync::cli
