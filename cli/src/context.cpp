// What every command needs: where the store is, who is acting, and how to
// read a secret without it ever touching argv.
#include <pwd.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>

#include "cli.h"
#include "pwsync/ini.h"

namespace pwsync::cli {
namespace {

const char* env(const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' ? v : nullptr;
}

// Reads `store` and `key` from an INI file; other keys and sections belong
// to pwsyncd and are ignored here.
Status read_config(const std::string& path, bool required, store::Options& o) {
    if (!required && !path_exists(path)) return {};
    PWSYNC_ASSIGN(auto entries, read_ini(path));
    for (const auto& [section, key, value] : entries) {
        if (!section.empty()) continue;
        if (key == "store" && o.uri.empty()) o.uri = value;
        if (key == "key") o.key_file = value;
    }
    return {};
}

// Reads one line from the terminal with echo off.
Result<Secret> prompt(const std::string& text) {
    std::FILE* tty = std::fopen("/dev/tty", "r+");
    if (tty == nullptr) return fail(Errc::io, "cannot open the terminal to ask for " + text);
    const int fd = fileno(tty);
    termios old{};
    tcgetattr(fd, &old);
    termios quiet = old;
    quiet.c_lflag &= static_cast<tcflag_t>(~ECHO);
    std::fprintf(tty, "%s: ", text.c_str());
    std::fflush(tty);
    tcsetattr(fd, TCSAFLUSH, &quiet);
    Secret s;
    for (int c = std::fgetc(tty); c != EOF && c != '\n'; c = std::fgetc(tty)) s.push_back(static_cast<char>(c));
    tcsetattr(fd, TCSAFLUSH, &old);
    std::fprintf(tty, "\n");
    std::fclose(tty);
    return s;
}

Result<Secret> read_stream(std::istream& in, const std::string& what) {
    Secret s;
    char buf[512];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) s.append(std::string_view(buf, static_cast<std::size_t>(in.gcount())));
    wipe(buf, sizeof buf);
    const auto trimmed = trim_newline(s.view()).size();
    s.resize(trimmed);
    if (s.empty()) return fail(Errc::invalid_argument, "no " + what + " on standard input");
    return s;
}

}  // namespace

Result<store::Options> Context::store_options() const {
    store::Options o;
    if (vm_.count("store")) o.uri = vm_["store"].as<std::string>();
    else if (const char* e = env("PWSYNC_STORE")) o.uri = e;
    std::string config = "/etc/pwsync/pwsyncd.conf";
    bool explicit_config = false;
    if (vm_.count("config")) { config = vm_["config"].as<std::string>(); explicit_config = true; }
    else if (const char* e = env("PWSYNC_CONFIG")) { config = e; explicit_config = true; }
    PWSYNC_TRY(read_config(config, explicit_config, o));
    if (o.uri.empty())
        return fail(Errc::invalid_argument,
                    "no store given: use --store DIR, set PWSYNC_STORE, or set store = DIR in " + config);
    return o;
}

Result<store::Store> Context::open_store() const {
    PWSYNC_ASSIGN(auto o, store_options());
    return store::Store::open(o);
}

std::string Context::actor() const {
    std::string name;
    if (const passwd* pw = getpwuid(geteuid())) name = pw->pw_name;
    else name = "uid " + std::to_string(geteuid());
    if (const char* sudo = env("SUDO_USER")) name += " (sudo by " + std::string(sudo) + ")";
    return name;
}

Result<Secret> Context::read_secret(const std::string& what, bool confirm) {
    if (vm_.count("password-file")) {
        const auto path = vm_["password-file"].as<std::string>();
        std::ifstream f(path, std::ios::binary);
        if (!f) return fail(Errc::not_found, "cannot read password file " + path);
        return read_stream(f, what);
    }
    if (::isatty(STDIN_FILENO) && &in_ == &std::cin) {
        PWSYNC_ASSIGN(Secret first, prompt(what));
        if (first.empty()) return fail(Errc::invalid_argument, "empty " + what);
        if (confirm) {
            PWSYNC_ASSIGN(Secret again, prompt(what + " (again)"));
            if (!constant_time_equal(first.view(), again.view()))
                return fail(Errc::invalid_argument, "the two entries of the " + what + " differ");
        }
        return first;
    }
    return read_stream(in_, what);
}

Result<std::vector<Secret>> Context::read_secrets(const std::vector<std::string>& what) {
    std::vector<Secret> out;
    if (what.size() == 1) {
        PWSYNC_ASSIGN(Secret s, read_secret(what.front(), true));
        out.push_back(std::move(s));
        return out;
    }
    const bool tty = ::isatty(STDIN_FILENO) && &in_ == &std::cin;
    for (const auto& w : what) {
        if (tty) {
            PWSYNC_ASSIGN(Secret s, prompt(w));
            out.push_back(std::move(s));
        } else {
            Secret s;
            for (int c = in_.get(); c != EOF && c != '\n'; c = in_.get()) s.push_back(static_cast<char>(c));
            s.resize(trim_newline(s.view()).size());
            out.push_back(std::move(s));
        }
        if (out.back().empty()) return fail(Errc::invalid_argument, "no value for " + w + " on standard input (one line each)");
    }
    return out;
}

std::string Context::arg(const char* name) const {
    // Positional arguments are registered in upper case (NAME), options in lower.
    if (vm_.count(name) == 0)
        throw UsageError{std::string("missing ") + (name[0] >= 'A' && name[0] <= 'Z' ? "" : "--") + name};
    return vm_[name].as<std::string>();
}

void Context::print_json(const json& doc) {
    out_ << doc.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
}

}  // namespace pwsync::cli
