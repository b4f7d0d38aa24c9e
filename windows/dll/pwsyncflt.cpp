// pwsyncflt.dll: the LSA notification package. lsass calls it on every
// password change on this DC. It does the least it can: seal the change with
// DPAPI, write it to the spool as one file, signal pwsync-agent, wipe. No
// network, no waiting on anything but the local disk; every failure is
// reported to the event log and never stops the password change.
#include <windows.h>
#include <ntsecapi.h>

#include <atomic>

#include "spool_record.h"
#ifdef PWSYNC_DLL_FAIL_ALLOCATIONS
#include "fail_allocations.h"
#endif
#include "winutil.h"

using namespace pwsync::win;

namespace {

std::atomic<std::uint32_t> g_counter{0};

std::expected<void, std::string> capture(const UNICODE_STRING& user, const UNICODE_STRING& password) {
    if (user.Buffer == nullptr || user.Length == 0) return std::unexpected(std::string("no account name"));
    if (password.Buffer == nullptr && password.Length != 0) return std::unexpected(std::string("no password buffer"));
    SecretBytes plain = encode_change(reinterpret_cast<const std::uint8_t*>(user.Buffer), user.Length,
                                      reinterpret_cast<const std::uint8_t*>(password.Buffer), password.Length);
    DpapiSealer sealer;
    auto sealed = sealer.seal(plain);
    plain.clear();
    if (!sealed) return std::unexpected(sealed.error());
    const Bytes record = encode_record({unix_now(), std::move(*sealed)});
    const std::wstring name = widen(entry_name(filetime_now(), ++g_counter, GetCurrentProcessId()));
    if (auto w = write_file_atomic(spool_dir(), name, record); !w) return w;
    set_time_value(kLastSpooledAt, filetime_now());  // for `pwsync-agent status`; a failure here loses nothing
    // The agent may not be running: the entry waits in the spool.
    if (HANDLE ev = OpenEventW(EVENT_MODIFY_STATE, FALSE, kSpoolEvent)) {
        SetEvent(ev);
        CloseHandle(ev);
    }
    return {};
}

std::wstring account_of(const UNICODE_STRING* user) {
    if (user == nullptr || user->Buffer == nullptr) return L"?";
    return std::wstring(user->Buffer, user->Length / sizeof(wchar_t));
}

}  // namespace

extern "C" {

// Nothing may leave these exports as an exception: it would unwind into
// lsass and take the DC down. Each is noexcept and catches everything.
__declspec(dllexport) BOOLEAN NTAPI InitializeChangeNotify() noexcept {
    // `pwsync-agent status` compares this with the boot and install times:
    // the field's most common silent failure is a package never loaded.
    set_time_value(kPackageLoadedAt, filetime_now());
    mark_loaded_this_boot();
#ifdef PWSYNC_DLL_FAIL_ALLOCATIONS
    pwsync::win::test::fail_allocations();
#endif
    return TRUE;
}

// pwsync judges no password: AD's own policy does.
__declspec(dllexport) BOOLEAN NTAPI PasswordFilter(PUNICODE_STRING, PUNICODE_STRING, PUNICODE_STRING, BOOLEAN) noexcept {
    return TRUE;
}

__declspec(dllexport) NTSTATUS NTAPI PasswordChangeNotify(PUNICODE_STRING user, ULONG, PUNICODE_STRING password) noexcept {
    try {
        std::expected<void, std::string> r = (user != nullptr && password != nullptr)
                                                  ? capture(*user, *password)
                                                  : std::unexpected(std::string("called without account or password"));
        if (!r) {
            report_event(EVENTLOG_ERROR_TYPE, L"pwsync: the password change of " + account_of(user) +
                                                  L" was not spooled and will not reach the gateway: " + widen(r.error()));
        }
    } catch (...) {
        // Out of memory or the like: lsass must go on. A literal, no
        // std::wstring: building one could throw again, out of the export.
        report_event(EVENTLOG_ERROR_TYPE,
                     L"pwsync: the password change of an account was not spooled and will not reach the gateway "
                     L"(out of memory or internal error)");
    }
    return 0;  // STATUS_SUCCESS: the value is ignored by LSA either way
}

}  // extern "C"
