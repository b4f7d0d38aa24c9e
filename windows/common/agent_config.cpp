#include "agent_config.h"

#include <charconv>

namespace pwsync::win {
namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

template <typename T>
bool parse_number(std::string_view s, T& out) {
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && end == s.data() + s.size() && !s.empty();
}

}  // namespace

std::expected<GatewayUri, std::string> parse_gateway_uri(std::string_view uri) {
    constexpr std::string_view scheme = "ldaps://";
    if (uri.substr(0, scheme.size()) != scheme)
        return std::unexpected("gateway URI must start with ldaps://: " + std::string(uri));
    std::string_view rest = uri.substr(scheme.size());
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    GatewayUri g;
    const auto colon = rest.rfind(':');
    if (colon != std::string_view::npos && rest.find(']') == std::string_view::npos) {
        unsigned port = 0;
        if (!parse_number(rest.substr(colon + 1), port) || port == 0 || port > 65535)
            return std::unexpected("bad port in gateway URI: " + std::string(uri));
        g.port = static_cast<std::uint16_t>(port);
        rest = rest.substr(0, colon);
    }
    if (rest.empty() || rest.find_first_of("/?# ") != std::string_view::npos)
        return std::unexpected("bad host in gateway URI: " + std::string(uri));
    g.host = std::string(rest);
    return g;
}

std::expected<AgentConfig, std::string> parse_agent_config(std::string_view text) {
    AgentConfig c;
    unsigned line_no = 0;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        std::string_view line = trim(text.substr(0, nl));
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        ++line_no;
        if (line.empty() || line.front() == '#') continue;
        const auto eq = line.find('=');
        if (eq == std::string_view::npos) return std::unexpected("line " + std::to_string(line_no) + ": expected key = value");
        const std::string_view key = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
        const std::string where = "line " + std::to_string(line_no) + ": ";
        if (key == "gateway") {
            std::string_view v = value;
            while (!v.empty()) {
                const auto sp = v.find(' ');
                const std::string_view word = v.substr(0, sp);
                if (!word.empty()) {
                    auto u = parse_gateway_uri(word);
                    if (!u) return std::unexpected(where + u.error());
                    c.gateways.emplace_back(word);
                }
                v = sp == std::string_view::npos ? std::string_view{} : v.substr(sp + 1);
            }
        } else if (key == "principal") {
            c.principal = std::string(value);
        } else if (key == "ca") {
            c.ca = std::string(value);
        } else if (key == "timeout") {
            if (!parse_number(value, c.timeout) || c.timeout == 0 || c.timeout > 600)
                return std::unexpected(where + "timeout must be 1 to 600 seconds");
        } else if (key == "max-age") {
            if (!parse_number(value, c.max_age)) return std::unexpected(where + "max-age must be a number of seconds");
        } else if (key == "tls-check") {
            if (value != "pinned" && value != "system") return std::unexpected(where + "tls-check must be pinned or system");
            c.pinned = value == "pinned";
        } else {
            return std::unexpected(where + "unknown key " + std::string(key));
        }
    }
    if (c.gateways.empty()) return std::unexpected(std::string("no gateway = in the agent configuration"));
    if (c.principal.empty()) return std::unexpected(std::string("no principal = in the agent configuration"));
    if (c.ca.empty()) return std::unexpected(std::string("no ca = in the agent configuration"));
    return c;
}

std::string format_agent_config(const AgentConfig& c) {
    std::string out = "# pwsync-agent configuration, written by pwsync-agent install\ngateway =";
    for (const auto& g : c.gateways) out += " " + g;
    out += "\nprincipal = " + c.principal + "\nca = " + c.ca + "\ntimeout = " + std::to_string(c.timeout) +
           "\nmax-age = " + std::to_string(c.max_age) +
           "\ntls-check = " + (c.pinned ? "pinned" : "system") + "\n";
    return out;
}

}  // namespace pwsync::win
