// Keeps passwords out of adapter messages before they reach logs and audit.
#pragma once

#include <string>

#include "pwsync/util.h"

namespace pwsync::gateway {

// `msg` with every occurrence of `pw` (and of `old`, when given) replaced by
// "***", compared ASCII case-insensitively (a program may upper-case it).
std::string scrub_secrets(std::string msg, const Secret& pw, const Secret* old);

}  // namespace pwsync::gateway
