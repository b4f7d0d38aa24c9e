// Search for the read-only cn=monitor subtree: the request, its filter
// (present, equality, and, or, not — what monitoring tools send), matching
// against entries the handler supplies, and the SearchResultEntry encoding.
#pragma once

#include <lber.h>

#include <string>
#include <string_view>
#include <vector>

#include "listener.h"
#include "pwsync/util.h"

namespace pwsync::gateway::ldap {

struct Filter {
    enum class Kind { all_of, any_of, negation, equality, present };
    Kind kind = Kind::present;
    std::string attribute;   // equality, present
    std::string value;       // equality
    std::vector<Filter> children;
};

enum class Scope { base = 0, one_level = 1, subtree = 2 };

struct SearchRequest {
    std::string base;
    Scope scope = Scope::base;
    int size_limit = 0;      // 0: none
    bool types_only = false;
    Filter filter;
    std::vector<std::string> attributes;  // empty or "*": all; "1.1": none
    std::string unsupported;  // set: a well-formed request we do not serve (why)
};

// Decodes the contents of a SearchRequest [APPLICATION 3]. A filter we do not
// evaluate (substrings, ordering, approx, extensible) sets `unsupported`
// (answered 53); a malformed request is Errc::protocol.
Result<SearchRequest> decode_search(std::string_view contents);

// Case-insensitive DN and attribute comparison; DNs are compared after
// removing spaces around ',' and '='.
std::string normalize_dn(std::string_view dn);
bool in_scope(std::string_view entry_dn, std::string_view base_dn, Scope scope);
bool matches(const Filter& filter, const SearchEntry& entry);

// A SearchResultEntry [APPLICATION 4] with the requested attributes.
Result<std::string> encode_entry(int message_id, const SearchEntry& entry, const SearchRequest& request);

}  // namespace pwsync::gateway::ldap
