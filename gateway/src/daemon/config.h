// pwsyncd.conf: an INI file read with Boost.Program_options.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "log.h"
#include "pwsync/directory.h"
#include "pwsync/ini.h"
#include "pwsync/util.h"

namespace pwsync::gateway {

struct DaemonConfig {
    std::string store;           // store =
    std::string key;             // key = (empty: <store>/master.key)
    // [listen]
    std::vector<std::string> listen_uris;   // uri = (space-separated)
    std::string cert, cert_key, client_ca;  // cert = / key = / client-ca =
    std::size_t max_connections = 1024;
    std::size_t max_connections_per_address = 256;
    std::size_t max_message_size = 64 * 1024;
    std::chrono::seconds idle_timeout{60};
    // [directory], or one [directory NAME] per domain; empty: none.
    std::vector<directory::Settings> directories;
    // [gateway]
    std::chrono::seconds pending_ttl{120};
    std::chrono::seconds damping_window{600};
    std::size_t workers = 4;
    // The built-in AD writer "@windows" (full sync writes queued while AD
    // cannot be reached): retries, first delay, and how long a write may wait.
    std::uint32_t ad_retry_count = 5;
    std::chrono::seconds ad_retry_delay{60};
    std::chrono::seconds ad_max_age{86400};
    // Several gateways on one PostgreSQL store (docs/HA.md): this gateway's
    // name in `pwsync status` (empty: the host name), and how soon a dead,
    // hung or cut-off active gateway is replaced.
    std::string name;
    std::chrono::seconds failover_timeout{15};
    // Mapping rules: how often the active gateway looks whether the
    // directory (or a rule) changed, and if so applies the rules; 0: never
    // (rule apply by hand only).
    std::chrono::seconds rule_interval{10};
    // [monitor]
    std::string metrics_http;    // http = 127.0.0.1:PORT (loopback only); empty: no /metrics
    // [log]
    LogLevel log_level = LogLevel::info;
    std::string log_file;        // empty: stderr
};

// Unknown sections or keys, and bad values, are errors naming the key.
Result<DaemonConfig> load_config(const std::string& path);



}  // namespace pwsync::gateway
