// The daemon's log: one line per event, with time and level, on stderr or in
// a file that SIGHUP reopens (for logrotate). Never given a password.
#pragma once

#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>

namespace pwsync::gateway {

enum class LogLevel { debug, info, warning, error };

class Log {
public:
    static Log& instance();
    // `path` empty: stderr.
    bool open(const std::string& path, LogLevel level);
    void reopen();
    void set_level(LogLevel level) { level_ = level; }
    void write(LogLevel level, std::string_view line);
    ~Log();

private:
    Log() = default;
    std::mutex mutex_;
    std::FILE* file_ = nullptr;
    std::string path_;
    LogLevel level_ = LogLevel::info;
};

bool parse_log_level(std::string_view text, LogLevel& out);

inline void log_debug(std::string_view l) { Log::instance().write(LogLevel::debug, l); }
inline void log_info(std::string_view l) { Log::instance().write(LogLevel::info, l); }
inline void log_warning(std::string_view l) { Log::instance().write(LogLevel::warning, l); }
inline void log_error(std::string_view l) { Log::instance().write(LogLevel::error, l); }

}  // namespace pwsync::gateway
