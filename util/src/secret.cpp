#include <openssl/crypto.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "pwsync/util.h"

namespace pwsync {

void wipe(void* data, std::size_t size) noexcept {
    if (data != nullptr && size > 0) OPENSSL_cleanse(data, size);
}

void harden_process() noexcept {
    const rlimit none{0, 0};
    setrlimit(RLIMIT_CORE, &none);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
    // CRYPTO_memcmp needs equal lengths; fold the length difference in so the
    // loop below always runs over the longer input.
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    const std::size_t n = a.size() > b.size() ? a.size() : b.size();
    for (std::size_t i = 0; i < n; ++i) {
        const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
        const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
        diff |= static_cast<unsigned char>(x ^ y);
    }
    return diff == 0;
}

}  // namespace pwsync
