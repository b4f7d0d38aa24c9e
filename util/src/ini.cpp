#include "pwsync/ini.h"

#include <boost/program_options.hpp>
#include <fstream>
#include <sstream>

namespace pwsync {

std::vector<std::string> split_words(const std::string& s) {
    std::istringstream in(s);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

Result<std::vector<IniEntry>> read_ini(const std::string& path) {
    namespace po = boost::program_options;
    std::ifstream f(path);
    if (!f) return fail(Errc::not_found, "cannot read configuration file " + path);
    po::parsed_options parsed(nullptr);
    try {
        parsed = po::parse_config_file(f, po::options_description(), true);
    } catch (const po::error& e) {
        return fail(Errc::invalid_argument, path + ": " + e.what());
    }
    std::vector<IniEntry> out;
    for (const auto& opt : parsed.options) {
        const std::string& key = opt.string_key;
        // Keys have no dots; a section name may ([directory example.com]).
        const auto dot = key.rfind('.');
        out.push_back({dot == std::string::npos ? "" : key.substr(0, dot), dot == std::string::npos ? key : key.substr(dot + 1),
                       opt.value.empty() ? std::string() : opt.value.front()});
    }
    return out;
}

}  // namespace pwsync
