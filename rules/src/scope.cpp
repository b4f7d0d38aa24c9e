// A rule's accounts in the directory: its scope as one LDAP filter, with
// what rules never map, and one paged search.
#include <algorithm>
#include <cstdint>
#include <set>

#include "pwsync/rules.h"

namespace pwsync::rules {
namespace {

namespace dir = pwsync::directory;

constexpr std::string_view kInChain = "1.2.840.113556.1.4.1941";  // LDAP_MATCHING_RULE_IN_CHAIN
constexpr std::string_view kBitAnd = "1.2.840.113556.1.4.803";    // LDAP_MATCHING_RULE_BIT_AND

// AD's protected groups (AdminSDHolder), by SID: BUILTIN ones by their
// fixed SID, the domain's by RID.
constexpr std::uint32_t kBuiltinProtected[] = {544, 548, 549, 550, 551, 552};  // Administrators, Account/Server/Print/Backup Operators, Replicator
constexpr std::uint32_t kDomainProtected[] = {512, 516, 518, 519, 521, 526, 527};  // Domain Admins, DCs, Schema/Enterprise Admins, RODCs, Key Admins
constexpr std::uint32_t kProtectedUsers[] = {500, 502};  // Administrator, krbtgt

void put_le32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// The binary SID S-1-5-32-<rid>.
std::string builtin_sid(std::uint32_t rid) {
    std::string s{'\x01', '\x02', '\0', '\0', '\0', '\0', '\0', '\x05'};
    put_le32(s, 32);
    put_le32(s, rid);
    return s;
}

// The domain's binary SID with one more sub-authority.
std::string domain_rid_sid(std::string domain_sid, std::uint32_t rid) {
    if (domain_sid.size() < 8) return {};
    domain_sid[1] = static_cast<char>(domain_sid[1] + 1);
    put_le32(domain_sid, rid);
    return domain_sid;
}

bool looks_like_dn(std::string_view s) { return s.find('=') != std::string_view::npos; }

std::string wrapped(std::string_view filter) {
    if (!filter.empty() && filter.front() == '(') return std::string(filter);
    return "(" + std::string(filter) + ")";
}

// A group named by its DN, and the groups nested in it.
std::string in_or_under(std::string_view group_dn) {
    const std::string v = dir::escape_filter_value(group_dn);
    return "(distinguishedName=" + v + ")(memberOf:" + std::string(kInChain) + ":=" + v + ")";
}

// The members of the protected groups, nested ones included, read from
// the groups' `member` values (one base search per group and member):
// negated LDAP_MATCHING_RULE_IN_CHAIN clauses in the scope's filter made
// Samba walk every protected group for every account, minutes for a few
// thousand (bench/run, phase "rules"). The groups' GUIDs go to ev.groups
// (a change to one of them calls for a whole evaluation), the accounts'
// to ev.privileged.
dir::LdapStatus walk_members(dir::Connection& c, std::vector<std::string> todo, Evaluation& ev) {
    std::set<std::string> seen;
    while (!todo.empty()) {
        const std::string dn = std::move(todo.back());
        todo.pop_back();
        if (!seen.insert(ascii_lower(dn)).second) continue;
        dir::Search s;
        s.base = dn;
        s.scope = dir::Scope::base;
        s.attributes = {"objectGUID", "objectClass", "member"};
        auto found = c.search(s);
        if (!found && found.error().reason == dir::Reason::no_such_object) continue;  // a member outside this NC
        if (!found) return std::unexpected(found.error());
        if (found->empty()) continue;
        const dir::Entry& e = found->front();
        bool group = false, user = false;
        if (const auto* classes = e.values("objectClass"))
            for (const auto& x : *classes) {
                group |= ascii_lower(x) == "group";
                user |= ascii_lower(x) == "user";
            }
        const std::string guid = ascii_lower(dir::format_guid(e.first("objectGUID")));
        if (group) {
            ev.groups.push_back(guid);
            if (const auto* members = e.values("member"))
                for (const auto& m : *members) todo.push_back(m);
        } else if (user) {
            ev.privileged.insert(guid);
        }
    }
    return {};
}

dir::Search account_search(std::string base, std::string filter, const Template& external) {
    dir::Search q;
    q.base = std::move(base);
    q.scope = dir::Scope::subtree;
    q.filter = std::move(filter);
    q.attributes = {"objectGUID", "sAMAccountName", "userPrincipalName"};
    for (const auto& a : external.attributes()) q.attributes.push_back(a);
    return q;
}

Candidate candidate(const dir::Entry& e, const Template& external) {
    Candidate cand;
    cand.guid = dir::format_guid(e.first("objectGUID"));
    cand.dn = e.dn;
    cand.sam = e.first("sAMAccountName");
    cand.upn = e.first("userPrincipalName");
    std::string held;
    auto rendered = external.render([&](std::string_view attr) -> const std::string* {
        if (ascii_lower(attr) == "distinguishedname" || ascii_lower(attr) == "dn") return &cand.dn;
        const auto* v = e.values(attr);
        if (v == nullptr || v->empty()) return nullptr;
        held = v->front();
        return &held;
    });
    if (rendered) cand.external = std::move(*rendered);
    else cand.missing = rendered.error().message;
    return cand;
}

}  // namespace

std::string scope_filter(const store::RuleScope& scope, std::string_view group_dn, std::string_view domain_sid) {
    std::string f = "(&(objectClass=user)(!(objectClass=computer))";
    f += "(!(userAccountControl:" + std::string(kBitAnd) + ":=2))";
    f += "(!(adminCount=1))";
    for (std::uint32_t rid : kDomainProtected) f += "(!(primaryGroupID=" + std::to_string(rid) + "))";
    if (!domain_sid.empty())
        for (std::uint32_t rid : kProtectedUsers)
            f += "(!(objectSid=" + dir::escape_filter_bytes(domain_rid_sid(std::string(domain_sid), rid)) + "))";
    if (!group_dn.empty()) f += "(memberOf:" + std::string(kInChain) + ":=" + dir::escape_filter_value(group_dn) + ")";
    if (!scope.filter.empty()) f += wrapped(scope.filter);
    f += ")";
    return f;
}

dir::LdapResult<Evaluation> evaluate(dir::Connection& c, const dir::Domain& domain, const store::Rule& rule,
                                     const Template& external) {
    Evaluation ev;
    std::string naming = domain.base;
    if (naming.empty()) {
        PWSYNC_ASSIGN(dir::RootDse root, c.root_dse());
        naming = root.default_naming_context;
    }
    // The domain's SID, for the protected groups and accounts it numbers.
    dir::Search s;
    s.base = naming;
    s.scope = dir::Scope::base;
    s.attributes = {"objectSid"};
    PWSYNC_ASSIGN(auto top, c.search(s));
    const std::string domain_sid = top.empty() ? std::string() : top.front().first("objectSid");
    if (domain_sid.size() < 8)
        return std::unexpected(dir::client_error(dir::Reason::other, "rule " + rule.name + ": the domain " + naming +
                                                                         " has no readable objectSid"));

    std::string sids;
    for (std::uint32_t rid : kBuiltinProtected) sids += "(objectSid=" + dir::escape_filter_bytes(builtin_sid(rid)) + ")";
    for (std::uint32_t rid : kDomainProtected)
        sids += "(objectSid=" + dir::escape_filter_bytes(domain_rid_sid(domain_sid, rid)) + ")";
    s.scope = dir::Scope::subtree;
    s.filter = "(&(objectClass=group)(|" + sids + "))";
    s.attributes = {"objectSid"};
    PWSYNC_ASSIGN(auto groups, c.search(s));
    std::vector<std::string> protected_groups;
    for (const auto& g : groups) protected_groups.push_back(g.dn);
    PWSYNC_TRY(walk_members(c, protected_groups, ev));

    std::string group_dn;
    if (!rule.scope.group.empty()) {
        if (looks_like_dn(rule.scope.group)) {
            // A group that is gone (deleted, renamed, moved) has no members:
            // evaluating the rule would remove every mapping it made.
            dir::Search g;
            g.base = rule.scope.group;
            g.scope = dir::Scope::base;
            g.filter = "(objectClass=group)";
            g.attributes = {"cn"};
            auto there = c.search(g);
            if ((!there && there.error().reason == dir::Reason::no_such_object) || (there && there->empty()))
                return std::unexpected(dir::client_error(
                    dir::Reason::no_such_object, "rule " + rule.name + ": no group " + rule.scope.group +
                                                     " (deleted, renamed or moved?); its mappings are kept as they are"));
            if (!there) return std::unexpected(there.error());
            group_dn = rule.scope.group;
        } else {
            const std::string v = dir::escape_filter_value(rule.scope.group);
            s.filter = "(&(objectClass=group)(|(sAMAccountName=" + v + ")(cn=" + v + ")))";
            s.attributes = {"cn"};
            PWSYNC_ASSIGN(auto found, c.search(s));
            if (found.size() != 1)
                return std::unexpected(dir::client_error(
                    found.empty() ? dir::Reason::no_such_object : dir::Reason::ambiguous,
                    "rule " + rule.name + ": " + (found.empty() ? "no group named '" : "several groups named '") +
                        rule.scope.group + "'" + (found.empty() ? "" : "; give its DN")));
            group_dn = found.front().dn;
        }
    }

    // The rule's group and the groups nested in it decide membership too.
    if (!group_dn.empty()) {
        s.filter = "(&(objectClass=group)(|" + in_or_under(group_dn) + "))";
        s.attributes = {"objectGUID"};
        PWSYNC_TRY(c.search_paged(s, [&](dir::Entry&& e) -> Status {
            ev.groups.push_back(ascii_lower(dir::format_guid(e.first("objectGUID"))));
            return {};
        }));
    }

    ev.base = rule.scope.base.empty() ? naming : rule.scope.base;
    ev.filter = scope_filter(rule.scope, group_dn, domain_sid);
    dir::Search q = account_search(ev.base, ev.filter, external);
    PWSYNC_TRY(c.search_paged(q, [&](dir::Entry&& e) -> Status {
        Candidate cand = candidate(e, external);
        if (!ev.privileged.contains(ascii_lower(cand.guid))) ev.accounts.push_back(std::move(cand));
        return {};
    }));
    return ev;
}

dir::LdapResult<std::vector<Candidate>> evaluate_accounts(dir::Connection& c, const Evaluation& earlier,
                                                          const Template& external,
                                                          const std::vector<std::string>& guids) {
    constexpr std::size_t kPerSearch = 100;  // keeps each filter well under any server's limit
    std::vector<Candidate> out;
    for (std::size_t i = 0; i < guids.size(); i += kPerSearch) {
        std::string any;
        for (std::size_t j = i; j < std::min(guids.size(), i + kPerSearch); ++j)
            any += "(objectGUID=" + dir::escape_filter_bytes(guids[j]) + ")";
        dir::Search q = account_search(earlier.base, "(&" + earlier.filter + "(|" + any + "))", external);
        PWSYNC_ASSIGN(auto found, c.search(q));
        for (const auto& e : found) {
            Candidate cand = candidate(e, external);
            if (!earlier.privileged.contains(ascii_lower(cand.guid))) out.push_back(std::move(cand));
        }
    }
    return out;
}

}  // namespace pwsync::rules
