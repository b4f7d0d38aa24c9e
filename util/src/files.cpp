#include <unistd.h>

#include "pwsync/util.h"

namespace pwsync {

bool path_exists(const std::string& path) noexcept { return ::access(path.c_str(), F_OK) == 0; }

}  // namespace pwsync
