#include "password_transform.h"

#include <algorithm>
#include <charconv>

namespace pwsync::gateway {
namespace {

// Bytes of the UTF-8 sequence starting at s[i], 0 when it is not valid UTF-8
// (overlong forms, surrogates and code points past U+10FFFF included).
std::size_t sequence_length(std::string_view s, std::size_t i) {
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
    const unsigned char c = b(0);
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else return 0;
    if (i + n > s.size() || b(1) < lo || b(1) > hi) return 0;
    for (std::size_t k = 2; k < n; ++k)
        if (b(k) < 0x80 || b(k) > 0xBF) return 0;
    return n;
}

// The characters of `s` as views into it; nullopt when it is not UTF-8.
std::optional<std::vector<std::string_view>> characters(std::string_view s) {
    std::vector<std::string_view> out;
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = sequence_length(s, i);
        if (n == 0) return std::nullopt;
        out.push_back(s.substr(i, n));
        i += n;
    }
    return out;
}

Result<std::vector<std::string>> character_list(const std::string& key, const std::string& value) {
    auto chars = characters(value);
    if (!chars) return fail(Errc::invalid_argument, "property " + key + " is not valid UTF-8");
    return std::vector<std::string>(chars->begin(), chars->end());
}

Result<std::size_t> length_property(const std::string& key, const std::string& value) {
    std::size_t n = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc{} || end != value.data() + value.size() || n < 1 || n > 1024)
        return fail(Errc::invalid_argument, "property " + key + " = " + value + ": expected a whole number from 1 to 1024");
    return n;
}

}  // namespace

const std::vector<std::string>& PasswordTransform::property_names() {
    static const std::vector<std::string> names = {
        "password-remove",     "password-substitute-from", "password-substitute-to", "password-case",
        "password-max-length", "password-truncate",        "password-min-length",    "password-pad",
        "password-pad-char",
    };
    return names;
}

Result<PasswordTransform> PasswordTransform::from_properties(const std::map<std::string, std::string>& p) {
    PasswordTransform t;
    auto get = [&](const char* k) -> const std::string* {
        auto it = p.find(k);
        return it == p.end() ? nullptr : &it->second;
    };
    auto bad = [](const std::string& key, const std::string& why) { return fail(Errc::invalid_argument, "property " + key + ": " + why); };
    for (const auto& name : property_names())
        if (p.contains(name)) t.identity_ = false;
    if (const auto* v = get("password-remove")) { PWSYNC_ASSIGN(t.remove_, character_list("password-remove", *v)); }
    const auto* from = get("password-substitute-from");
    const auto* to = get("password-substitute-to");
    if ((from == nullptr) != (to == nullptr))
        return bad("password-substitute-from", "password-substitute-from and password-substitute-to go together");
    if (from != nullptr) {
        PWSYNC_ASSIGN(t.from_, character_list("password-substitute-from", *from));
        PWSYNC_ASSIGN(t.to_, character_list("password-substitute-to", *to));
        if (t.from_.size() != t.to_.size())
            return bad("password-substitute-to", "must have as many characters as password-substitute-from");
    }
    if (const auto* v = get("password-case")) {
        if (*v == "upper") t.letter_case_ = LetterCase::upper;
        else if (*v == "lower") t.letter_case_ = LetterCase::lower;
        else if (*v == "as-is") t.letter_case_ = LetterCase::as_is;
        else return bad("password-case", "expected upper, lower or as-is, got '" + *v + "'");
    }
    if (const auto* v = get("password-min-length")) { PWSYNC_ASSIGN(t.min_length_, length_property("password-min-length", *v)); }
    if (const auto* v = get("password-max-length")) { PWSYNC_ASSIGN(t.max_length_, length_property("password-max-length", *v)); }
    if (t.min_length_ && t.max_length_ && *t.min_length_ > *t.max_length_)
        return bad("password-min-length", "is larger than password-max-length");
    if (const auto* v = get("password-truncate")) {
        if (*v == "yes") t.truncate_ = true;
        else if (*v != "no") return bad("password-truncate", "expected yes or no");
        if (t.truncate_ && !t.max_length_) return bad("password-truncate", "needs password-max-length");
    }
    if (const auto* v = get("password-pad")) {
        if (*v == "start") t.pad_ = PadSide::start;
        else if (*v == "end") t.pad_ = PadSide::end;
        else if (*v != "no") return bad("password-pad", "expected start, end or no, got '" + *v + "'");
    }
    if (t.pad_ != PadSide::none) {
        if (!t.min_length_) return bad("password-pad", "needs password-min-length (the length to pad to)");
        const auto* c = get("password-pad-char");
        if (c == nullptr) return bad("password-pad", "needs password-pad-char");
        PWSYNC_ASSIGN(auto chars, character_list("password-pad-char", *c));
        if (chars.size() != 1) return bad("password-pad-char", "must be exactly one character");
        t.pad_char_ = chars.front();
    } else if (p.contains("password-pad-char")) {
        return bad("password-pad-char", "has no effect without password-pad = start or end");
    }
    return t;
}

Result<Secret> PasswordTransform::apply(const Secret& password) const {
    if (identity_) return password.clone();
    auto chars = characters(password.view());
    if (!chars) return fail(Errc::invalid_argument, "the password is not valid UTF-8");
    auto in = [](const std::vector<std::string>& set, std::string_view c) { return std::find(set.begin(), set.end(), c); };
    // 1 remove, 2 substitute, 3 letter case: one character at a time.
    Secret out;
    std::size_t length = 0;
    for (std::string_view c : *chars) {
        if (in(remove_, c) != remove_.end()) continue;
        if (auto it = in(from_, c); it != from_.end()) c = to_[static_cast<std::size_t>(it - from_.begin())];
        if (c.size() == 1 && letter_case_ != LetterCase::as_is) {
            char ch = c[0];
            if (letter_case_ == LetterCase::upper && ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
            if (letter_case_ == LetterCase::lower && ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
            out.push_back(ch);
        } else {
            out.append(c);
        }
        ++length;
    }
    // 4 maximum length: truncate or refuse.
    if (max_length_ && length > *max_length_) {
        if (!truncate_)
            return fail(Errc::invalid_argument, "the password is longer than the " + std::to_string(*max_length_) +
                                                    " characters this adapter accepts (password-max-length; password-truncate is off)");
        auto kept = characters(out.view());
        std::size_t bytes = 0;
        for (std::size_t i = 0; i < *max_length_; ++i) bytes += (*kept)[i].size();
        wipe(out.data() + bytes, out.size() - bytes);
        out.resize(bytes);
        length = *max_length_;
    }
    // 5 minimum length: pad or refuse.
    if (min_length_ && length < *min_length_) {
        if (pad_ == PadSide::none)
            return fail(Errc::invalid_argument, "the password is shorter than the " + std::to_string(*min_length_) +
                                                    " characters this adapter needs (password-min-length; password-pad is off)");
        Secret padded;
        if (pad_ == PadSide::start)
            for (std::size_t i = length; i < *min_length_; ++i) padded.append(pad_char_);
        padded.append(out.view());
        if (pad_ == PadSide::end)
            for (std::size_t i = length; i < *min_length_; ++i) padded.append(pad_char_);
        out = std::move(padded);
    }
    if (out.empty()) return fail(Errc::invalid_argument, "nothing is left of the password after this adapter's transforms");
    return out;
}

}  // namespace pwsync::gateway
