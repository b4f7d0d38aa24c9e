#include "install.h"

#include <windows.h>
#include <sddl.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "winutil.h"

namespace pwsync::win {
namespace {

constexpr const wchar_t* kEventKey = L"SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\pwsync";

int failed(const std::string& what) {
    std::fprintf(stderr, "pwsync-agent: error: %s\n", what.c_str());
    return 1;
}

std::wstring own_path() {
    wchar_t buf[MAX_PATH];
    const DWORD n = GetModuleFileNameW(nullptr, buf, MAX_PATH);
    return std::wstring(buf, n);
}

// SYSTEM and Administrators only: the spool and the sealed secret are
// nobody else's business (DPAPI machine scope alone would let any local
// process unseal).
bool make_private_dir(const std::wstring& dir) {
    SECURITY_ATTRIBUTES sa{sizeof sa, nullptr, FALSE};
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(L"D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)", SDDL_REVISION_1,
                                                              &sa.lpSecurityDescriptor, nullptr))
        return false;
    const BOOL ok = CreateDirectoryW(dir.c_str(), &sa) || GetLastError() == ERROR_ALREADY_EXISTS;
    LocalFree(sa.lpSecurityDescriptor);
    return ok;
}

std::vector<std::wstring> read_packages(HKEY key) {
    std::vector<std::wstring> out;
    DWORD type = 0, size = 0;
    if (RegQueryValueExW(key, L"Notification Packages", nullptr, &type, nullptr, &size) != ERROR_SUCCESS ||
        type != REG_MULTI_SZ)
        return out;
    std::vector<wchar_t> buf(size / sizeof(wchar_t) + 2, L'\0');
    if (RegQueryValueExW(key, L"Notification Packages", nullptr, &type, reinterpret_cast<BYTE*>(buf.data()), &size) !=
        ERROR_SUCCESS)
        return out;
    for (const wchar_t* p = buf.data(); *p != L'\0'; p += wcslen(p) + 1) out.emplace_back(p);
    return out;
}

}  // namespace

std::string join_packages(const std::vector<std::wstring>& packages) {
    std::string out;
    for (const auto& p : packages) out += (out.empty() ? "" : " ") + narrow(p);
    return out.empty() ? "(empty)" : out;
}

std::string lsa_protection() {
    DWORD v = 0, size = sizeof v;
    if (RegGetValueW(HKEY_LOCAL_MACHINE, kLsaKey, L"RunAsPPL", RRF_RT_REG_DWORD, nullptr, &v, &size) != ERROR_SUCCESS || v == 0)
        return "";
    return "LSA protection is on (HKLM\\" + narrow(kLsaKey) + " RunAsPPL = " + std::to_string(v) +
           "): lsass then loads only notification packages signed for protected processes, and pwsyncflt.dll is "
           "not, so capture would never run on this DC";
}

PackageList package_list() {
    PackageList l;
    HKEY key = nullptr;
    if (RegOpenKeyExW(HKEY_LOCAL_MACHINE, kLsaKey, 0, KEY_QUERY_VALUE, &key) != ERROR_SUCCESS) return l;
    DWORD type = 0;
    l.exists = RegQueryValueExW(key, L"Notification Packages", nullptr, &type, nullptr, nullptr) == ERROR_SUCCESS;
    l.type = type;
    l.packages = read_packages(key);
    RegCloseKey(key);
    return l;
}

bool listed(const PackageList& l) {
    return std::any_of(l.packages.begin(), l.packages.end(), [](const auto& p) { return _wcsicmp(p.c_str(), kPackage) == 0; });
}

namespace {

LSTATUS write_packages(HKEY key, const std::vector<std::wstring>& packages) {
    std::vector<wchar_t> buf;
    for (const auto& p : packages) {
        buf.insert(buf.end(), p.begin(), p.end());
        buf.push_back(L'\0');
    }
    buf.push_back(L'\0');
    return RegSetValueExW(key, L"Notification Packages", 0, REG_MULTI_SZ, reinterpret_cast<const BYTE*>(buf.data()),
                          static_cast<DWORD>(buf.size() * sizeof(wchar_t)));
}

// What would stop capture, found before install changes anything: a refusal
// (nothing is changed) or warnings (install goes on and says them).
struct Preflight {
    std::string refuse;
    std::vector<std::string> warnings;
};

Preflight preflight() {
    Preflight p;
    if (auto ppl = lsa_protection(); !ppl.empty()) {
        p.refuse = ppl + ". Turn LSA protection off on this DC (and restart it) before installing";
        return p;
    }
    const PackageList l = package_list();
    if (l.exists && l.type != REG_MULTI_SZ) {
        // Rewriting it would drop what another product put there.
        p.refuse = "HKLM\\" + narrow(kLsaKey) + " Notification Packages is not a REG_MULTI_SZ (type " +
                   std::to_string(l.type) + "): LSA would not read it as a list, and rewriting it would lose its "
                   "content. Make it a REG_MULTI_SZ of the packages it should hold (usually scecli) first";
        return p;
    }
    const bool has_scecli = std::any_of(l.packages.begin(), l.packages.end(), [](const auto& x) { return _wcsicmp(x.c_str(), L"scecli") == 0; });
    if (!has_scecli)
        p.warnings.push_back("Notification Packages does not hold scecli, Windows' own package (it holds: " +
                             join_packages(l.packages) + "): another product's installer may have replaced the list. "
                             "pwsyncflt is added and every package there is kept; put scecli back unless you know "
                             "why it is gone");
    return p;
}

// Adds or removes pwsyncflt, keeping every other package in its place.
std::string set_package(bool present) {
    HKEY key = nullptr;
    LSTATUS rc = RegOpenKeyExW(HKEY_LOCAL_MACHINE, kLsaKey, 0, KEY_QUERY_VALUE | KEY_SET_VALUE, &key);
    if (rc != ERROR_SUCCESS) return "open HKLM\\" + narrow(kLsaKey) + ": " + last_error_text(static_cast<DWORD>(rc));
    auto packages = read_packages(key);
    std::vector<std::wstring> next;
    for (const auto& p : packages)
        if (_wcsicmp(p.c_str(), kPackage) != 0) next.push_back(p);
    if (present) next.emplace_back(kPackage);
    rc = next == packages ? ERROR_SUCCESS : write_packages(key, next);
    RegCloseKey(key);
    return rc == ERROR_SUCCESS ? "" : "write Notification Packages: " + last_error_text(static_cast<DWORD>(rc));
}

std::string register_event_source() {
    HKEY key = nullptr;
    LSTATUS rc = RegCreateKeyExW(HKEY_LOCAL_MACHINE, kEventKey, 0, nullptr, 0, KEY_SET_VALUE, nullptr, &key, nullptr);
    if (rc != ERROR_SUCCESS) return "create the event source: " + last_error_text(static_cast<DWORD>(rc));
    const std::wstring exe = own_path();
    const DWORD types = EVENTLOG_ERROR_TYPE | EVENTLOG_WARNING_TYPE | EVENTLOG_INFORMATION_TYPE;
    rc = RegSetValueExW(key, L"EventMessageFile", 0, REG_EXPAND_SZ, reinterpret_cast<const BYTE*>(exe.c_str()),
                        static_cast<DWORD>((exe.size() + 1) * sizeof(wchar_t)));
    if (rc == ERROR_SUCCESS)
        rc = RegSetValueExW(key, L"TypesSupported", 0, REG_DWORD, reinterpret_cast<const BYTE*>(&types), sizeof types);
    RegCloseKey(key);
    return rc == ERROR_SUCCESS ? "" : "write the event source: " + last_error_text(static_cast<DWORD>(rc));
}

std::string create_service() {
    SC_HANDLE scm = OpenSCManagerW(nullptr, nullptr, SC_MANAGER_CREATE_SERVICE);
    if (scm == nullptr) return "open the service manager: " + last_error_text(GetLastError());
    const std::wstring cmd = L"\"" + own_path() + L"\" run";
    SC_HANDLE svc = CreateServiceW(scm, kService, L"pwsync password capture agent", SERVICE_ALL_ACCESS,
                                   SERVICE_WIN32_OWN_PROCESS, SERVICE_AUTO_START, SERVICE_ERROR_NORMAL, cmd.c_str(),
                                   nullptr, nullptr, nullptr, nullptr, nullptr);
    std::string err;
    if (svc == nullptr && GetLastError() != ERROR_SERVICE_EXISTS) {
        err = "create the service: " + last_error_text(GetLastError());
    } else if (svc != nullptr) {
        // Restart after a crash: changes wait in the spool meanwhile.
        SC_ACTION actions[3] = {{SC_ACTION_RESTART, 5000}, {SC_ACTION_RESTART, 30000}, {SC_ACTION_RESTART, 60000}};
        SERVICE_FAILURE_ACTIONSW fa{86400, nullptr, nullptr, 3, actions};
        ChangeServiceConfig2W(svc, SERVICE_CONFIG_FAILURE_ACTIONS, &fa);
        CloseServiceHandle(svc);
    }
    CloseServiceHandle(scm);
    return err;
}

std::string delete_service() {
    SC_HANDLE scm = OpenSCManagerW(nullptr, nullptr, SC_MANAGER_CONNECT);
    if (scm == nullptr) return "open the service manager: " + last_error_text(GetLastError());
    std::string err;
    SC_HANDLE svc = OpenServiceW(scm, kService, SERVICE_STOP | DELETE);
    if (svc != nullptr) {
        SERVICE_STATUS st;
        ControlService(svc, SERVICE_CONTROL_STOP, &st);
        if (!DeleteService(svc) && GetLastError() != ERROR_SERVICE_MARKED_FOR_DELETE)
            err = "delete the service: " + last_error_text(GetLastError());
        CloseServiceHandle(svc);
    } else if (GetLastError() != ERROR_SERVICE_DOES_NOT_EXIST) {
        err = "open the service: " + last_error_text(GetLastError());
    }
    CloseServiceHandle(scm);
    return err;
}

std::wstring system_dll() {
    wchar_t buf[MAX_PATH];
    const UINT n = GetSystemDirectoryW(buf, MAX_PATH);
    return std::wstring(buf, n) + L"\\" + kPackage + L".dll";
}

std::string set_base_dir(const std::wstring& base) {
    HKEY key = nullptr;
    LSTATUS rc = RegCreateKeyExW(HKEY_LOCAL_MACHINE, kSettingsKey, 0, nullptr, 0, KEY_SET_VALUE, nullptr, &key, nullptr);
    if (rc == ERROR_SUCCESS) {
        rc = RegSetValueExW(key, L"Directory", 0, REG_SZ, reinterpret_cast<const BYTE*>(base.c_str()),
                            static_cast<DWORD>((base.size() + 1) * sizeof(wchar_t)));
        RegCloseKey(key);
    }
    return rc == ERROR_SUCCESS ? "" : "write HKLM\\SOFTWARE\\pwsync: " + last_error_text(static_cast<DWORD>(rc));
}

}  // namespace

int install(AgentConfig cfg, const SecretBytes& secret, const std::wstring& ca_file) {
    const Preflight pre = preflight();
    if (!pre.refuse.empty()) return failed(pre.refuse + ". Nothing was changed");
    for (const auto& w : pre.warnings) std::fprintf(stderr, "pwsync-agent: warning: %s\n", w.c_str());
    const std::wstring base = default_base_dir();
    if (auto err = set_base_dir(base); !err.empty()) return failed(err);
    if (!make_private_dir(base) || !make_private_dir(spool_dir()))
        return failed("create " + narrow(spool_dir()) + ": " + last_error_text(GetLastError()));
    const std::wstring ca = base + L"\\ca.pem";
    if (!CopyFileW(ca_file.c_str(), ca.c_str(), FALSE))
        return failed("copy " + narrow(ca_file) + ": " + last_error_text(GetLastError()));
    cfg.ca = narrow(ca);
    DpapiSealer sealer;
    auto sealed = sealer.seal(secret);
    if (!sealed) return failed("seal the secret: " + sealed.error());
    if (auto w = write_file_atomic(base, L"secret.bin", *sealed, true); !w) return failed(w.error());
    const std::string text = format_agent_config(cfg);
    if (auto w = write_file_atomic(base, L"agent.conf", Bytes(text.begin(), text.end()), true); !w) return failed(w.error());

    // The DLL goes where LSA looks for notification packages: System32.
    std::wstring here = own_path();
    here = here.substr(0, here.find_last_of(L'\\')) + L"\\" + kPackage + L".dll";
    if (!CopyFileW(here.c_str(), system_dll().c_str(), FALSE))
        return failed("copy " + narrow(here) + " to " + narrow(system_dll()) + ": " + last_error_text(GetLastError()));
    for (const std::string& err : {register_event_source(), create_service(), set_package(true)})
        if (!err.empty()) return failed(err);
    // `pwsync-agent status` says "not loaded since install" until lsass loads the package.
    set_time_value(kInstalledAt, filetime_now());
    std::printf("installed: service pwsync-agent, notification package pwsyncflt, event source pwsync, %s\n"
                "restart this domain controller: LSA loads notification packages only at boot\n",
                narrow(base).c_str());
    return 0;
}

int uninstall() {
    int rc = 0;
    for (const std::string& err : {set_package(false), delete_service()})
        if (!err.empty()) rc = failed(err);
    RegDeleteKeyW(HKEY_LOCAL_MACHINE, kEventKey);
    // lsass holds the DLL until the next boot.
    if (!DeleteFileW(system_dll().c_str()))
        MoveFileExW(system_dll().c_str(), nullptr, MOVEFILE_DELAY_UNTIL_REBOOT);
    DeleteFileW((base_dir() + L"\\secret.bin").c_str());
    HKEY key = nullptr;
    if (RegOpenKeyExW(HKEY_LOCAL_MACHINE, kSettingsKey, 0, KEY_SET_VALUE, &key) == ERROR_SUCCESS) {
        for (const wchar_t* v : {kInstalledAt, kPackageLoadedAt, kLastSpooledAt}) RegDeleteValueW(key, v);
        RegCloseKey(key);
    }
    RegDeleteKeyW(HKEY_LOCAL_MACHINE, kLoadedThisBootKey);
    std::printf("uninstalled; restart this domain controller to unload pwsyncflt.dll. Spooled changes not yet sent "
                "stay in %s\n", narrow(spool_dir()).c_str());
    return rc;
}

}  // namespace pwsync::win
