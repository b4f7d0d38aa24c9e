// pwsync-agent install / uninstall: the service, the LSA notification
// package, the event source, and the agent's sealed configuration.
#pragma once

#include <windows.h>

#include <string>
#include <vector>

#include "agent_config.h"
#include "bytes.h"

namespace pwsync::win {

inline constexpr const wchar_t* kService = L"pwsync-agent";
inline constexpr const wchar_t* kPackage = L"pwsyncflt";
inline constexpr const wchar_t* kLsaKey = L"SYSTEM\\CurrentControlSet\\Control\\Lsa";

// HKLM\...\Lsa "Notification Packages" as LSA reads it at boot.
struct PackageList {
    bool exists = false;
    DWORD type = REG_NONE;
    std::vector<std::wstring> packages;  // empty unless a REG_MULTI_SZ
};
PackageList package_list();
bool listed(const PackageList& l);  // pwsyncflt is in it
std::string join_packages(const std::vector<std::wstring>& packages);
// Empty when LSA protection (RunAsPPL) is off; else why capture cannot run.
std::string lsa_protection();

// 0 on success; errors are printed as one line.
int install(AgentConfig cfg, const SecretBytes& secret, const std::wstring& ca_file);
int uninstall();

}  // namespace pwsync::win
