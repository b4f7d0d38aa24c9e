#include "user_identity.h"

#include <ldap.h>

#include <algorithm>
#include <array>
#include <memory>


namespace pwsync::gateway {
namespace {

IdentityRefusal refusal(ChangeOutcome outcome, std::string message) { return {outcome, std::move(message)}; }

struct DnFree {
    void operator()(LDAPDN dn) const { ldap_dnfree(dn); }
};

// Long names and OIDs of the attributes DNs are commonly made of.
std::string normal_type(std::string_view type) {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 22> kAlias{{
        {"2.5.4.3", "cn"},         {"commonname", "cn"},
        {"2.5.4.11", "ou"},        {"organizationalunitname", "ou"},
        {"2.5.4.10", "o"},         {"organizationname", "o"},
        {"0.9.2342.19200300.100.1.25", "dc"}, {"domaincomponent", "dc"},
        {"0.9.2342.19200300.100.1.1", "uid"}, {"userid", "uid"},
        {"2.5.4.6", "c"},          {"countryname", "c"},
        {"2.5.4.7", "l"},          {"localityname", "l"},
        {"2.5.4.8", "st"},         {"stateorprovincename", "st"},
        {"2.5.4.9", "street"},     {"streetaddress", "street"},
        {"2.5.4.4", "sn"},         {"surname", "sn"},
        {"0.9.2342.19200300.100.1.3", "mail"}, {"rfc822mailbox", "mail"},
    }};
    std::string t = ascii_lower(type);
    for (const auto& [from, to] : kAlias)
        if (t == from) return std::string(to);
    return t;
}

// Attributes whose equality rule is caseIgnoreMatch or caseIgnoreIA5Match.
bool ignores_case(std::string_view type) {
    static constexpr std::array<std::string_view, 17> kTypes{"cn", "ou", "o", "dc", "c", "l", "st", "street", "uid",
                                                              "sn", "givenname", "mail", "name", "displayname", "title",
                                                              "initials", "samaccountname"};
    return std::find(kTypes.begin(), kTypes.end(), type) != kTypes.end();
}

// RFC 4518 insignificant spaces: none at the ends, runs count as one.
std::string matching_form(std::string_view type, std::string_view v) {
    std::string out;
    for (char c : v) {
        if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
        out.push_back(c);
    }
    if (!out.empty() && out.back() == ' ') out.pop_back();
    return ignores_case(type) ? ascii_lower(out) : out;
}

bool looks_like_dn(std::string_view text) {
    const auto eq = text.find('=');
    const auto bs = text.find('\\');
    return eq != std::string_view::npos && (bs == std::string_view::npos || eq < bs);
}

bool starts_with_ci(std::string_view text, std::string_view prefix) {
    return text.size() >= prefix.size() && ascii_lower(text.substr(0, prefix.size())) == prefix;
}

Dn suffix_of(const Dn& dn, std::size_t from) {
    Dn out;
    out.rdns.assign(dn.rdns.begin() + static_cast<std::ptrdiff_t>(from), dn.rdns.end());
    return out;
}

// The template text after the RDN that holds the first %s: its base.
std::string base_text(std::string_view templ) {
    for (std::size_t i = templ.find("%s"); i < templ.size(); ++i) {
        if (templ[i] == '\\') ++i;
        else if (templ[i] == ',') return std::string(templ.substr(i + 1));
    }
    return {};
}

IdentityResult<std::string> from_template(const UserIdentity& id, const Dn& dn, const store::Adapter& a,
                                          const std::string& templ) {
    auto unusable = [&](const std::string& why) {
        return std::unexpected(refusal(ChangeOutcome::refused, "adapter '" + a.name + "' has dn-template '" +
                                                                           templ + "', " + why +
                                                                           ": send the user id, not a DN"));
    };
    auto t = parse_dn(templ);
    if (!t) return unusable("which is not a valid DN");
    // Where the id goes: exactly one %s in the whole template.
    std::size_t rdn = 0, ava = 0, holes = 0;
    for (std::size_t i = 0; i < t->rdns.size(); ++i)
        for (std::size_t j = 0; j < t->rdns[i].size(); ++j) {
            const std::string& v = t->rdns[i][j].value;
            for (auto at = v.find("%s"); at != std::string::npos; at = v.find("%s", at + 2)) {
                if (holes++ == 0) rdn = i, ava = j;
            }
        }
    if (holes != 1) return unusable(holes == 0 ? "which has no %s" : "which has %s more than once");

    const std::string shown = "DN '" + id.value + "'";
    const Dn base = suffix_of(*t, rdn + 1);
    if (!is_under(dn, base))
        return std::unexpected(refusal(ChangeOutcome::no_mapping,
                                       shown + " is not under the adapter's base '" + base_text(templ) + "'"));
    const auto misfit = [&] {
        return std::unexpected(refusal(ChangeOutcome::no_mapping, shown + " does not fit the adapter's dn-template '" + templ + "'"));
    };
    if (dn.rdns.size() != t->rdns.size()) return misfit();
    for (std::size_t i = 0; i < rdn; ++i)
        if (!same_rdn(dn.rdns[i], t->rdns[i])) return misfit();
    const Rdn& want = t->rdns[rdn];
    const Rdn& got = dn.rdns[rdn];
    if (got.size() != want.size()) return misfit();
    std::string user;
    for (std::size_t j = 0; j < want.size(); ++j) {
        if (got[j].type != want[j].type) return misfit();
        if (j != ava) {
            if (!same_value(want[j].type, got[j].value, want[j].value)) return misfit();
            continue;
        }
        // "%s" may sit inside fixed text ("cn=%s-admin"): what is around it must match.
        const std::string& w = want[j].value;
        const auto hole = w.find("%s");
        const std::string_view before = std::string_view(w).substr(0, hole), after = std::string_view(w).substr(hole + 2);
        const std::string_view v = got[j].value;
        if (v.size() <= before.size() + after.size()) return misfit();
        const auto same = [&](std::string_view x, std::string_view y) {
            return ignores_case(want[j].type) ? ascii_lower(x) == ascii_lower(y) : x == y;
        };
        if (!same(v.substr(0, before.size()), before) || !same(v.substr(v.size() - after.size()), after)) return misfit();
        user = std::string(v.substr(before.size(), v.size() - before.size() - after.size()));
    }
    return user;
}

// "(uid=%s)", "(&(objectClass=person)(uid=%s))" -> "uid"; empty when the
// filter has no simple equality item holding %s.
std::string filter_attribute(std::string_view filter) {
    std::string attr;
    for (auto at = filter.find("%s"); at != std::string_view::npos; at = filter.find("%s", at + 2)) {
        const auto open = filter.rfind('(', at);
        if (open == std::string_view::npos || filter.substr(at + 2, 1) != ")") return {};
        const std::string_view item = filter.substr(open + 1, at - open - 1);  // "uid="
        if (item.size() < 2 || item.back() != '=') return {};
        const std::string_view name = item.substr(0, item.size() - 1);
        if (name.find_first_of("~<>:=()*&|!") != std::string_view::npos) return {};
        const std::string n = normal_type(name);
        if (!attr.empty() && attr != n) return {};
        attr = n;
    }
    return attr;
}

IdentityResult<std::string> from_base_filter(const UserIdentity& id, const Dn& dn, const store::Adapter& a,
                                             const std::string& base_property, const std::string& filter) {
    const std::string attr = filter_attribute(filter);
    auto base = parse_dn(base_property);
    if (attr.empty() || !base)
        return std::unexpected(refusal(ChangeOutcome::refused,
                                       "adapter '" + a.name + "' finds users with base '" + base_property +
                                           "' and filter '" + filter + "', from which no DN can be matched" +
                                           ": send the user id, not a DN"));
    const std::string shown = "DN '" + id.value + "'";
    if (!is_under(dn, *base))
        return std::unexpected(
            refusal(ChangeOutcome::no_mapping, shown + " is not under the adapter's base '" + base_property + "'"));
    if (dn.rdns.size() == base->rdns.size())
        return std::unexpected(refusal(ChangeOutcome::no_mapping, shown + " is the adapter's base itself, not a user"));
    const Rdn& leaf = dn.rdns.front();
    if (leaf.size() != 1 || leaf.front().type != attr)
        return std::unexpected(refusal(ChangeOutcome::no_mapping,
                                       shown + " does not name its entry by '" + attr + "', the attribute the adapter's filter '" +
                                           filter + "' finds users by: send the user id"));
    return leaf.front().value;
}

}  // namespace

Result<Dn> parse_dn(std::string_view text) {
    if (text.find('\0') != std::string_view::npos) return fail(Errc::invalid_argument, "a DN with a NUL byte");
    const std::string copy(text);
    LDAPDN raw = nullptr;
    const int rc = ldap_str2dn(copy.c_str(), &raw, LDAP_DN_FORMAT_LDAPV3);
    const std::unique_ptr<LDAPRDN, DnFree> owned(raw);
    if (rc != LDAP_SUCCESS) return fail(Errc::invalid_argument, std::string("bad DN syntax (") + ldap_err2string(rc) + ")");
    if (raw == nullptr || raw[0] == nullptr) return fail(Errc::invalid_argument, "the empty DN names no entry");
    Dn dn;
    for (int i = 0; raw[i] != nullptr; ++i) {
        Rdn rdn;
        for (int j = 0; raw[i][j] != nullptr; ++j) {
            const LDAPAVA& a = *raw[i][j];
            const std::string_view type(a.la_attr.bv_val, a.la_attr.bv_len);
            const std::string_view value(a.la_value.bv_val, a.la_value.bv_len);
            if ((a.la_flags & LDAP_AVA_BINARY) != 0)
                return fail(Errc::invalid_argument, "a BER-encoded (#hex) value for " + std::string(type));
            if (value.empty()) return fail(Errc::invalid_argument, "no value for " + std::string(type));
            if (value.find('\0') != std::string_view::npos) return fail(Errc::invalid_argument, "a value with a NUL byte");
            rdn.push_back({normal_type(type), std::string(value)});
        }
        std::ranges::sort(rdn, {}, &Ava::type);
        dn.rdns.push_back(std::move(rdn));
    }
    return dn;
}

std::string canonical_dn(const Dn& dn) {
    std::string out;
    for (const auto& rdn : dn.rdns) {
        if (!out.empty()) out += ',';
        for (std::size_t i = 0; i < rdn.size(); ++i) {
            if (i > 0) out += '+';
            out += rdn[i].type;
            out += '=';
            const std::string v = matching_form(rdn[i].type, rdn[i].value);
            for (std::size_t k = 0; k < v.size(); ++k) {
                const char c = v[k];
                const bool special = c == ',' || c == '+' || c == '"' || c == '\\' || c == '<' || c == '>' || c == ';' ||
                                     c == '=' || (k == 0 && (c == '#' || c == ' ')) || (k + 1 == v.size() && c == ' ');
                if (special) out += '\\';
                out += c;
            }
        }
    }
    return out;
}

bool same_value(std::string_view type, std::string_view a, std::string_view b) {
    return matching_form(type, a) == matching_form(type, b);
}

bool same_rdn(const Rdn& a, const Rdn& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i].type != b[i].type || !same_value(a[i].type, a[i].value, b[i].value)) return false;
    return true;
}

bool is_under(const Dn& dn, const Dn& base) {
    if (dn.rdns.size() < base.rdns.size()) return false;
    const std::size_t skip = dn.rdns.size() - base.rdns.size();
    for (std::size_t i = 0; i < base.rdns.size(); ++i)
        if (!same_rdn(dn.rdns[skip + i], base.rdns[i])) return false;
    return true;
}

IdentityResult<UserIdentity> parse_user_identity(std::string_view text) {
    const std::string shown = "userIdentity '" + std::string(text) + "'";
    if (text.find('\0') != std::string_view::npos)
        return std::unexpected(refusal(ChangeOutcome::malformed, "userIdentity with a NUL byte"));
    // RFC 4513 authzId; its ABNF literals ignore case.
    if (starts_with_ci(text, "u:")) {
        if (text.size() == 2) return std::unexpected(refusal(ChangeOutcome::malformed, shown + " names no user"));
        return UserIdentity{false, std::string(text.substr(2))};
    }
    const bool authz_dn = starts_with_ci(text, "dn:");
    const std::string_view body = authz_dn ? text.substr(3) : text;
    if (!authz_dn && !looks_like_dn(body)) return UserIdentity{false, std::string(body)};
    if (auto dn = parse_dn(body); !dn) {
        std::string why = shown + " is not a valid DN: " + dn.error().message;
        if (!authz_dn) why += " (a name with '=' that is no DN is sent as u:NAME)";
        return std::unexpected(refusal(ChangeOutcome::malformed, why));
    }
    return UserIdentity{true, std::string(body)};
}

IdentityResult<std::string> external_user_id(std::string_view text, const store::Adapter& adapter) {
    PWSYNC_ASSIGN(UserIdentity id, parse_user_identity(text));
    if (!id.is_dn) return id.value;
    auto property = [&](const char* k) {
        auto it = adapter.properties.find(k);
        return it == adapter.properties.end() ? std::string() : it->second;
    };
    if (adapter.type != "ldap")
        return std::unexpected(refusal(ChangeOutcome::refused,
                                       "adapter '" + adapter.name + "' (type " + adapter.type +
                                           ") has no DNs for its users: send the user id, not a DN"));
    const Dn dn = *parse_dn(id.value);  // parse_user_identity checked it
    if (const auto templ = property("dn-template"); !templ.empty()) return from_template(id, dn, adapter, templ);
    return from_base_filter(id, dn, adapter, property("base"), property("filter"));
}

IdentityResult<std::string> windows_account(std::string_view text, const AccountOfDn& account_of_dn) {
    PWSYNC_ASSIGN(UserIdentity id, parse_user_identity(text));
    if (!id.is_dn || !account_of_dn) return id.value;
    auto account = account_of_dn(id.value);
    if (account) return *account;
    const Error& e = account.error();
    const std::string why = "the DN '" + id.value + "' names no Windows account: " + e.message;
    switch (e.code) {
    case Errc::not_found:
    case Errc::invalid_argument:
    case Errc::refused: return std::unexpected(refusal(ChangeOutcome::no_mapping, why));
    case Errc::unavailable:
    case Errc::timeout:
        return std::unexpected(refusal(ChangeOutcome::unavailable, "the DN '" + id.value + "' could not be resolved: " + e.message));
    default: return std::unexpected(refusal(ChangeOutcome::failed, "the DN '" + id.value + "' could not be resolved: " + e.message));
    }
}

}  // namespace pwsync::gateway
