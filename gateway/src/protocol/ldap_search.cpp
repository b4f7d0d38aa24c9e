#include "ldap_search.h"

#include <algorithm>
#include <memory>

#include "ldap_codec.h"

namespace pwsync::gateway::ldap {
namespace {

constexpr ber_tag_t kAnd = 0xa0, kOr = 0xa1, kNot = 0xa2, kEquality = 0xa3, kPresent = 0x87;
constexpr ber_tag_t kEntry = 0x64;
constexpr int kMaxFilterDepth = 16;

bool same_text(std::string_view a, std::string_view b) { return ascii_lower(a) == ascii_lower(b); }

Result<Filter> decode_filter(ber_tag_t tag, std::string_view contents, int depth) {
    if (depth > kMaxFilterDepth) return protocol_error("the search filter is nested too deeply");
    Filter f;
    // The next element of `r` as one more child of f (and, or, not).
    auto add_child = [&](BerReader& r, const char* malformed) -> Status {
        auto e = r.any_element();
        if (!e) return protocol_error(malformed);
        PWSYNC_ASSIGN(auto child, decode_filter(e->first, e->second, depth + 1));
        f.children.push_back(std::move(child));
        return {};
    };
    switch (tag) {
        case kAnd:
        case kOr: {
            f.kind = tag == kAnd ? Filter::Kind::all_of : Filter::Kind::any_of;
            auto set = BerReader::over(contents);
            if (!set) return protocol_error("cannot read the search filter");
            while (!set->at_end()) PWSYNC_TRY(add_child(*set, "the search filter is malformed"));
            return f;
        }
        case kNot: {
            f.kind = Filter::Kind::negation;
            auto inner = BerReader::over(contents);
            if (!inner) return protocol_error("cannot read the search filter");
            PWSYNC_TRY(add_child(*inner, "the search filter's not is malformed"));
            if (!inner->at_end()) return protocol_error("the search filter's not is malformed");
            return f;
        }
        case kEquality: {
            f.kind = Filter::Kind::equality;
            auto ava = BerReader::over(contents);
            if (!ava) return protocol_error("cannot read the search filter");
            auto attr = ava->element(LBER_OCTETSTRING);
            auto value = ava->element(LBER_OCTETSTRING);
            if (!attr || !value || !ava->at_end()) return protocol_error("the search filter's equality is malformed");
            f.attribute = std::string(*attr);
            f.value = std::string(*value);
            return f;
        }
        case kPresent:
            f.kind = Filter::Kind::present;
            f.attribute = std::string(contents);
            return f;
        default:
            return fail(Errc::invalid_argument,
                        "only present, equality, and, or and not filters are supported on cn=monitor");
    }
}

}  // namespace

Result<SearchRequest> decode_search(std::string_view contents) {
    auto r = BerReader::over(contents);
    if (!r) return protocol_error("cannot read the SearchRequest");
    SearchRequest req;
    const auto base = r->element(LBER_OCTETSTRING);
    const auto scope = r->integer(LBER_ENUMERATED);
    const auto deref = r->integer(LBER_ENUMERATED);
    const auto size = r->integer(LBER_INTEGER);
    const auto time = r->integer(LBER_INTEGER);
    const auto types = r->integer(LBER_BOOLEAN);
    if (!base || !scope || !deref || !size || !time || !types) return protocol_error("the SearchRequest is malformed");
    if (*scope < 0 || *scope > 2) return protocol_error("the SearchRequest has an unknown scope");
    if (*size < 0 || *time < 0) return protocol_error("the SearchRequest has a negative limit");
    req.base = std::string(*base);
    req.scope = static_cast<Scope>(*scope);
    req.size_limit = *size;
    req.types_only = *types != 0;
    const auto filter = r->any_element();
    if (!filter) return protocol_error("the SearchRequest has no filter");
    if (auto f = decode_filter(filter->first, filter->second, 0)) req.filter = std::move(*f);
    else if (f.error().code == Errc::invalid_argument) req.unsupported = f.error().message;
    else return std::unexpected(f.error());
    auto attrs = r->enter(LBER_SEQUENCE);
    if (!attrs || !r->at_end()) return protocol_error("the SearchRequest's attribute list is malformed");
    while (!attrs->at_end()) {
        auto a = attrs->element(LBER_OCTETSTRING);
        if (!a) return protocol_error("the SearchRequest's attribute list is malformed");
        req.attributes.emplace_back(*a);
    }
    return req;
}

std::string normalize_dn(std::string_view dn) {
    std::string out;
    out.reserve(dn.size());
    for (std::size_t i = 0; i < dn.size(); ++i) {
        const char ch = dn[i];
        if (ch == ' ') {
            // Spaces next to separators do not count.
            const bool after = !out.empty() && (out.back() == ',' || out.back() == '=');
            std::size_t j = i;
            while (j < dn.size() && dn[j] == ' ') ++j;
            const bool before = j == dn.size() || dn[j] == ',' || dn[j] == '=';
            if (after || before || out.empty()) {
                i = j - 1;
                continue;
            }
        }
        out += static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    }
    return out;
}

bool in_scope(std::string_view entry_dn, std::string_view base_dn, Scope scope) {
    const std::string e = normalize_dn(entry_dn), b = normalize_dn(base_dn);
    if (e == b) return scope != Scope::one_level;
    if (scope == Scope::base) return false;
    if (b.empty()) return scope == Scope::subtree || e.find(',') == std::string::npos;
    if (e.size() <= b.size() + 1 || e.compare(e.size() - b.size(), b.size(), b) != 0 || e[e.size() - b.size() - 1] != ',')
        return false;
    if (scope == Scope::subtree) return true;
    return e.substr(0, e.size() - b.size() - 1).find(',') == std::string::npos;  // one level: a direct child
}

bool matches(const Filter& f, const SearchEntry& entry) {
    auto values = [&](std::string_view attr) -> const std::vector<std::string>* {
        for (const auto& [name, vals] : entry.attributes)
            if (same_text(name, attr)) return &vals;
        return nullptr;
    };
    switch (f.kind) {
        case Filter::Kind::all_of:
            return std::ranges::all_of(f.children, [&](const Filter& c) { return matches(c, entry); });
        case Filter::Kind::any_of:
            return std::ranges::any_of(f.children, [&](const Filter& c) { return matches(c, entry); });
        case Filter::Kind::negation: return !f.children.empty() && !matches(f.children.front(), entry);
        case Filter::Kind::present: return values(f.attribute) != nullptr;
        case Filter::Kind::equality: {
            const auto* vals = values(f.attribute);
            return vals && std::ranges::any_of(*vals, [&](const std::string& v) { return same_text(v, f.value); });
        }
    }
    return false;
}

Result<std::string> encode_entry(int message_id, const SearchEntry& entry, const SearchRequest& request) {
    BerWriting ber(ber_alloc_t(LBER_USE_DER));
    if (!ber) return fail(Errc::internal, "out of memory encoding a search entry");
    const bool none = std::ranges::any_of(request.attributes, [](const std::string& a) { return a == "1.1"; }) &&
                      request.attributes.size() == 1;
    const bool all = request.attributes.empty() ||
                     std::ranges::any_of(request.attributes, [](const std::string& a) { return a == "*"; });
    auto wanted = [&](std::string_view name) {
        if (none) return false;
        if (all) return true;
        return std::ranges::any_of(request.attributes, [&](const std::string& a) { return same_text(a, name); });
    };
    int rc = ber_printf(ber.get(), "{it{o{", static_cast<ber_int_t>(message_id), kEntry, entry.dn.data(),
                        static_cast<ber_len_t>(entry.dn.size()));
    for (const auto& [name, vals] : entry.attributes) {
        if (rc == -1 || !wanted(name)) continue;
        rc = ber_printf(ber.get(), "{o[", name.data(), static_cast<ber_len_t>(name.size()));
        if (!request.types_only)
            for (const auto& v : vals)
                if (rc != -1) rc = ber_printf(ber.get(), "o", v.data(), static_cast<ber_len_t>(v.size()));
        if (rc != -1) rc = ber_printf(ber.get(), "]}");
    }
    if (rc != -1) rc = ber_printf(ber.get(), "}}}");
    berval bv{};
    if (rc == -1 || ber_flatten2(ber.get(), &bv, 0) != 0) return fail(Errc::internal, "cannot encode a search entry");
    return std::string(bv.bv_val, bv.bv_len);
}

}  // namespace pwsync::gateway::ldap
