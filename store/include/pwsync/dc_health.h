// Which DC is not capturing: per domain controller, the password changes the
// watcher saw made there and whether a capture explained them; and, per
// account whose mappings went stale, since when and from which DC. Kept in
// the store's cursors table (one record for all DCs, one per stale
// account), written in the watcher's own transactions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pwsync/store.h"

namespace pwsync::store {

inline constexpr std::string_view kDcHealthCursor = "dc-health";
inline constexpr std::string_view kStaleCursorPrefix = "stale/";
// The window of "uncaptured (last 24 h)" and of the verdict.
inline constexpr std::chrono::hours kDcHealthWindow{24};
// Changes remembered per DC inside the window (older ones still count in
// the totals).
inline constexpr std::size_t kDcHealthRecentMax = 5000;

struct DcChange {
    std::int64_t at = 0;  // unix seconds
    bool captured = false;
};

struct DcHealth {
    std::string dc;  // DNS host name, or "{invocationId}", or "unknown"
    std::uint64_t captured = 0, uncaptured = 0;  // since the store began counting
    std::int64_t last_change = 0, last_capture = 0, last_uncaptured = 0;  // unix seconds, 0: never
    std::string last_principal;  // the principal whose capture explained the last captured change
    std::vector<DcChange> recent;  // oldest first, within the window
};

enum class DcVerdict {
    capturing,  // every change in the window was captured
    silent,     // none was
    partly,     // some were, some not
    unknown,    // no change seen yet
};
const char* dc_verdict_name(DcVerdict v) noexcept;

struct DcWindowCounts {
    std::uint64_t captured = 0, uncaptured = 0;
};
DcWindowCounts dc_window(const DcHealth& h, TimePoint now);
// From the window; a DC with no change in it keeps what its last change said.
DcVerdict dc_verdict(const DcHealth& h, TimePoint now);

// The record's text: one line per DC, tab-separated. Lines that do not
// decode are skipped (a damaged record loses counts, never the watcher).
std::string encode_dc_health(const std::vector<DcHealth>& all);
std::vector<DcHealth> decode_dc_health(std::string_view text);
// Counts one change made on `dc` (empty: "unknown") at `now`.
void note_dc_change(std::vector<DcHealth>& all, std::string_view dc, bool captured, TimePoint now,
                    std::string_view principal = {});

Result<std::vector<DcHealth>> dc_health(const ReadTxn& r);
Status record_dc_change(WriteTxn& w, std::string_view dc, bool captured, TimePoint now, std::string_view principal = {});

// Why an account's mappings are stale. `key`: the account's canonical name
// (its sAMAccountName, lower case).
struct StaleInfo {
    std::int64_t since = 0;  // unix seconds: the first uncaptured change since they were last in step
    std::int64_t last = 0;   // the newest one
    std::string dc;          // the DC the newest one came from
};
std::string encode_stale_info(const StaleInfo& s);
std::optional<StaleInfo> decode_stale_info(std::string_view text);
Result<std::optional<StaleInfo>> stale_info(const ReadTxn& r, std::string_view key);
// `fresh`: the mappings were in step until now (since starts again).
Status note_stale(WriteTxn& w, std::string_view key, std::string_view dc, TimePoint now, bool fresh);
Status clear_stale(WriteTxn& w, std::string_view key);

}  // namespace pwsync::store
