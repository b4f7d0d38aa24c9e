// The external user id template of a mapping rule.
#include <cctype>
#include <charconv>

#include "pwsync/rules.h"

namespace pwsync::rules {
namespace {

Error bad(std::string_view text, std::size_t at, const std::string& why) {
    return Error{Errc::invalid_argument,
                 "external template '" + std::string(text) + "', at character " + std::to_string(at + 1) + ": " + why};
}

std::string trim(std::string_view s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    return std::string(s);
}

bool attribute_name(std::string_view s) {
    if (s.empty() || std::isalpha(static_cast<unsigned char>(s.front())) == 0) return false;
    for (unsigned char c : s)
        if (std::isalnum(c) == 0 && c != '-') return false;
    return true;
}

// The first `n` characters of UTF-8 text (a continuation byte is not one).
std::string first_chars(const std::string& s, std::size_t n) {
    std::size_t chars = 0, i = 0;
    for (; i < s.size(); ++i) {
        if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80) {
            if (chars == n) break;
            ++chars;
        }
    }
    return s.substr(0, i);
}

Result<Template::Step> parse_step(std::string_view text, std::size_t at, std::string_view step) {
    const std::string s = trim(step);
    const auto space = s.find(' ');
    const std::string op = ascii_lower(s.substr(0, space));
    Template::Step out;
    if (op == "truncate") {
        const std::string arg = space == std::string::npos ? "" : trim(std::string_view(s).substr(space + 1));
        std::size_t n = 0;
        auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), n);
        if (arg.empty() || ec != std::errc{} || end != arg.data() + arg.size() || n == 0)
            return std::unexpected(bad(text, at, "truncate needs a positive number of characters, e.g. 'truncate 8'"));
        out.op = Template::Step::truncate;
        out.n = n;
        return out;
    }
    if (space != std::string::npos) return std::unexpected(bad(text, at, "'" + op + "' takes no argument"));
    if (op == "upper") out.op = Template::Step::upper;
    else if (op == "lower") out.op = Template::Step::lower;
    else if (op == "localpart") out.op = Template::Step::localpart;
    else
        return std::unexpected(
            bad(text, at, "unknown transform '" + op + "' (known: upper, lower, localpart, truncate N)"));
    return out;
}

}  // namespace

Result<Template> Template::parse(std::string_view text) {
    Template t;
    t.text_ = text;
    std::string literal;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char ch = text[i];
        if (ch == '}') {
            if (i + 1 < text.size() && text[i + 1] == '}') { literal += '}'; ++i; continue; }
            return std::unexpected(bad(text, i, "'}' without '{' (write '}}' for a brace)"));
        }
        if (ch != '{') { literal += ch; continue; }
        if (i + 1 < text.size() && text[i + 1] == '{') { literal += '{'; ++i; continue; }
        const auto close = text.find('}', i);
        if (close == std::string_view::npos) return std::unexpected(bad(text, i, "'{' is not closed"));
        const std::string_view field = text.substr(i + 1, close - i - 1);
        if (field.find('{') != std::string_view::npos) return std::unexpected(bad(text, i, "'{' inside a field"));
        if (!literal.empty()) t.pieces_.push_back(Piece{std::move(literal), {}, {}}), literal.clear();
        Piece p;
        std::size_t pos = 0;
        auto bar = field.find('|');
        p.attribute = trim(field.substr(0, bar));
        if (!attribute_name(p.attribute))
            return std::unexpected(bad(text, i, "'" + p.attribute + "' is not an attribute name"));
        while (bar != std::string_view::npos) {
            pos = bar + 1;
            bar = field.find('|', pos);
            PWSYNC_ASSIGN(Step s, parse_step(text, i + 1 + pos, field.substr(pos, bar == std::string_view::npos ? bar : bar - pos)));
            p.steps.push_back(s);
        }
        bool seen = false;
        for (const auto& a : t.attributes_) seen = seen || ascii_lower(a) == ascii_lower(p.attribute);
        if (!seen) t.attributes_.push_back(p.attribute);
        t.pieces_.push_back(std::move(p));
        i = close;
    }
    if (!literal.empty()) t.pieces_.push_back(Piece{std::move(literal), {}, {}});
    if (t.attributes_.empty())
        return std::unexpected(Error{Errc::invalid_argument, "external template '" + std::string(text) +
                                                                 "' names no attribute (e.g. {sAMAccountName})"});
    return t;
}

std::expected<std::string, Template::Missing> Template::render(const Lookup& value_of) const {
    std::string out;
    for (const auto& p : pieces_) {
        if (p.attribute.empty()) { out += p.literal; continue; }
        const std::string* v = value_of(p.attribute);
        if (v == nullptr || v->empty())
            return std::unexpected(Missing{p.attribute, "missing attribute " + p.attribute});
        std::string s = *v;
        for (const auto& step : p.steps) {
            switch (step.op) {
                case Step::upper:
                    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
                    break;
                case Step::lower: s = ascii_lower(s); break;
                case Step::localpart:
                    if (auto at = s.rfind('@'); at != std::string::npos) s.resize(at);
                    break;
                case Step::truncate: s = first_chars(s, step.n); break;
            }
        }
        out += s;
    }
    if (out.empty()) return std::unexpected(Missing{{}, "the template gives an empty external user id"});
    return out;
}

}  // namespace pwsync::rules
