#include "winutil.h"

#include <wincrypt.h>

#include <cstdio>

namespace pwsync::win {

std::wstring base_dir() {
    wchar_t reg[MAX_PATH];
    DWORD size = sizeof reg;
    if (RegGetValueW(HKEY_LOCAL_MACHINE, kSettingsKey, L"Directory", RRF_RT_REG_SZ, nullptr, reg, &size) == ERROR_SUCCESS &&
        reg[0] != L'\0')
        return reg;
    return default_base_dir();
}

std::wstring default_base_dir() {
    wchar_t buf[MAX_PATH];
    const DWORD n = ExpandEnvironmentStringsW(L"%ProgramData%\\pwsync", buf, MAX_PATH);
    if (n == 0 || n > MAX_PATH || buf[0] == L'%') return L"C:\\ProgramData\\pwsync";
    return buf;
}

std::wstring widen(const std::string& s) {
    if (s.empty()) return {};
    const int n = MultiByteToWideChar(CP_UTF8, 0, s.data(), static_cast<int>(s.size()), nullptr, 0);
    std::wstring w(static_cast<std::size_t>(n), L'\0');
    MultiByteToWideChar(CP_UTF8, 0, s.data(), static_cast<int>(s.size()), w.data(), n);
    return w;
}

std::string narrow(const std::wstring& w) {
    if (w.empty()) return {};
    const int n = WideCharToMultiByte(CP_UTF8, 0, w.data(), static_cast<int>(w.size()), nullptr, 0, nullptr, nullptr);
    std::string s(static_cast<std::size_t>(n), '\0');
    WideCharToMultiByte(CP_UTF8, 0, w.data(), static_cast<int>(w.size()), s.data(), n, nullptr, nullptr);
    return s;
}

std::string last_error_text(DWORD e) {
    char buf[256] = {0};
    const DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr, e, 0, buf,
                                   sizeof buf, nullptr);
    std::string s(buf, n);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == '.')) s.pop_back();
    return "error " + std::to_string(e) + (s.empty() ? "" : " (" + s + ")");
}

void report_event(WORD type, const std::wstring& text) noexcept {
    report_event(type, text.c_str());
}

void report_event(WORD type, const wchar_t* text) noexcept {
    HANDLE h = RegisterEventSourceW(nullptr, kEventSource);
    if (h == nullptr) return;
    const wchar_t* strings[1] = {text};
    // Event id 1 is "%1" in the message table of pwsync-agent.exe.
    ReportEventW(h, type, 0, 1, nullptr, 1, 0, strings, nullptr);
    DeregisterEventSource(h);
}

std::uint64_t filetime_now() {
    FILETIME ft;
    GetSystemTimeAsFileTime(&ft);
    return (static_cast<std::uint64_t>(ft.dwHighDateTime) << 32) | ft.dwLowDateTime;
}

std::uint64_t unix_now() {
    constexpr std::uint64_t kEpochDiff = 116444736000000000ULL;  // 1601 -> 1970 in 100 ns
    const auto ft = filetime_now();
    return ft > kEpochDiff ? (ft - kEpochDiff) / 10000000ULL : 0;
}

std::string format_filetime(std::uint64_t ft) {
    FILETIME f{static_cast<DWORD>(ft & 0xffffffffULL), static_cast<DWORD>(ft >> 32)};
    SYSTEMTIME st{};
    if (!FileTimeToSystemTime(&f, &st)) return "(invalid time " + std::to_string(ft) + ")";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04u-%02u-%02uT%02u:%02u:%02uZ", st.wYear, st.wMonth, st.wDay, st.wHour, st.wMinute,
                  st.wSecond);
    return buf;
}

std::uint64_t boot_filetime() {
    const std::uint64_t up = GetTickCount64() * 10000ULL;  // ms -> 100 ns
    const std::uint64_t now = filetime_now();
    return now > up ? now - up : 0;
}

bool set_time_value(const wchar_t* name, std::uint64_t filetime) noexcept {
    HKEY key = nullptr;
    if (RegCreateKeyExW(HKEY_LOCAL_MACHINE, kSettingsKey, 0, nullptr, 0, KEY_SET_VALUE, nullptr, &key, nullptr) !=
        ERROR_SUCCESS)
        return false;
    const LSTATUS rc = RegSetValueExW(key, name, 0, REG_QWORD, reinterpret_cast<const BYTE*>(&filetime), sizeof filetime);
    RegCloseKey(key);
    return rc == ERROR_SUCCESS;
}

bool mark_loaded_this_boot() noexcept {
    HKEY key = nullptr;
    if (RegCreateKeyExW(HKEY_LOCAL_MACHINE, kLoadedThisBootKey, 0, nullptr, REG_OPTION_VOLATILE, KEY_SET_VALUE, nullptr,
                        &key, nullptr) != ERROR_SUCCESS)
        return false;
    RegCloseKey(key);
    return true;
}

bool loaded_this_boot() {
    HKEY key = nullptr;
    if (RegOpenKeyExW(HKEY_LOCAL_MACHINE, kLoadedThisBootKey, 0, KEY_QUERY_VALUE, &key) != ERROR_SUCCESS) return false;
    RegCloseKey(key);
    return true;
}

std::optional<std::uint64_t> time_value(const wchar_t* name) {
    std::uint64_t v = 0;
    DWORD size = sizeof v;
    if (RegGetValueW(HKEY_LOCAL_MACHINE, kSettingsKey, name, RRF_RT_REG_QWORD, nullptr, &v, &size) != ERROR_SUCCESS)
        return std::nullopt;
    return v;
}

std::expected<Bytes, std::string> DpapiSealer::seal(const SecretBytes& plain) {
    DATA_BLOB in{static_cast<DWORD>(plain.size()), const_cast<BYTE*>(plain.data())};
    DATA_BLOB out{};
    if (!CryptProtectData(&in, L"pwsync", nullptr, nullptr, nullptr,
                          CRYPTPROTECT_LOCAL_MACHINE | CRYPTPROTECT_UI_FORBIDDEN, &out))
        return std::unexpected("CryptProtectData: " + last_error_text(GetLastError()));
    Bytes sealed(out.pbData, out.pbData + out.cbData);
    LocalFree(out.pbData);
    return sealed;
}

std::expected<SecretBytes, std::string> DpapiSealer::unseal(const Bytes& sealed) {
    DATA_BLOB in{static_cast<DWORD>(sealed.size()), const_cast<BYTE*>(sealed.data())};
    DATA_BLOB out{};
    if (!CryptUnprotectData(&in, nullptr, nullptr, nullptr, nullptr, CRYPTPROTECT_UI_FORBIDDEN, &out))
        return std::unexpected("CryptUnprotectData: " + last_error_text(GetLastError()));
    SecretBytes plain;
    plain.bytes().reserve(out.cbData);
    plain.append(out.pbData, out.cbData);
    SecureZeroMemory(out.pbData, out.cbData);
    LocalFree(out.pbData);
    return plain;
}

std::expected<void, std::string> write_file_atomic(const std::wstring& dir, const std::wstring& name, const Bytes& data,
                                                   bool replace) {
    const std::wstring tmp = dir + L"\\" + name + L".tmp", final_path = dir + L"\\" + name;
    {
        Handle f(CreateFileW(tmp.c_str(), GENERIC_WRITE, 0, nullptr, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, nullptr));
        if (!f) return std::unexpected("create " + narrow(tmp) + ": " + last_error_text(GetLastError()));
        DWORD written = 0;
        if (!WriteFile(f.get(), data.data(), static_cast<DWORD>(data.size()), &written, nullptr) ||
            written != data.size() || !FlushFileBuffers(f.get())) {
            const DWORD e = GetLastError();
            DeleteFileW(tmp.c_str());
            return std::unexpected("write " + narrow(tmp) + ": " + last_error_text(e));
        }
    }
    if (!MoveFileExW(tmp.c_str(), final_path.c_str(), MOVEFILE_WRITE_THROUGH | (replace ? MOVEFILE_REPLACE_EXISTING : 0))) {
        const DWORD e = GetLastError();
        DeleteFileW(tmp.c_str());
        return std::unexpected("rename to " + narrow(final_path) + ": " + last_error_text(e));
    }
    return {};
}

std::expected<Bytes, std::string> read_file(const std::wstring& path) {
    Handle f(CreateFileW(path.c_str(), GENERIC_READ, FILE_SHARE_READ, nullptr, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr));
    if (!f) return std::unexpected("open " + narrow(path) + ": " + last_error_text(GetLastError()));
    LARGE_INTEGER size{};
    if (!GetFileSizeEx(f.get(), &size) || size.QuadPart > 1024 * 1024)
        return std::unexpected("size of " + narrow(path) + ": too large or unknown");
    Bytes b(static_cast<std::size_t>(size.QuadPart));
    DWORD got = 0;
    if (!b.empty() && (!ReadFile(f.get(), b.data(), static_cast<DWORD>(b.size()), &got, nullptr) || got != b.size()))
        return std::unexpected("read " + narrow(path) + ": " + last_error_text(GetLastError()));
    return b;
}

}  // namespace pwsync::win
