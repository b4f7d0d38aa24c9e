#include "listen_uri.h"

#include <charconv>

namespace pwsync::gateway {

Result<ListenUri> parse_listen_uri(std::string_view uri) {
    ListenUri out;
    std::string_view rest;
    const std::string lower = ascii_lower(uri);
    if (lower.starts_with("ldaps://")) {
        out.ldaps = true;
        out.port = 636;
        rest = uri.substr(8);
    } else if (lower.starts_with("ldap://")) {
        out.port = 389;
        rest = uri.substr(7);
    } else {
        return fail(Errc::invalid_argument, "listen URI " + std::string(uri) + " must start with ldaps:// or ldap://");
    }
    if (rest.ends_with('/')) rest.remove_suffix(1);
    std::string_view port;
    bool has_port = false;
    if (rest.starts_with('[')) {
        const auto close = rest.find(']');
        if (close == std::string_view::npos)
            return fail(Errc::invalid_argument, "listen URI " + std::string(uri) + " has an unclosed [");
        out.host = std::string(rest.substr(1, close - 1));
        rest.remove_prefix(close + 1);
        if (!rest.empty()) {
            if (rest[0] != ':') return fail(Errc::invalid_argument, "listen URI " + std::string(uri) + " is malformed");
            port = rest.substr(1);
            has_port = true;
        }
    } else {
        const auto colon = rest.rfind(':');
        if (colon != std::string_view::npos) {
            if (rest.find(':') != colon)
                return fail(Errc::invalid_argument,
                            "listen URI " + std::string(uri) + ": put an IPv6 address in brackets, e.g. ldaps://[::1]:1636");
            port = rest.substr(colon + 1);
            has_port = true;
            rest = rest.substr(0, colon);
        }
        out.host = std::string(rest);
    }
    if (out.host.empty() || out.host.find_first_of("/?#@ ") != std::string::npos)
        return fail(Errc::invalid_argument, "listen URI " + std::string(uri) + " needs a host (0.0.0.0 for all)");
    if (has_port) {
        unsigned value = 0;
        const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
        if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535)
            return fail(Errc::invalid_argument, "listen URI " + std::string(uri) + " has an invalid port");
        out.port = static_cast<std::uint16_t>(value);
    }
    return out;
}

}  // namespace pwsync::gateway
