// Replaces operator new inside pwsyncflt-oom.dll only (the DLL links
// libstdc++ statically, so the replacement covers all of its code).
#include "fail_allocations.h"

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<bool> g_fail{false};
}

namespace pwsync::win::test {
void fail_allocations() noexcept { g_fail = true; }
}  // namespace pwsync::win::test

void* operator new(std::size_t n) {
    if (g_fail) throw std::bad_alloc();
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
