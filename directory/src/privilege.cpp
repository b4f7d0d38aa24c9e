// Privileged accounts: what AdminSDHolder protects, found by SID (never by
// name: a renamed or localized "Domain Admins" is still RID 512).
#include <cstdlib>

#include "connection_impl.h"

namespace pwsync::directory {
namespace {

struct Protected {
    std::uint32_t rid;
    const char* name;
};

// Domain-relative RIDs (S-1-5-21-<domain>-RID) of the protected accounts and
// groups. Enterprise/Schema Admins and Enterprise Key Admins live in the
// forest root domain: matched in any domain, as their RIDs mean nothing else.
constexpr Protected kDomainRids[] = {
    {500, "Administrator"},        {502, "krbtgt"},           {512, "Domain Admins"},
    {516, "Domain Controllers"},   {518, "Schema Admins"},     {519, "Enterprise Admins"},
    {521, "Read-only Domain Controllers"}, {526, "Key Admins"}, {527, "Enterprise Key Admins"},
};
// BUILTIN (S-1-5-32-RID).
constexpr Protected kBuiltinRids[] = {
    {544, "Administrators"}, {548, "Account Operators"}, {549, "Server Operators"},
    {550, "Print Operators"}, {551, "Backup Operators"},  {552, "Replicator"},
};

// "S-1-5-21-a-b-c-512" -> its sub-authorities after "S-1-5-".
std::optional<std::vector<std::uint32_t>> sub_authorities(std::string_view sid) {
    constexpr std::string_view prefix = "S-1-5-";
    if (sid.substr(0, prefix.size()) != prefix) return std::nullopt;
    std::vector<std::uint32_t> out;
    std::uint64_t n = 0;
    bool digit = false;
    for (std::size_t i = prefix.size(); i <= sid.size(); ++i) {
        if (i == sid.size() || sid[i] == '-') {
            if (!digit) return std::nullopt;
            out.push_back(static_cast<std::uint32_t>(n));
            n = 0;
            digit = false;
        } else if (sid[i] >= '0' && sid[i] <= '9') {
            n = n * 10 + static_cast<std::uint64_t>(sid[i] - '0');
            if (n > 0xffffffffu) return std::nullopt;
            digit = true;
        } else {
            return std::nullopt;
        }
    }
    return out;
}

}  // namespace

std::string sid_text(std::string_view b) {
    // revision, sub-authority count, 48-bit big-endian authority, then
    // 32-bit little-endian sub-authorities.
    if (b.size() < 8) return {};
    const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(b[i]); };
    const std::size_t count = byte(1);
    if (b.size() != 8 + 4 * count) return {};
    std::uint64_t authority = 0;
    for (std::size_t i = 2; i < 8; ++i) authority = (authority << 8) | byte(i);
    std::string out = "S-" + std::to_string(byte(0)) + "-" + std::to_string(authority);
    for (std::size_t k = 0; k < count; ++k) {
        const std::size_t o = 8 + 4 * k;
        const std::uint32_t v = byte(o) | (byte(o + 1) << 8) | (byte(o + 2) << 16) | (static_cast<std::uint32_t>(byte(o + 3)) << 24);
        out += "-" + std::to_string(v);
    }
    return out;
}

std::optional<std::string> protected_sid_name(std::string_view sid) {
    auto sub = sub_authorities(sid);
    if (!sub || sub->empty()) return std::nullopt;
    const std::uint32_t rid = sub->back();
    if (sub->size() == 2 && sub->front() == 32) {
        for (const auto& p : kBuiltinRids)
            if (p.rid == rid) return std::string(p.name);
        return std::nullopt;
    }
    // A domain SID: 21, three domain sub-authorities, the RID.
    if (sub->size() == 5 && sub->front() == 21)
        for (const auto& p : kDomainRids)
            if (p.rid == rid) return std::string(p.name);
    return std::nullopt;
}

std::string privileged_reason(bool admin_count, std::string_view own_sid, const std::vector<std::string>& group_sids) {
    std::string why;
    const auto add = [&](const std::string& s) { why += (why.empty() ? "" : ", ") + s; };
    if (admin_count) add("adminCount=1");
    if (auto n = protected_sid_name(own_sid)) add("the built-in " + *n + " account");
    for (const auto& g : group_sids)
        if (auto n = protected_sid_name(g)) {
            const std::string member = "member of " + *n + " (" + g + ")";
            if (why.find(member) == std::string::npos) add(member);
        }
    return why;
}

LdapResult<std::string> privileged_reason(Connection& c, const Account& a) {
    // tokenGroups is constructed: only a base search returns it. It holds
    // every security group the account is in, nested ones and the primary
    // group included.
    Search s;
    s.base = a.dn;
    s.scope = Scope::base;
    s.filter = "(objectClass=user)";
    s.attributes = {"tokenGroups", "adminCount", "objectSid"};
    PWSYNC_ASSIGN(auto found, c.search(s));
    if (found.empty()) return std::unexpected(decode_error(LDAP_NO_SUCH_OBJECT, {}, "read the groups of " + a.dn));
    return privileged_reason(found.front());
}

LdapResult<std::string> privileged_reason(const Entry& e) {
    const auto* v = e.values("tokenGroups");
    if (v == nullptr || v->empty())
        return std::unexpected(client_error(
            Reason::insufficient_rights,
            "the groups (tokenGroups) of " + e.dn +
                " cannot be read: whether the account is privileged is unknown, so it is treated as if it were; "
                "let the account pwsync binds as read tokenGroups (e.g. through Pre-Windows 2000 Compatible Access)"));
    std::vector<std::string> groups;
    for (const auto& bytes : *v) groups.push_back(sid_text(bytes));
    const bool admin_count = std::strtol(e.first("adminCount").c_str(), nullptr, 10) != 0;
    return privileged_reason(admin_count, sid_text(e.first("objectSid")), groups);
}

}  // namespace pwsync::directory
