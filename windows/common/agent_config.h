// pwsync-agent's configuration file (agent.conf next to the spool), written
// by `pwsync-agent install` and read by the service:
//   gateway = ldaps://gw1.example:636 ldaps://gw2.example:636
//   principal = dc-win1
//   ca = C:\ProgramData\pwsync\ca.pem
//   timeout = 5          seconds per connection and request
//   max-age = 0          seconds; 0 = keep retrying a change forever
//   tls-check = pinned   pinned: the gateway's certificate must be issued by
//                        `ca` (checked by the agent); system: the LDAP
//                        client's own check against the machine's trust store
// The principal's secret is not in it: it is in secret.bin, sealed.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace pwsync::win {

struct GatewayUri {
    std::string host;
    std::uint16_t port = 636;
};

struct AgentConfig {
    std::vector<std::string> gateways;
    std::string principal;
    std::string ca;
    unsigned timeout = 5;
    std::uint64_t max_age = 0;
    bool pinned = true;
};

// Only ldaps:// : the agent never sends a password before TLS is up.
std::expected<GatewayUri, std::string> parse_gateway_uri(std::string_view uri);
std::expected<AgentConfig, std::string> parse_agent_config(std::string_view text);
std::string format_agent_config(const AgentConfig& c);

}  // namespace pwsync::win
