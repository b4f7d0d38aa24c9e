// Per-adapter password transforms (ESSO "password filters"): what a Windows
// password becomes before it is sent to a system with narrower rules, e.g.
// RACF's 8 upper-case characters. Set as adapter properties; see
// docs/GATEWAY.md "Password transforms" for the order they apply in.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pwsync/util.h"

namespace pwsync::gateway {

enum class LetterCase { as_is, upper, lower };
enum class PadSide { none, start, end };

class PasswordTransform {
public:
    // The adapter properties that configure a transform (every type has them).
    static const std::vector<std::string>& property_names();

    // Reads the password-* properties; bad values are errors naming the key.
    static Result<PasswordTransform> from_properties(const std::map<std::string, std::string>& properties);

    // True when it changes nothing (no password-* property set).
    bool identity() const noexcept { return identity_; }

    // The password as this adapter must receive it, or Errc::invalid_argument
    // with a reason that never contains the password.
    Result<Secret> apply(const Secret& password) const;

private:
    bool identity_ = true;
    LetterCase letter_case_ = LetterCase::as_is;
    std::vector<std::string> remove_;            // characters (UTF-8 each)
    std::vector<std::string> from_, to_;         // substitute from_[i] by to_[i]
    PadSide pad_ = PadSide::none;
    std::string pad_char_;
    std::optional<std::size_t> min_length_, max_length_;
    bool truncate_ = false;
};

}  // namespace pwsync::gateway
