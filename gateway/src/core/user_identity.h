// The userIdentity of a Password Modify request (RFC 3062) -> the name the
// engine looks mappings up by. Senders name the user as a plain name, as a
// DN (many LDAP libraries send nothing else) or as an RFC 4513 authzId
// ("u:NAME", "dn:DN"); this is the one place those forms are told apart.
#pragma once

#include <expected>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "outcomes.h"
#include "pwsync/store.h"

namespace pwsync::gateway {

// Why a userIdentity cannot be used: the outcome and the text.
struct IdentityRefusal {
    ChangeOutcome outcome = ChangeOutcome::failed;
    std::string message;
};
template <class T>
using IdentityResult = std::expected<T, IdentityRefusal>;

// A DN parsed by libldap (RFC 4514), leaf RDN first. Types are lower-case
// names (a few well-known OIDs and long names mapped to their short name);
// values are unescaped; the AVAs of a multi-valued RDN are sorted by type.
struct Ava {
    std::string type;
    std::string value;
};
using Rdn = std::vector<Ava>;
struct Dn {
    std::vector<Rdn> rdns;
};

// Refuses the empty DN, RDNs without a value and BER (#hex) values.
Result<Dn> parse_dn(std::string_view text);
// Values compared as directories compare them: insignificant spaces
// dropped, and case ignored for the attributes whose matching rule ignores
// it (cn, uid, dc, ou, ...; ASCII letters only).
bool same_value(std::string_view type, std::string_view a, std::string_view b);
bool same_rdn(const Rdn& a, const Rdn& b);
// One spelling per DN: "type=value,..." with the values in their matching
// form and RFC 4514 escapes; equals the lower-cased DN a directory returns
// for the usual DNs (what the store keeps as an account's name).
std::string canonical_dn(const Dn& dn);
// `dn` equals `base` or lies below it.
bool is_under(const Dn& dn, const Dn& base);

struct UserIdentity {
    bool is_dn = false;  // a DN ("dn:" authzId, or text that reads as one)
    std::string value;   // the name or the DN, without the authzId prefix
};
// Strips a "u:" / "dn:" authzId. Text with '=' before any '\' is a DN (the
// rule the directory's account names use); "u:" forces a plain name.
// Malformed (empty authzId, bad DN syntax): protocolError.
IdentityResult<UserIdentity> parse_user_identity(std::string_view text);

// The external user id an adapter principal's userIdentity names. A DN must
// be one the adapter itself would use for that id: the ldap adapter's
// dn-template, or under its base with the filter's attribute as RDN.
// Outside that: noSuchObject, saying why. Adapter types without DNs (exec,
// http, null) refuse DNs: unwillingToPerform.
IdentityResult<std::string> external_user_id(std::string_view text, const store::Adapter& adapter);

// The sAMAccountName (or another name the engine looks up) of the account
// a DN names; Errc::not_found when none, Errc::unavailable when AD cannot
// be asked.
using AccountOfDn = std::function<Result<std::string>(std::string_view dn)>;
// The Windows account a windows principal's userIdentity names: sam,
// DOMAIN\sam, UPN and {GUID} pass through to the engine's lookup; a DN is
// resolved by `account_of_dn` (without one, it passes through as well).
IdentityResult<std::string> windows_account(std::string_view text, const AccountOfDn& account_of_dn);

}  // namespace pwsync::gateway
