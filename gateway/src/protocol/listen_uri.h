// "ldaps://host:port" and "ldap://host:port" (StartTLS) as the listener's
// configuration names them; IPv6 hosts in brackets.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "pwsync/util.h"

namespace pwsync::gateway {

struct ListenUri {
    bool ldaps = false;
    std::string host;  // without brackets
    std::uint16_t port = 0;
};

Result<ListenUri> parse_listen_uri(std::string_view uri);

}  // namespace pwsync::gateway
