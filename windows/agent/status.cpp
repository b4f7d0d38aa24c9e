#include "status.h"

#include <windows.h>

#include <cstdio>
#include <string>
#include <vector>

#include "install.h"
#include "winutil.h"

namespace pwsync::win {
namespace {

// "3", or why the folder could not be read (not run as an administrator).
std::string count_entries(const std::wstring& dir) {
    WIN32_FIND_DATAW d;
    HANDLE h = FindFirstFileW((dir + L"\\*.pws").c_str(), &d);
    if (h == INVALID_HANDLE_VALUE) {
        const DWORD e = GetLastError();
        if (e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND) return "0";
        return "unknown (" + last_error_text(e) + ")";
    }
    std::size_t n = 0;
    do {
        if ((d.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) == 0) ++n;
    } while (FindNextFileW(h, &d));
    FindClose(h);
    return std::to_string(n);
}

// "running", "stopped", … or "not installed".
std::string service_state(bool& running) {
    running = false;
    SC_HANDLE scm = OpenSCManagerW(nullptr, nullptr, SC_MANAGER_CONNECT);
    if (scm == nullptr) return "unknown (" + last_error_text(GetLastError()) + ")";
    SC_HANDLE svc = OpenServiceW(scm, kService, SERVICE_QUERY_STATUS);
    std::string state = "not installed";
    if (svc != nullptr) {
        SERVICE_STATUS st{};
        if (!QueryServiceStatus(svc, &st)) state = "unknown (" + last_error_text(GetLastError()) + ")";
        else if (st.dwCurrentState == SERVICE_RUNNING) state = "running", running = true;
        else if (st.dwCurrentState == SERVICE_STOPPED) state = "stopped";
        else state = "starting or stopping (state " + std::to_string(st.dwCurrentState) + ")";
        CloseServiceHandle(svc);
    }
    CloseServiceHandle(scm);
    return state;
}

std::string when(const std::optional<std::uint64_t>& ft) { return ft ? format_filetime(*ft) : "never"; }

}  // namespace

int status() {
    std::vector<std::string> problems;
    const PackageList list = package_list();
    const bool is_listed = listed(list);
    if (list.exists && list.type != REG_MULTI_SZ) {
        std::printf("notification packages: not a list (registry type %lu)\n", static_cast<unsigned long>(list.type));
        problems.push_back("Notification Packages is not a REG_MULTI_SZ: LSA does not read it as a list; make it one "
                           "(usually scecli), then run pwsync-agent install");
    } else {
        std::printf("notification packages: %s\n", join_packages(list.packages).c_str());
        if (!is_listed) problems.push_back("pwsyncflt is not in Notification Packages: run pwsync-agent install");
    }

    // The registry value: lsass runs protected from the boot after it was set.
    const std::string ppl = lsa_protection();
    std::printf("lsa protection:        %s\n", ppl.empty() ? "off" : "ON (RunAsPPL set; in force from the boot after it was set)");
    if (!ppl.empty()) problems.push_back(ppl);

    const auto installed = time_value(kInstalledAt), loaded = time_value(kPackageLoadedAt),
               spooled = time_value(kLastSpooledAt);
    const std::uint64_t boot = boot_filetime();
    std::printf("installed:             %s\n", when(installed).c_str());
    std::printf("last boot:             %s\n", format_filetime(boot).c_str());
    // lsass loads notification packages once, at boot: the package marks
    // the boot with a volatile key (no clock comparison, which a time sync
    // after boot could upset); a load before the last install is an older
    // copy of the package, not the one installed.
    const bool loaded_now = loaded_this_boot() && loaded && (!installed || *loaded >= *installed);
    std::printf("loaded by lsass:       %s%s\n", when(loaded).c_str(),
                !loaded ? "" : loaded_now ? " (this boot)" : " (not since the last boot or install)");
    if (is_listed && !loaded_now)
        problems.push_back(installed && (!loaded || *loaded < *installed)
                               ? "lsass has not loaded pwsyncflt since it was installed (" + format_filetime(*installed) +
                                     "): restart this domain controller"
                               : "lsass has not loaded pwsyncflt in this boot: check the System event log for LSA "
                                 "errors about pwsyncflt.dll, and that it is in System32");
    std::printf("last change spooled:   %s\n", when(spooled).c_str());

    const std::wstring spool = spool_dir();
    std::printf("spool:                 %s waiting, set aside: %s bad, %s refused, %s expired (%s)\n",
                count_entries(spool).c_str(), count_entries(spool + L"\\bad").c_str(),
                count_entries(spool + L"\\refused").c_str(), count_entries(spool + L"\\expired").c_str(),
                narrow(spool).c_str());
    bool running = false;
    const std::string svc = service_state(running);
    std::printf("service pwsync-agent:  %s\n", svc.c_str());
    if (!running)
        problems.push_back("the pwsync-agent service is " + svc + ": changes wait in the spool and reach no gateway (" +
                           (svc == "not installed" ? "pwsync-agent install" : "net start pwsync-agent") + ")");

    if (problems.empty()) {
        std::printf("capture:               working\n");
        return 0;
    }
    std::printf("capture:               NOT working\n");
    for (const auto& p : problems) std::printf("problem: %s\n", p.c_str());
    return 1;
}

}  // namespace pwsync::win
