#include "log.h"

#include "pwsync/util.h"

namespace pwsync::gateway {

Log& Log::instance() {
    static Log log;
    return log;
}

Log::~Log() {
    if (file_ != nullptr && file_ != stderr) std::fclose(file_);
}

bool Log::open(const std::string& path, LogLevel level) {
    std::lock_guard lock(mutex_);
    level_ = level;
    path_ = path;
    if (path.empty()) {
        file_ = stderr;
        return true;
    }
    std::FILE* f = std::fopen(path.c_str(), "ae");
    if (f == nullptr) return false;
    if (file_ != nullptr && file_ != stderr) std::fclose(file_);
    file_ = f;
    return true;
}

void Log::reopen() {
    std::lock_guard lock(mutex_);
    if (path_.empty()) return;
    if (std::FILE* f = std::fopen(path_.c_str(), "ae")) {
        if (file_ != nullptr && file_ != stderr) std::fclose(file_);
        file_ = f;
    }
}

void Log::write(LogLevel level, std::string_view raw) {
    if (level < level_) return;
    // Names in a line may come from a peer: no forged lines, no terminal codes.
    std::string line;
    line.reserve(raw.size());
    for (unsigned char c : raw) {
        if (c < 0x20 || c == 0x7f) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\x%02x", c);
            line += esc;
        } else {
            line.push_back(static_cast<char>(c));
        }
    }
    static constexpr const char* names[] = {"debug", "info", "warning", "error"};
    const std::string stamp = format_iso8601(std::chrono::system_clock::now());
    std::lock_guard lock(mutex_);
    std::FILE* f = file_ != nullptr ? file_ : stderr;
    std::fprintf(f, "%s pwsyncd %s: %.*s\n", stamp.c_str(), names[static_cast<int>(level)], static_cast<int>(line.size()),
                 line.data());
    std::fflush(f);
}

bool parse_log_level(std::string_view text, LogLevel& out) {
    if (text == "debug") out = LogLevel::debug;
    else if (text == "info") out = LogLevel::info;
    else if (text == "warning") out = LogLevel::warning;
    else if (text == "error") out = LogLevel::error;
    else return false;
    return true;
}

}  // namespace pwsync::gateway
