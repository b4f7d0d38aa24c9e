// Reading INI files: pwsyncd.conf, and the parts of it pwsync and the
// capture hook read.
#pragma once

#include <string>
#include <vector>

#include "pwsync/util.h"

namespace pwsync {

// Every "key = value" of an INI file in order, keys as "section.key" (or
// "key" before any section); comments and blank lines dropped. Shared by
// pwsyncd, pwsync and the capture hook, which read parts of the same files.
struct IniEntry {
    std::string section, key, value;
};
Result<std::vector<IniEntry>> read_ini(const std::string& path);

// "a b  c" -> {"a", "b", "c"} (URI lists).
std::vector<std::string> split_words(const std::string& s);

}  // namespace pwsync
