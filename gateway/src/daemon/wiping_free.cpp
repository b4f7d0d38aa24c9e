// Every block pwsyncd frees is overwritten first. libldap copies each
// request (a Password Modify carries the password in the clear) into
// buffers it frees without wiping, and liblber's replaceable memory
// functions are never used by libldap. So free() itself wipes: glibc
// supports replacing its allocator's functions by symbol interposition, and
// these definitions in the executable are the free() and realloc() that
// every library calls. They wipe the block and hand it to glibc's own.
//
// Before, pwsyncd started itself again with glibc's perturb tunable and its
// per-thread cache off: that also filled every block handed out and sent
// every allocation through the arenas' locks.
//
// Under AddressSanitizer, whose allocator is its own, the same is asked of
// it in pwsyncd.cpp (__asan_default_options).
#ifndef PWSYNC_SANITIZE
#include <malloc.h>
#include <string.h>

#include <cerrno>
#include <cstddef>

extern "C" {
// glibc's own allocator, under the names it exports for replacements.
void* __libc_malloc(std::size_t size);
void __libc_free(void* p);

void free(void* p) noexcept {
    if (p == nullptr) return;
    explicit_bzero(p, malloc_usable_size(p));
    __libc_free(p);
}

// Never through glibc's realloc: a block it moves is freed there, unwiped.
void* realloc(void* p, std::size_t size) noexcept {
    if (p == nullptr) return __libc_malloc(size);
    if (size == 0) {
        free(p);
        return nullptr;
    }
    const std::size_t had = malloc_usable_size(p);
    if (size <= had) return p;  // fits: the block stays, wiped when freed
    void* moved = __libc_malloc(size);
    if (moved == nullptr) return nullptr;  // `p` stays as it was, as realloc must leave it
    memcpy(moved, p, had);
    free(p);
    return moved;
}

void* reallocarray(void* p, std::size_t count, std::size_t size) noexcept {
    std::size_t bytes = 0;
    if (__builtin_mul_overflow(count, size, &bytes)) {
        errno = ENOMEM;
        return nullptr;
    }
    return realloc(p, bytes);
}
}
#endif
