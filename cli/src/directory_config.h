// The configuration file's [directory] sections, for the commands that talk
// to Active Directory (check, mapping resolve, stale expire, rule).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "cli.h"
#include "pwsync/directory.h"

namespace pwsync::cli {

// --config, $PWSYNC_CONFIG, or /etc/pwsync/pwsyncd.conf.
std::string config_path(const Context& c);
// Every [directory] or [directory NAME] section (one per domain), every key
// in them (unknown ones fail); none is an error naming the file.
Result<std::vector<directory::Settings>> load_directories(const std::string& path);

// The configured domains, each connected and bound on first use.
class Directories {
public:
    Directories(Context& c, std::vector<directory::Settings> sections);
    std::size_t size() const { return sections_.size(); }
    const directory::Settings& settings(std::size_t i) const { return sections_[i]; }
    directory::Domain domain(std::size_t i) const { return directory::domain_of(sections_[i]); }
    directory::LdapResult<directory::Connection*> connection(std::size_t i);
    struct Found {
        directory::Account account;
        std::size_t index;  // its domain
    };
    // The account `name` names: in the domain its name says; a bare sam or
    // a {GUID} in each domain (found in two: ambiguous, name the domain).
    directory::LdapResult<Found> resolve(std::string_view name);
    // The store's names of an account found in domain `i`.
    store::AccountNames names(const Found& f) const;

private:
    Context& c_;
    std::vector<directory::Settings> sections_;
    std::vector<std::unique_ptr<directory::Connection>> connections_;
    std::vector<std::optional<directory::LdapError>> failures_;  // a domain that could not be opened
};

}  // namespace pwsync::cli
