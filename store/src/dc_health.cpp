#include "pwsync/dc_health.h"

#include <algorithm>
#include <charconv>

namespace pwsync::store {
namespace {

std::int64_t unix_seconds(TimePoint t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// Names and principals never hold tabs or line breaks; if one did, it would
// split the record.
std::string clean(std::string_view s) {
    std::string out(s);
    std::replace_if(out.begin(), out.end(), [](char ch) { return ch == '\t' || ch == '\n' || ch == '\r' || ch == ','; }, '_');
    return out;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    for (;;) {
        const auto at = s.find(sep);
        out.push_back(s.substr(0, at));
        if (at == std::string_view::npos) return out;
        s.remove_prefix(at + 1);
    }
}

template <class T>
bool number(std::string_view s, T& v) {
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() && p == s.data() + s.size();
}

void prune(DcHealth& h, std::int64_t now) {
    const std::int64_t from = now - std::chrono::duration_cast<std::chrono::seconds>(kDcHealthWindow).count();
    std::erase_if(h.recent, [&](const DcChange& c) { return c.at <= from; });
    if (h.recent.size() > kDcHealthRecentMax)
        h.recent.erase(h.recent.begin(), h.recent.begin() + static_cast<std::ptrdiff_t>(h.recent.size() - kDcHealthRecentMax));
}

}  // namespace

const char* dc_verdict_name(DcVerdict v) noexcept {
    switch (v) {
    case DcVerdict::capturing: return "capturing";
    case DcVerdict::silent: return "silent";
    case DcVerdict::partly: return "partly";
    case DcVerdict::unknown: return "unknown";
    }
    return "?";
}

DcWindowCounts dc_window(const DcHealth& h, TimePoint now) {
    const std::int64_t from = unix_seconds(now) - std::chrono::duration_cast<std::chrono::seconds>(kDcHealthWindow).count();
    DcWindowCounts n;
    for (const auto& c : h.recent)
        if (c.at > from) ++(c.captured ? n.captured : n.uncaptured);
    return n;
}

DcVerdict dc_verdict(const DcHealth& h, TimePoint now) {
    const auto n = dc_window(h, now);
    if (n.captured > 0 && n.uncaptured > 0) return DcVerdict::partly;
    if (n.captured > 0) return DcVerdict::capturing;
    if (n.uncaptured > 0) return DcVerdict::silent;
    if (h.last_change == 0) return DcVerdict::unknown;
    return h.last_uncaptured >= h.last_capture && h.last_uncaptured != 0 ? DcVerdict::silent : DcVerdict::capturing;
}

std::string encode_dc_health(const std::vector<DcHealth>& all) {
    std::string out;
    for (const auto& h : all) {
        out += clean(h.dc) + '\t' + std::to_string(h.captured) + '\t' + std::to_string(h.uncaptured) + '\t' +
               std::to_string(h.last_change) + '\t' + std::to_string(h.last_capture) + '\t' +
               std::to_string(h.last_uncaptured) + '\t' + clean(h.last_principal) + '\t';
        for (std::size_t i = 0; i < h.recent.size(); ++i)
            out += (i ? "," : "") + std::to_string(h.recent[i].at) + (h.recent[i].captured ? "c" : "u");
        out += '\n';
    }
    return out;
}

std::vector<DcHealth> decode_dc_health(std::string_view text) {
    std::vector<DcHealth> out;
    for (const auto line : split(text, '\n')) {
        const auto f = split(line, '\t');
        if (f.size() != 8 || f[0].empty()) continue;
        DcHealth h;
        h.dc = std::string(f[0]);
        if (!number(f[1], h.captured) || !number(f[2], h.uncaptured) || !number(f[3], h.last_change) ||
            !number(f[4], h.last_capture) || !number(f[5], h.last_uncaptured))
            continue;
        h.last_principal = std::string(f[6]);
        if (!f[7].empty())
            for (const auto item : split(f[7], ',')) {
                DcChange c;
                if (item.size() < 2 || (item.back() != 'c' && item.back() != 'u') || !number(item.substr(0, item.size() - 1), c.at))
                    continue;
                c.captured = item.back() == 'c';
                h.recent.push_back(c);
            }
        out.push_back(std::move(h));
    }
    return out;
}

void note_dc_change(std::vector<DcHealth>& all, std::string_view dc, bool captured, TimePoint now, std::string_view principal) {
    const std::string name = clean(dc.empty() ? std::string_view("unknown") : dc);
    auto it = std::find_if(all.begin(), all.end(), [&](const DcHealth& h) { return ascii_lower(h.dc) == ascii_lower(name); });
    if (it == all.end()) {
        all.push_back({});
        it = std::prev(all.end());
        it->dc = name;
    }
    const std::int64_t t = unix_seconds(now);
    it->last_change = t;
    if (captured) {
        ++it->captured;
        it->last_capture = t;
        if (!principal.empty()) it->last_principal = clean(principal);
    } else {
        ++it->uncaptured;
        it->last_uncaptured = t;
    }
    it->recent.push_back({t, captured});
    for (auto& h : all) prune(h, t);
}

Result<std::vector<DcHealth>> dc_health(const ReadTxn& r) {
    PWSYNC_ASSIGN(auto text, r.cursor(kDcHealthCursor));
    if (!text) return std::vector<DcHealth>{};
    return decode_dc_health(*text);
}

Status record_dc_change(WriteTxn& w, std::string_view dc, bool captured, TimePoint now, std::string_view principal) {
    PWSYNC_ASSIGN(auto all, dc_health(w));
    note_dc_change(all, dc, captured, now, principal);
    return w.set_cursor(kDcHealthCursor, encode_dc_health(all));
}

std::string encode_stale_info(const StaleInfo& s) {
    return std::to_string(s.since) + '\t' + std::to_string(s.last) + '\t' + clean(s.dc);
}

std::optional<StaleInfo> decode_stale_info(std::string_view text) {
    const auto f = split(text, '\t');
    StaleInfo s;
    if (f.size() != 3 || !number(f[0], s.since) || !number(f[1], s.last)) return std::nullopt;
    s.dc = std::string(f[2]);
    return s;
}

Result<std::optional<StaleInfo>> stale_info(const ReadTxn& r, std::string_view key) {
    PWSYNC_ASSIGN(auto text, r.cursor(std::string(kStaleCursorPrefix) + ascii_lower(key)));
    if (!text) return std::optional<StaleInfo>{};
    return decode_stale_info(*text);
}

Status note_stale(WriteTxn& w, std::string_view key, std::string_view dc, TimePoint now, bool fresh) {
    PWSYNC_ASSIGN(auto old, stale_info(w, key));
    StaleInfo s;
    s.last = unix_seconds(now);
    s.since = old && !fresh ? old->since : s.last;
    s.dc = dc.empty() ? "unknown" : std::string(dc);
    return w.set_cursor(std::string(kStaleCursorPrefix) + ascii_lower(key), encode_stale_info(s));
}

Status clear_stale(WriteTxn& w, std::string_view key) {
    // The cursors table has no delete: an empty value reads as none.
    const std::string name = std::string(kStaleCursorPrefix) + ascii_lower(key);
    PWSYNC_ASSIGN(auto old, w.cursor(name));
    if (!old || old->empty()) return {};
    return w.set_cursor(name, "");
}

}  // namespace pwsync::store
