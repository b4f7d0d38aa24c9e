// pwsync/rules.h — mapping rules: which directory accounts a rule covers,
// the external user id its template gives each one, and the plan that
// brings the rule's mappings in line (create, change, remove, conflicts).
//
// A rule is evaluated with one paged LDAP search: the scope's group (nested
// membership, through LDAP_MATCHING_RULE_IN_CHAIN), base OU and filter,
// ANDed with what a rule never maps: disabled accounts (userAccountControl
// bit 2), adminCount=1, a protected primary group, the built-in
// Administrator and krbtgt. Members of AD's protected groups (directly or
// nested) are found beforehand by reading those groups' members, and left
// out. The plan is computed against
// the store in one transaction: `rule preview` on a snapshot, `rule apply`
// and pwsyncd in the write transaction that carries it out, so what
// preview shows is what apply does on the same directory and store.
//
// Conflicts are never resolved silently: two accounts that give the same
// external id get no mapping; a hand-made mapping (or another rule's) of the
// account wins; an external id already mapped to another account wins; an
// external id a rename would change is kept unless the rule allows it.
// Every conflict is listed in the plan, the rule's record (pwsync status),
// the audit (once per conflict) and pwsyncd's metric.
//
// An account that leaves the scope (leaves the group, moves out of the OU,
// is disabled, deleted or becomes privileged) loses its rule-made mapping:
// the mapping is deleted (audited), not disabled, so nothing is kept for an
// account the rule no longer covers; if it comes back it gets a new one.
#pragma once

#include <cstddef>
#include <expected>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "pwsync/directory.h"
#include "pwsync/store.h"
#include "pwsync/util.h"

namespace pwsync::rules {

// ---------------------------------------------------------------- template

// The external user id from an account's attributes: text with fields
// `{attribute}` or `{attribute|transform|...}`, transforms applied left to
// right: upper, lower (ASCII letters), localpart (the part before the last
// '@'), truncate N (the first N characters). `{{` and `}}` are literal braces.
class Template {
public:
    static Result<Template> parse(std::string_view text);

    // Why an account gives no external id: the attribute it lacks (or whose
    // value is empty), or an empty result.
    struct Missing {
        std::string attribute;
        std::string message;  // "missing attribute employeeID"
    };
    // `value_of` returns the attribute's (first) value, or nullptr when absent.
    using Lookup = std::function<const std::string*(std::string_view attribute)>;
    std::expected<std::string, Missing> render(const Lookup& value_of) const;

    // The attributes the template reads, in order of first use.
    const std::vector<std::string>& attributes() const { return attributes_; }
    const std::string& text() const { return text_; }

    struct Step {
        enum Op { upper, lower, localpart, truncate } op = upper;
        std::size_t n = 0;  // truncate
    };
    struct Piece {
        std::string literal;    // when attribute is empty
        std::string attribute;
        std::vector<Step> steps;
    };

private:
    std::string text_;
    std::vector<Piece> pieces_;
    std::vector<std::string> attributes_;
};

// -------------------------------------------------------------- evaluation

// One account in a rule's scope.
struct Candidate {
    std::string guid;       // {...}, lower case
    std::string dn, sam, upn;
    std::string external;   // what the template gives; empty when `missing` says why
    std::string missing;    // "missing attribute employeeID"
};

struct Evaluation {
    std::string base;      // where it searched
    std::string filter;    // the whole filter it used
    std::vector<Candidate> accounts;
    // The groups whose membership decides the scope: the rule's group, the
    // protected groups, and every group nested in one of them (objectGUIDs,
    // {...}, lower case). A change to one of them can move any account in
    // or out; a change elsewhere moves only the accounts it touches.
    std::vector<std::string> groups;
    // Accounts in the protected groups (nested too), found apart from the
    // scope's search and never among `accounts` (objectGUIDs, lower case).
    std::set<std::string> privileged;
};

// The LDAP filter of a rule's scope with what rules never map that a filter
// can say cheaply (disabled, adminCount=1, a protected primary group,
// Administrator, krbtgt), given the group's DN (empty: no group). Members of
// the protected groups are left out by evaluate() itself.
std::string scope_filter(const store::RuleScope& scope, std::string_view group_dn, std::string_view domain_sid);

// Finds the rule's accounts in the directory (one paged search, plus the
// lookups of the group by name and of the protected groups).
directory::LdapResult<Evaluation> evaluate(directory::Connection& c, const directory::Domain& domain,
                                           const store::Rule& rule, const Template& external);

// The accounts among `guids` (raw objectGUID bytes) that are in the scope
// now, searched with an earlier evaluation's base and filter, 100 GUIDs a
// search: what an incremental round costs is proportional to the accounts
// that changed, not to the scope. The group and protected groups are those
// of the earlier evaluation (a change to one of them needs a new one).
directory::LdapResult<std::vector<Candidate>> evaluate_accounts(directory::Connection& c, const Evaluation& earlier,
                                                                const Template& external,
                                                                const std::vector<std::string>& guids);

// -------------------------------------------------------------------- plan

struct Change {
    std::string windows;    // the mapping's Windows account (DOMAIN\sam for a new one)
    std::string guid;
    std::string external;   // the new external id (create, change)
    std::string old_external;  // change, remove
};

struct Plan {
    std::string rule, app;
    std::size_t in_scope = 0;   // accounts the search found
    std::size_t unchanged = 0;  // rule-made mappings already right
    std::vector<Change> creates, changes, removes;
    std::vector<std::string> conflicts;  // one line each; also held external id changes
    // Accounts whose template gives no usable value: "DN: missing attribute X",
    // or an id the store would refuse (control character, too long, ...).
    std::vector<std::string> missing;
    bool empty() const { return creates.empty() && changes.empty() && removes.empty(); }
};

// What the rule would do now. `domain_netbios` names new mappings' accounts
// DOMAIN\sam (empty: sam alone).
Result<Plan> make_plan(const store::ReadTxn& t, const store::Rule& rule, const Evaluation& found,
                       std::string_view domain_netbios);

// Plans again in `w` and carries the plan out, every change audited; what
// the store refuses at that moment (a conflict in the adapter's scope, a
// mapping made meanwhile) becomes a conflict. Records the conflicts in the
// rule (note_rule_evaluation). Returns the plan carried out.
Result<Plan> apply(store::WriteTxn& w, const store::Rule& rule, const Evaluation& found,
                   std::string_view domain_netbios);

}  // namespace pwsync::rules
