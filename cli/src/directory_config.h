// The configuration file's [directory] section, for the commands that talk
// to Active Directory (check, mapping resolve, stale expire).
#pragma once

#include <string>

#include "cli.h"
#include "pwsync/directory.h"

namespace pwsync::cli {

// --config, $PWSYNC_CONFIG, or /etc/pwsync/pwsyncd.conf.
std::string config_path(const Context& c);
// The [directory] section, every key in it (unknown ones fail).
Result<directory::Settings> load_settings(const std::string& path);

}  // namespace pwsync::cli
