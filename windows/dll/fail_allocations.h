// Test build only (pwsyncflt-oom.dll): every allocation after
// InitializeChangeNotify throws std::bad_alloc, as when lsass runs out of
// memory, so the wine test can show no exception leaves the exports.
#pragma once

namespace pwsync::win::test {
void fail_allocations() noexcept;
}
