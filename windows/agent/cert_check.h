// The agent's own check of the gateway's certificate: it must be issued
// (signed) by the CA given at install, and be within its validity period.
// Used from wldap32's LDAP_OPT_SERVER_CERTIFICATE callback, so that the
// agent does not depend on what the machine's trust store holds.
#pragma once

#include <windows.h>
#include <wincrypt.h>

#include <expected>
#include <string>

namespace pwsync::win {

class PinnedCa {
public:
    static std::expected<PinnedCa, std::string> load(const std::wstring& pem_file);
    PinnedCa(PinnedCa&& o) noexcept : ca_(o.ca_) { o.ca_ = nullptr; }
    PinnedCa(const PinnedCa&) = delete;
    PinnedCa& operator=(const PinnedCa&) = delete;
    PinnedCa& operator=(PinnedCa&&) = delete;
    ~PinnedCa();
    // Empty when `server` is acceptable, else why not.
    std::string check(PCCERT_CONTEXT server) const;

private:
    explicit PinnedCa(PCCERT_CONTEXT ca) : ca_(ca) {}
    PCCERT_CONTEXT ca_;
};

// A certificate from a PEM file (the first one in it).
std::expected<PCCERT_CONTEXT, std::string> load_pem_certificate(const std::wstring& pem_file);

}  // namespace pwsync::win
