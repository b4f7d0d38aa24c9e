// Small Windows helpers shared by pwsyncflt.dll and pwsync-agent.exe.
#pragma once

#include <windows.h>

#include <expected>
#include <optional>
#include <string>

#include "spool_record.h"

namespace pwsync::win {

inline constexpr const wchar_t* kEventSource = L"pwsync";
inline constexpr const wchar_t* kSpoolEvent = L"Global\\pwsync-spool";

// Closes a HANDLE when it goes away.
class Handle {
public:
    Handle() = default;
    explicit Handle(HANDLE h) : h_(h == INVALID_HANDLE_VALUE ? nullptr : h) {}
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle() {
        if (h_ != nullptr) CloseHandle(h_);
    }
    HANDLE get() const { return h_; }
    explicit operator bool() const { return h_ != nullptr; }

private:
    HANDLE h_ = nullptr;
};

inline constexpr const wchar_t* kSettingsKey = L"SOFTWARE\\pwsync";

// The folder of the agent's configuration, log and spool: the "Directory"
// value of HKLM\SOFTWARE\pwsync, written by install, so that lsass, the service and a
// console agree (their environments do not: wine's services see another
// %ProgramData%); without it %ProgramData%\pwsync.
std::wstring base_dir();
std::wstring default_base_dir();
inline std::wstring spool_dir() { return base_dir() + L"\\spool"; }

std::wstring widen(const std::string& s);
std::string narrow(const std::wstring& s);
std::string last_error_text(DWORD e);

// Reports to the Application event log under the source "pwsync". Never
// given a password.
void report_event(WORD type, const std::wstring& text) noexcept;
// Allocates nothing: the one to use when memory has run out.
void report_event(WORD type, const wchar_t* text) noexcept;

// Unix seconds and FILETIME now.
std::uint64_t unix_now();
std::uint64_t filetime_now();
// "2026-11-30T19:40:00Z" (UTC) for a FILETIME.
std::string format_filetime(std::uint64_t ft);
// When this machine booted (FILETIME): now less the tick count.
std::uint64_t boot_filetime();

// Times kept as REG_QWORD FILETIMEs in HKLM\SOFTWARE\pwsync, for
// `pwsync-agent status`: when install last ran, when lsass last loaded
// the package (its InitializeChangeNotify), and when the package last
// spooled a change.
inline constexpr const wchar_t* kInstalledAt = L"InstalledAt";
inline constexpr const wchar_t* kPackageLoadedAt = L"PackageLoadedAt";
inline constexpr const wchar_t* kLastSpooledAt = L"LastSpooledAt";
// Allocates nothing and never throws: lsass calls it.
bool set_time_value(const wchar_t* name, std::uint64_t filetime) noexcept;
std::optional<std::uint64_t> time_value(const wchar_t* name);
// A volatile key (gone at every reboot) the package creates when lsass
// loads it: "loaded in this boot" without comparing clocks, which a time
// sync after boot can move (HKLM\SOFTWARE\pwsync\LoadedThisBoot).
inline constexpr const wchar_t* kLoadedThisBootKey = L"SOFTWARE\\pwsync\\LoadedThisBoot";
bool mark_loaded_this_boot() noexcept;
bool loaded_this_boot();

// DPAPI, machine scope: any process on this machine can unseal, nothing
// off it can; the key lives in the LSA, not in the binary.
class DpapiSealer final : public Sealer {
public:
    std::expected<Bytes, std::string> seal(const SecretBytes& plain) override;
    std::expected<SecretBytes, std::string> unseal(const Bytes& sealed) override;
};

// Writes `data` to dir\name atomically: a temporary file, flushed, then
// renamed into place, so that a reader never sees half an entry. Spool
// entries never replace a file; the agent's own files do.
std::expected<void, std::string> write_file_atomic(const std::wstring& dir, const std::wstring& name, const Bytes& data,
                                                   bool replace = false);
std::expected<Bytes, std::string> read_file(const std::wstring& path);

}  // namespace pwsync::win
