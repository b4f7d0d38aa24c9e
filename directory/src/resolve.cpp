// Account resolution: any name form an admin writes -> the account's
// objectGUID, DN, names and state.
#include <cstdlib>

#include "connection_impl.h"

namespace pwsync::directory {
namespace {

const std::vector<std::string> kAccountAttributes = {"objectGUID", "sAMAccountName", "userPrincipalName",
                                                     "userAccountControl", "pwdLastSet",
                                                     "adminCount", "objectSid"};

}  // namespace

std::string dns_of_base(std::string_view base) {
    std::string out;
    std::size_t pos = 0;
    while (pos < base.size()) {
        auto end = base.find(',', pos);
        if (end == std::string_view::npos) end = base.size();
        auto rdn = base.substr(pos, end - pos);
        while (!rdn.empty() && rdn.front() == ' ') rdn.remove_prefix(1);
        if (rdn.size() > 3 && ascii_lower(rdn.substr(0, 3)) == "dc=") {
            if (!out.empty()) out += '.';
            out += rdn.substr(3);
        }
        pos = end + 1;
    }
    return ascii_lower(out);
}

namespace {

LdapError not_found(std::string_view name, std::string why = {}) {
    auto e = decode_error(LDAP_NO_SUCH_OBJECT, {}, "resolve " + std::string(name));
    if (!why.empty()) e.message += ": " + why;
    return e;
}

}  // namespace

Account account_from_entry(const Entry& e) {
    Account a;
    a.guid = format_guid(e.first("objectGUID"));
    a.dn = e.dn;
    a.sam = e.first("sAMAccountName");
    a.upn = e.first("userPrincipalName");
    a.user_account_control = static_cast<std::uint32_t>(std::strtoul(e.first("userAccountControl").c_str(), nullptr, 10));
    a.enabled = (a.user_account_control & 0x2) == 0;
    a.pwd_last_set = std::strtoll(e.first("pwdLastSet").c_str(), nullptr, 10);
    a.admin_count = std::strtol(e.first("adminCount").c_str(), nullptr, 10) != 0;
    if (e.has("objectSid")) a.sid = sid_text(e.first("objectSid"));
    return a;
}

LdapResult<Account> resolve_account(Connection& c, const Domain& domain, std::string_view name) {
    auto parsed = parse_account_name(name);
    if (!parsed) return std::unexpected(client_error(Reason::invalid_request, "resolve: " + parsed.error().message));
    std::string base = domain.base;
    if (base.empty()) {
        PWSYNC_ASSIGN(RootDse r, c.root_dse());
        base = r.default_naming_context;
    }
    const std::string dns = domain.dns_domain.empty() ? dns_of_base(base) : ascii_lower(domain.dns_domain);

    Search s;
    s.base = base;
    s.scope = Scope::subtree;
    s.attributes = kAccountAttributes;
    s.size_limit = 2;  // two are enough to call it ambiguous
    const auto by_sam = [&](std::string_view sam) {
        s.filter = "(&(objectClass=user)(sAMAccountName=" + escape_filter_value(sam) + "))";
    };
    switch (parsed->kind) {
    case NameKind::sam: by_sam(parsed->value); break;
    case NameKind::domain_sam: {
        const auto d = ascii_lower(parsed->domain);
        if (!domain.netbios.empty() && d != ascii_lower(domain.netbios) && d != dns)
            return std::unexpected(not_found(name, "domain " + parsed->domain + " is not this directory's domain " + domain.netbios));
        by_sam(parsed->value);
        break;
    }
    case NameKind::upn: s.filter = "(&(objectClass=user)(userPrincipalName=" + escape_filter_value(parsed->value) + "))"; break;
    case NameKind::dn:
        s.base = parsed->value;
        s.scope = Scope::base;
        s.filter = "(objectClass=user)";
        break;
    case NameKind::guid: s.filter = "(&(objectClass=user)(objectGUID=" + escape_filter_bytes(parsed->value) + "))"; break;
    }

    auto found = c.search(s);
    if (!found && found.error().ldap_code == LDAP_NO_SUCH_OBJECT && parsed->kind == NameKind::dn)
        return std::unexpected(not_found(name));
    if (!found && found.error().ldap_code == LDAP_SIZELIMIT_EXCEEDED)
        return std::unexpected(client_error(Reason::ambiguous, "resolve " + std::string(name) + ": several accounts match"));
    if (!found) return std::unexpected(std::move(found).error());
    // An account without an explicit UPN still answers to sam@dns-domain.
    if (found->empty() && parsed->kind == NameKind::upn && ascii_lower(parsed->domain) == dns) {
        const auto sam = parsed->value.substr(0, parsed->value.rfind('@'));
        by_sam(sam);
        PWSYNC_ASSIGN(found, c.search(s));
    }
    if (found->empty()) return std::unexpected(not_found(name));
    if (found->size() > 1)
        return std::unexpected(client_error(Reason::ambiguous, "resolve " + std::string(name) + ": several accounts match"));
    Account a = account_from_entry(found->front());
    if (a.guid.empty()) return std::unexpected(client_error(Reason::invalid_request, "resolve " + std::string(name) + ": no objectGUID returned"));
    return a;
}

LdapResult<std::pair<Account, std::string>> read_account_by_guid(Connection& c, std::string_view guid) {
    auto dn = guid_dn(guid);
    if (!dn) return std::unexpected(client_error(Reason::invalid_request, "not a GUID: " + std::string(guid)));
    Search s;
    s.base = std::move(*dn);
    s.scope = Scope::base;
    s.filter = "(objectClass=user)";
    s.attributes = kAccountAttributes;
    s.attributes.push_back("tokenGroups");  // constructed: a base search returns it
    auto found = c.search(s);
    if (!found && found.error().ldap_code == LDAP_NO_SUCH_OBJECT) return std::unexpected(not_found(guid));
    if (!found) return std::unexpected(std::move(found).error());
    if (found->empty()) return std::unexpected(not_found(guid));
    Account a = account_from_entry(found->front());
    // A DC that took the base for a plain DN would not answer with this object.
    if (parse_guid(a.guid) != parse_guid(guid)) return std::unexpected(not_found(guid, "the directory answered with another object"));
    PWSYNC_ASSIGN(std::string why, privileged_reason(found->front()));
    return std::pair{std::move(a), std::move(why)};
}

}  // namespace pwsync::directory
