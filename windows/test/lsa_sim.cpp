// pwsync-lsa-sim.exe DLL: plays lsass for the wine test. Loads the
// notification package, calls InitializeChangeNotify, then PasswordFilter
// and PasswordChangeNotify for every "account<TAB>new password" line on
// stdin (passwords never in argv). Exit 0 when every call behaved.
#include <windows.h>
#include <ntsecapi.h>

#include <cstdio>
#include <string>

#include "winutil.h"

using pwsync::win::widen;

using Init = BOOLEAN(NTAPI*)();
using Filter = BOOLEAN(NTAPI*)(PUNICODE_STRING, PUNICODE_STRING, PUNICODE_STRING, BOOLEAN);
using Notify = NTSTATUS(NTAPI*)(PUNICODE_STRING, ULONG, PUNICODE_STRING);

namespace {

UNICODE_STRING ustr(std::wstring& w) {
    return {static_cast<USHORT>(w.size() * sizeof(wchar_t)), static_cast<USHORT>(w.size() * sizeof(wchar_t)), w.data()};
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: pwsync-lsa-sim PATH\\pwsyncflt.dll <lines of account TAB password\n");
        return 2;
    }
    HMODULE dll = LoadLibraryA(argv[1]);
    if (dll == nullptr) {
        std::fprintf(stderr, "lsa-sim: LoadLibrary %s failed: %lu\n", argv[1], GetLastError());
        return 1;
    }
    auto init = reinterpret_cast<Init>(reinterpret_cast<void*>(GetProcAddress(dll, "InitializeChangeNotify")));
    auto filter = reinterpret_cast<Filter>(reinterpret_cast<void*>(GetProcAddress(dll, "PasswordFilter")));
    auto notify = reinterpret_cast<Notify>(reinterpret_cast<void*>(GetProcAddress(dll, "PasswordChangeNotify")));
    if (init == nullptr || filter == nullptr || notify == nullptr) {
        std::fprintf(stderr, "lsa-sim: an export is missing\n");
        return 1;
    }
    if (!init()) {
        std::fprintf(stderr, "lsa-sim: InitializeChangeNotify returned FALSE\n");
        return 1;
    }
    int rc = 0, n = 0;
    char line[1024];
    while (std::fgets(line, sizeof line, stdin) != nullptr) {
        std::string l(line);
        SecureZeroMemory(line, sizeof line);
        while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.pop_back();
        const auto tab = l.find('\t');
        if (tab == std::string::npos) continue;
        std::wstring account = widen(l.substr(0, tab)), password = widen(l.substr(tab + 1)), full = L"Test User";
        SecureZeroMemory(l.data(), l.size());
        UNICODE_STRING a = ustr(account), p = ustr(password), f = ustr(full);
        if (!filter(&a, &f, &p, FALSE)) {
            std::fprintf(stderr, "lsa-sim: PasswordFilter refused a password\n");
            rc = 1;
        }
        if (notify(&a, 1000 + static_cast<ULONG>(n), &p) != 0) rc = 1;
        SecureZeroMemory(password.data(), password.size() * sizeof(wchar_t));
        ++n;
    }
    FreeLibrary(dll);
    std::printf("lsa-sim: %d change(s) notified\n", n);
    return rc;
}
