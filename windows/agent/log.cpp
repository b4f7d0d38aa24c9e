#include "log.h"

#include <cstdio>

#include "winutil.h"

namespace pwsync::win {
namespace {
bool g_console = false;
}

void log_to_console(bool on) {
    g_console = on;
}

void log(Level level, const std::string& text) {
    SYSTEMTIME t;
    GetSystemTime(&t);
    char stamp[32];
    std::snprintf(stamp, sizeof stamp, "%04u-%02u-%02uT%02u:%02u:%02uZ", t.wYear, t.wMonth, t.wDay, t.wHour, t.wMinute,
                  t.wSecond);
    const char* tag = level == Level::error ? "error" : level == Level::warning ? "warning" : "info";
    const std::string line = std::string(stamp) + " " + tag + ": " + text + "\n";
    if (g_console) std::fputs(("pwsync-agent: " + std::string(tag) + ": " + text + "\n").c_str(), stderr);
    const std::wstring path = base_dir() + L"\\agent.log";
    Handle f(CreateFileW(path.c_str(), FILE_APPEND_DATA, FILE_SHARE_READ | FILE_SHARE_WRITE, nullptr, OPEN_ALWAYS,
                         FILE_ATTRIBUTE_NORMAL, nullptr));
    if (f) {
        DWORD n = 0;
        WriteFile(f.get(), line.data(), static_cast<DWORD>(line.size()), &n, nullptr);
    }
    if (level != Level::info)
        report_event(level == Level::error ? EVENTLOG_ERROR_TYPE : EVENTLOG_WARNING_TYPE, widen("pwsync-agent: " + text));
}

}  // namespace pwsync::win
