// Reading ESSO's `ssomanage -createapps` / `-createmappings` XML files.
// Parsing is separate from applying so it can be tested without a store.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pwsync/util.h"

namespace pwsync::cli::esso {

// One <application name=…> element.
struct Application {
    std::string name;
    std::optional<std::string> description;
    std::optional<std::string> contact;
    std::optional<bool> enabled;            // flags enableApp
    // Password sync flags by ESSO name (syncToAdapter, ...); in pwsync they
    // belong to the adapter the application is in.
    std::map<std::string, bool> sync_flags;
    std::size_t line = 0;                   // 0 when unknown (UTF-16 input)
};

// One <mapping> element.
struct Mapping {
    std::string windows;      // DOMAIN\user, or user when no domain is given
    std::string app;
    std::string external;
    std::size_t line = 0;
};

struct Document {
    std::vector<Application> apps;
    std::vector<Mapping> mappings;
    // What the file says that pwsync has no equivalent for, one line each.
    std::vector<std::string> not_mapped;
};

// The password sync flags pwsync knows, in ESSO's spelling.
const std::vector<std::string>& sync_flag_names();

// Parses one file's content; `file` names it in messages. Malformed XML, a
// root other than <sso>, a missing name or field, or a flag value other than
// yes/no/true/false/1/0 is an error naming the line.
Result<Document> parse(std::string_view content, const std::string& file);

}  // namespace pwsync::cli::esso
