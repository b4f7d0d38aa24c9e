#include "complexity.h"

#include <vector>

#include "pwsync/util.h"

namespace pwsync::cli {
namespace {

// `hay` is the password: its lower-cased copy is wiped after use.
bool contains_ci(std::string_view hay, std::string_view needle) {
    std::string h = ascii_lower(hay);
    const bool found = h.find(ascii_lower(needle)) != std::string::npos;
    wipe(h.data(), h.size());
    return found;
}

}  // namespace

std::string complexity_problem(std::string_view password, std::string_view account, std::string_view full_name) {
    bool upper = false, lower = false, digit = false, symbol = false, other = false;
    for (std::size_t i = 0; i < password.size(); ++i) {
        const auto c = static_cast<unsigned char>(password[i]);
        if (c >= 0x80) {
            other = true;  // a non-ASCII letter or symbol: its own category
            while (i + 1 < password.size() && (static_cast<unsigned char>(password[i + 1]) & 0xC0) == 0x80) ++i;
        } else if (c >= 'A' && c <= 'Z') upper = true;
        else if (c >= 'a' && c <= 'z') lower = true;
        else if (c >= '0' && c <= '9') digit = true;
        else symbol = true;
    }
    const int categories = upper + lower + digit + symbol + other;
    if (categories < 3)
        return "the password does not meet the complexity criteria (characters from three of: upper case, lower case, "
               "digits, symbols, other letters)";
    // A DOMAIN\ prefix is not part of the account name.
    if (const auto slash = account.find('\\'); slash != std::string_view::npos) account.remove_prefix(slash + 1);
    if (account.size() >= 3 && contains_ci(password, account))
        return "the password does not meet the complexity criteria (it contains the account name)";
    std::string token;
    auto check = [&]() {
        const bool bad = token.size() >= 3 && contains_ci(password, token);
        token.clear();
        return bad;
    };
    for (char ch : full_name) {
        if (ch == ',' || ch == '.' || ch == '-' || ch == '_' || ch == '#' || ch == ' ' || ch == '\t') {
            if (check()) return "the password does not meet the complexity criteria (it contains part of the full name)";
        } else {
            token.push_back(ch);
        }
    }
    if (check()) return "the password does not meet the complexity criteria (it contains part of the full name)";
    return {};
}

}  // namespace pwsync::cli
