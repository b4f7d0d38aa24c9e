#include "scrub.h"

namespace pwsync::gateway {

std::string scrub_secrets(std::string msg, const Secret& pw, const Secret* old) {
    for (const Secret* s : {&pw, old}) {
        if (s == nullptr || s->empty()) continue;
        Secret needle(ascii_lower(s->view()));
        for (std::size_t at = 0; at + needle.size() <= msg.size();) {
            std::string window = ascii_lower(std::string_view(msg).substr(at, needle.size()));
            const bool hit = window == needle.view();
            wipe(window.data(), window.size());
            if (hit) {
                msg.replace(at, needle.size(), "***");
                at += 3;
            } else {
                ++at;
            }
        }
    }
    return msg;
}

}  // namespace pwsync::gateway
