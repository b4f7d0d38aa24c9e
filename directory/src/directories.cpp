// Several domains: one [directory NAME] section each, and which of them an
// account name belongs to.
#include <algorithm>
#include <set>

#include "pwsync/directory.h"

namespace pwsync::directory {
namespace {

// "directory" -> "", "directory NAME" -> "NAME"; nullopt: another section.
std::optional<std::string> directory_section(std::string_view section) {
    if (section == "directory") return std::string();
    if (!section.starts_with("directory ")) return std::nullopt;
    auto name = section.substr(10);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    return std::string(name);
}

// "a,DC=Example, DC=com" ends with the naming context "dc=example,dc=com".
std::string squeeze_dn(std::string_view dn) {
    std::string out;
    for (char c : dn)
        if (c != ' ') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// Two sections claiming the same thing (a domain, a suffix, a principal).
Status claim(std::map<std::string, std::string>& owners, const std::string& what, const std::string& value,
             const std::string& label) {
    const auto [it, fresh] = owners.emplace(ascii_lower(value), label);
    if (fresh || it->second == label) return {};
    return fail(Errc::invalid_argument, label + " and " + it->second + " both claim " + what + " '" + value + "'");
}

}  // namespace

std::string section_label(const Settings& s) { return s.name.empty() ? "[directory]" : "[directory " + s.name + "]"; }

Result<std::vector<Settings>> parse_directories(const std::vector<IniEntry>& entries) {
    std::vector<std::pair<std::string, std::vector<std::pair<std::string, std::string>>>> sections;
    for (const auto& e : entries) {
        auto name = directory_section(e.section);
        if (!name) continue;
        auto it = std::find_if(sections.begin(), sections.end(),
                               [&](const auto& s) { return ascii_lower(s.first) == ascii_lower(*name); });
        if (it == sections.end()) it = sections.insert(sections.end(), {*name, {}});
        it->second.emplace_back(e.key, e.value);
    }
    std::vector<Settings> out;
    for (const auto& [name, keys] : sections) {
        Settings probe;
        probe.name = name;
        PWSYNC_ASSIGN(auto s, parse_settings(keys, section_label(probe)));
        s.name = name;
        out.push_back(std::move(s));
    }
    if (out.size() < 2) return out;
    if (out.size() > kMaxDirectories)
        return fail(Errc::invalid_argument, std::to_string(out.size()) + " [directory] sections: at most " +
                                                std::to_string(kMaxDirectories) + " domains per gateway");
    // Several domains: every name must say which one it belongs to.
    std::map<std::string, std::string> domains, suffixes, principals;
    for (const auto& s : out) {
        const std::string label = section_label(s);
        if (s.name.empty())
            return fail(Errc::invalid_argument, "several directories: name each section [directory NAME] (a plain [directory] is for one domain)");
        if (s.domain.empty()) return fail(Errc::invalid_argument, label + ": domain = (its NetBIOS name) is needed with several directories");
        if (s.base.empty()) return fail(Errc::invalid_argument, label + ": base = (its naming context) is needed with several directories");
        PWSYNC_TRY(claim(domains, "the domain", s.domain, label));
        PWSYNC_TRY(claim(domains, "the domain", dns_of_base(s.base), label));
        for (const auto& u : s.upn_suffixes) PWSYNC_TRY(claim(suffixes, "the UPN suffix", u, label));
        PWSYNC_TRY(claim(suffixes, "the UPN suffix", dns_of_base(s.base), label));
        for (const auto& p : s.capture_principals) PWSYNC_TRY(claim(principals, "the capture principal", p, label));
    }
    return out;
}

std::optional<std::size_t> directory_of(const std::vector<Settings>& dirs, std::string_view account) {
    auto parsed = parse_account_name(account);
    if (!parsed) return std::nullopt;
    if (parsed->kind == NameKind::dn) {
        // The deepest naming context that holds it: a child domain's
        // (DC=emea,DC=example,DC=com) lies under its parent's.
        const auto dn = squeeze_dn(parsed->value);
        std::optional<std::size_t> best;
        std::size_t best_len = 0;
        for (std::size_t i = 0; i < dirs.size(); ++i) {
            const auto base = squeeze_dn(dirs[i].base);
            if (base.empty() || dn.size() <= base.size() || !dn.ends_with(base) || dn[dn.size() - base.size() - 1] != ',')
                continue;
            if (base.size() > best_len) best = i, best_len = base.size();
        }
        return best;
    }
    for (std::size_t i = 0; i < dirs.size(); ++i) {
        const auto& s = dirs[i];
        const std::string dns = dns_of_base(s.base);
        switch (parsed->kind) {
        case NameKind::domain_sam: {
            const auto d = ascii_lower(parsed->domain);
            if (d == ascii_lower(s.domain) || (!dns.empty() && d == dns)) return i;
            break;
        }
        case NameKind::upn: {
            const auto d = ascii_lower(parsed->domain);
            if ((!dns.empty() && d == dns) || std::ranges::find(s.upn_suffixes, d) != s.upn_suffixes.end()) return i;
            break;
        }
        default: return std::nullopt;
        }
    }
    return std::nullopt;
}

}  // namespace pwsync::directory
