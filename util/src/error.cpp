#include "pwsync/util.h"

namespace pwsync {

const char* errc_name(Errc code) noexcept {
    switch (code) {
        case Errc::invalid_argument: return "invalid argument";
        case Errc::not_found: return "not found";
        case Errc::already_exists: return "already exists";
        case Errc::conflict: return "conflict";
        case Errc::in_use: return "in use";
        case Errc::permission: return "permission denied";
        case Errc::crypto: return "crypto error";
        case Errc::io: return "I/O error";
        case Errc::storage: return "storage error";
        case Errc::version: return "unsupported version";
        case Errc::corrupt: return "corrupt data";
        case Errc::unavailable: return "unavailable";
        case Errc::timeout: return "timed out";
        case Errc::refused: return "refused";
        case Errc::protocol: return "protocol error";
        case Errc::internal: return "internal error";
        case Errc::busy: return "busy";
    }
    return "unknown error";
}

}  // namespace pwsync
