// The domains a gateway serves: one Ad (writer and resolver) per [directory]
// section, and which of them an account name or a capture principal
// belongs to. One section: every name is its domain's, as before.
#pragma once

#include <memory>
#include <vector>

#include "ad.h"
#include "pwsync/store.h"

namespace pwsync::gateway {

class Domains {
public:
    Domains() = default;
    // `warn`: the directory library's loud warnings (insecure-skip-verify).
    static Result<Domains> open(std::vector<directory::Settings> sections, const Clock* clock,
                                std::function<void(std::string_view)> warn);
    bool empty() const { return ads_.empty(); }
    // Several domains: account names must say which one they belong to.
    bool several() const { return ads_.size() > 1; }
    std::size_t size() const { return ads_.size(); }
    Ad& operator[](std::size_t i) const { return *ads_[i]; }

    // The domain of `account`: by its name form (DOMAIN\sam, UPN suffix, DN
    // under the naming context), else a {GUID} by the store's record of it
    // or by asking each domain. Errc::invalid_argument: a name that says no
    // domain (a bare sam with several); Errc::not_found: none has it;
    // Errc::unavailable: a domain that might have it cannot be asked now.
    Result<Ad*> route(std::string_view account, const store::Store& store) const;
    // route() and that domain's lookup.
    Result<store::AccountNames> lookup(std::string_view account, const store::Store& store) const;
    // The NetBIOS name of the domain `account` says it is in (DOMAIN\sam, UPN
    // suffix, DN); empty: it does not say, or one domain only.
    std::string domain_of_name(std::string_view account) const;
    // The domain a mapping rule reads: the one its scope's OU or group DN
    // lies in; the first when the scope names no DN (a group by name, a
    // filter alone).
    std::size_t rule_domain(const store::Rule& rule) const;
    // The NetBIOS name of the domain whose capture-principals name
    // `principal`; empty: none does.
    std::string domain_of_principal(std::string_view principal) const;

private:
    std::vector<std::unique_ptr<Ad>> ads_;
    std::vector<directory::Settings> sections_;  // as ads_, for directory_of()
};

}  // namespace pwsync::gateway
