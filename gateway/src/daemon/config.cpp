#include "config.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace pwsync::gateway {
namespace {

Result<std::uint64_t> number(const std::string& key, const std::string& value, std::uint64_t min, std::uint64_t max) {
    std::uint64_t n = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc{} || end != value.data() + value.size() || n < min || n > max)
        return fail(Errc::invalid_argument, key + " = " + value + ": expected a whole number from " + std::to_string(min) +
                                                " to " + std::to_string(max));
    return n;
}

}  // namespace

Result<DaemonConfig> load_config(const std::string& path) {
    PWSYNC_ASSIGN(auto entries, read_ini(path));
    DaemonConfig c;
    std::vector<IniEntry> directories;
    for (const auto& [section, name, value] : entries) {
        const std::string key = section.empty() ? name : section + "." + name;
        auto bad = [&](const std::string& why) { return fail(Errc::invalid_argument, path + ": " + key + ": " + why); };
        if (section.empty()) {
            if (name == "store") c.store = value;
            else if (name == "key") c.key = value;
            else return bad("unknown key");
        } else if (section == "listen") {
            if (name == "uri") { for (auto& u : split_words(value)) c.listen_uris.push_back(u); }
            else if (name == "cert") c.cert = value;
            else if (name == "key") c.cert_key = value;
            else if (name == "client-ca") c.client_ca = value;
            else if (name == "max-connections") { PWSYNC_ASSIGN(c.max_connections, number(key, value, 1, 100000)); }
            else if (name == "max-connections-per-address") {
                PWSYNC_ASSIGN(c.max_connections_per_address, number(key, value, 1, 100000));
            } else if (name == "max-message-size") { PWSYNC_ASSIGN(c.max_message_size, number(key, value, 1024, 16 << 20)); }
            else if (name == "idle-timeout") {
                PWSYNC_ASSIGN(auto s, number(key, value, 1, 86400));
                c.idle_timeout = std::chrono::seconds(s);
            } else return bad("unknown key");
        } else if (section == "directory" || section.starts_with("directory ")) {
            directories.push_back({section, name, value});
        } else if (section == "gateway") {
            if (name == "pending-ttl") {
                PWSYNC_ASSIGN(auto s, number(key, value, 1, 86400));
                c.pending_ttl = std::chrono::seconds(s);
            } else if (name == "damping-window") {
                PWSYNC_ASSIGN(auto s, number(key, value, 0, 86400));
                c.damping_window = std::chrono::seconds(s);
            } else if (name == "workers") {
                PWSYNC_ASSIGN(c.workers, number(key, value, 1, 256));
            } else if (name == "ad-retry-count") {
                PWSYNC_ASSIGN(auto n, number(key, value, 0, 1000));
                c.ad_retry_count = static_cast<std::uint32_t>(n);
            } else if (name == "ad-retry-delay") {
                PWSYNC_ASSIGN(auto s, number(key, value, 1, 86400));
                c.ad_retry_delay = std::chrono::seconds(s);
            } else if (name == "name") {
                if (value.empty() || value.size() > 64 ||
                    !std::all_of(value.begin(), value.end(), [](unsigned char ch) { return std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.'; }))
                    return bad("expected 1 to 64 letters, digits, '-', '_' or '.'");
                c.name = value;
            } else if (name == "rule-interval") {
                PWSYNC_ASSIGN(auto s, number(key, value, 0, 86400));
                c.rule_interval = std::chrono::seconds(s);
            } else if (name == "failover-timeout") {
                PWSYNC_ASSIGN(auto s, number(key, value, 3, 300));
                c.failover_timeout = std::chrono::seconds(s);
            } else if (name == "ad-max-age") {
                PWSYNC_ASSIGN(auto s, number(key, value, 60, 30 * 86400));
                c.ad_max_age = std::chrono::seconds(s);
            } else return bad("unknown key");
        } else if (section == "monitor") {
            if (name == "http") c.metrics_http = value;
            else return bad("unknown key");
        } else if (section == "log") {
            if (name == "level") {
                if (!parse_log_level(value, c.log_level)) return bad("expected debug, info, warning or error");
            } else if (name == "file") c.log_file = value;
            else return bad("unknown key");
        } else {
            return fail(Errc::invalid_argument, path + ": unknown section [" + section + "]");
        }
    }
    if (c.store.empty()) return fail(Errc::invalid_argument, path + ": store = DIR is missing");
    if (c.listen_uris.empty()) return fail(Errc::invalid_argument, path + ": [listen] uri is missing");
    if (c.cert.empty() || c.cert_key.empty()) return fail(Errc::invalid_argument, path + ": [listen] cert and key are required");
    auto dirs = directory::parse_directories(directories);
    if (!dirs) return fail(dirs.error().code, path + ": " + dirs.error().message);
    c.directories = std::move(*dirs);
    return c;
}

}  // namespace pwsync::gateway
