#include "domains.h"

#include <algorithm>
#include <set>

namespace pwsync::gateway {

Result<Domains> Domains::open(std::vector<directory::Settings> sections, const Clock* clock,
                              std::function<void(std::string_view)> warn) {
    Domains d;
    const bool several = sections.size() > 1;
    for (const auto& s : sections) {
        auto options = directory::connect_options(s);
        if (!options) return fail(options.error().code, directory::section_label(s) + ": " + options.error().message);
        options->warn = warn;
        d.ads_.push_back(std::make_unique<Ad>(s, std::move(*options), clock, several));
    }
    d.sections_ = std::move(sections);
    return d;
}

Result<Ad*> Domains::route(std::string_view account, const store::Store& store) const {
    if (ads_.empty()) return fail(Errc::invalid_argument, "no [directory] is configured");
    if (!several()) return ads_.front().get();
    if (auto i = directory::directory_of(sections_, account)) return ads_[*i].get();
    auto parsed = directory::parse_account_name(account);
    if (!parsed) return std::unexpected(parsed.error());
    if (parsed->kind == directory::NameKind::sam) {
        // A mapping made with the bare sam before a second domain was added,
        // resolved since: its objectGUID says which account it is.
        std::set<std::string> guids;
        if (auto r = store.read()) {
            store::MappingFilter f;
            f.windows = std::string(account);
            if (auto found = r->mappings(f))
                for (const auto& m : *found)
                    if (!m.object_guid.empty()) guids.insert(ascii_lower(m.object_guid));
        }
        if (guids.size() == 1) return route(*guids.begin(), store);
    }
    if (parsed->kind != directory::NameKind::guid) {
        if (parsed->kind == directory::NameKind::sam)
            return fail(Errc::invalid_argument, "Windows account '" + std::string(account) +
                                                    "' does not say its domain: with several [directory NAME] sections "
                                                    "name it DOMAIN\\sam, by UPN, by DN or by {GUID}");
        return fail(Errc::not_found, "Windows account '" + std::string(account) + "' is in none of the configured domains");
    }
    // A GUID: the store knows its domain once it has seen the account.
    if (auto r = store.read())
        if (auto known = r->account(account); known && *known && !(*known)->domain.empty())
            for (const auto& ad : ads_)
                if (ascii_lower(ad->domain().netbios) == ascii_lower((*known)->domain)) return ad.get();
    // Not found in every domain is "no such account"; any other answer (an
    // outage, a refused bind) leaves it undecided: that error, not not_found,
    // which would be taken for a deleted account.
    std::optional<Error> undecided;
    for (const auto& ad : ads_) {
        auto a = ad->lookup(account);
        if (a) return ad.get();
        if (a.error().code != Errc::not_found && (!undecided || a.error().code == Errc::unavailable)) undecided = a.error();
    }
    if (undecided)
        return fail(undecided->code, "account " + std::string(account) + ": a domain that may hold it did not answer: " +
                                         undecided->message);
    return fail(Errc::not_found, "Windows account " + std::string(account) + " is in none of the configured domains");
}

Result<store::AccountNames> Domains::lookup(std::string_view account, const store::Store& store) const {
    PWSYNC_ASSIGN(Ad * ad, route(account, store));
    return ad->lookup(account);
}

std::string Domains::domain_of_name(std::string_view account) const {
    if (!several()) return {};
    const auto i = directory::directory_of(sections_, account);
    return i ? ads_[*i]->domain().netbios : std::string();
}

std::size_t Domains::rule_domain(const store::Rule& rule) const {
    for (const auto& dn : {rule.scope.base, rule.scope.group})
        if (auto i = directory::directory_of(sections_, dn); i && !dn.empty()) return *i;
    return 0;
}

std::string Domains::domain_of_principal(std::string_view principal) const {
    const auto p = ascii_lower(principal);
    for (std::size_t i = 0; i < ads_.size(); ++i)
        if (std::ranges::find(sections_[i].capture_principals, p) != sections_[i].capture_principals.end())
            return ads_[i]->domain().netbios;
    return {};
}

}  // namespace pwsync::gateway
