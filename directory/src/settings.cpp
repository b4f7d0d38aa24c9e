// The [directory] section of the configuration file, and the bind
// password file (mode 0600, the same rule as the master key).
#include <fcntl.h>
#include <sys/stat.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <unistd.h>

#include <charconv>
#include <memory>
#include <sstream>

#include "pwsync/handles.h"
#include "pwsync/directory.h"

namespace pwsync::directory {
namespace {

// The CA file must hold at least one certificate: otherwise every connection
// would fail later with a TLS error, and a configuration check would pass.
Status check_ca_file(const std::string& path) {
    std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
    const bool ok = store && X509_STORE_load_file(store.get(), path.c_str()) == 1;
    char why[256] = "out of memory";
    if (const unsigned long e = ERR_peek_last_error(); e != 0) ERR_error_string_n(e, why, sizeof why);
    ERR_clear_error();
    if (!ok) return fail(Errc::invalid_argument, "[directory] ca = " + path + ": no CA certificate can be loaded (" + why + ")");
    return {};
}

std::optional<bool> parse_bool(std::string_view v) {
    const auto l = ascii_lower(v);
    if (l == "yes" || l == "true" || l == "on" || l == "1") return true;
    if (l == "no" || l == "false" || l == "off" || l == "0") return false;
    return std::nullopt;
}

template <class T>
std::optional<T> parse_number(std::string_view v) {
    T n{};
    const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || p != v.data() + v.size()) return std::nullopt;
    return n;
}

}  // namespace

Result<Settings> parse_settings(const std::vector<std::pair<std::string, std::string>>& section, std::string_view label) {
    Settings s;
    const std::string at(label);
    const auto bad = [&at](const std::string& key, const std::string& value, const char* want) {
        return fail(Errc::invalid_argument, at + " " + key + " = " + value + ": " + want);
    };
    for (const auto& [key, value] : section) {
        if (key == "uri") {
            std::istringstream in(value);
            for (std::string u; in >> u;) s.uris.push_back(u);
        } else if (key == "base") s.base = value;
        else if (key == "domain") s.domain = value;
        else if (key == "bind") {
            if (value == "simple") s.bind = BindMethod::simple;
            else if (value == "gssapi") s.bind = BindMethod::gssapi;
            else return bad(key, value, "expected simple or gssapi");
        } else if (key == "bind-dn") s.bind_dn = value;
        else if (key == "bind-password-file") s.bind_password_file = value;
        else if (key == "keytab") s.keytab = value;
        else if (key == "principal") s.principal = value;
        else if (key == "krb5-config") s.krb5_config = value;
        else if (key == "ca") s.ca = value;
        else if (key == "insecure-skip-verify" || key == "sasl-seal") {
            const auto b = parse_bool(value);
            if (!b) return bad(key, value, "expected yes or no");
            (key == "sasl-seal" ? s.sasl_seal : s.insecure_skip_verify) = *b;
        } else if (key == "timeout" || key == "poll-interval") {
            const auto n = parse_number<unsigned>(value);
            if (!n || *n == 0 || *n > 86400) return bad(key, value, "expected seconds (1-86400)");
            (key == "timeout" ? s.timeout : s.poll_interval) = std::chrono::seconds(*n);
        } else if (key == "watch") {
            if (value == "dirsync") s.watch = WatchMode::dirsync;
            else if (value == "usn") s.watch = WatchMode::usn;
            else return bad(key, value, "expected dirsync or usn");
        } else if (key == "dirsync-flags") {
            const auto n = parse_number<std::uint32_t>(value);
            if (!n) return bad(key, value, "expected a number");
            s.dirsync_flags = *n;
        } else if (key == "upn-suffixes" || key == "capture-principals") {
            std::istringstream in(value);
            auto& list = key == "upn-suffixes" ? s.upn_suffixes : s.capture_principals;
            for (std::string w; in >> w;) list.push_back(ascii_lower(w));
        } else {
            return fail(Errc::invalid_argument, at + " unknown setting '" + key + "'");
        }
    }
    if (s.uris.empty()) return fail(Errc::invalid_argument, at + " uri is missing");
    for (const auto& u : s.uris) {
        if (!u.starts_with("ldaps://") && !u.starts_with("ldap://"))
            return fail(Errc::invalid_argument, at + " uri " + u + ": use ldaps:// or ldap://");
    }
    if (s.bind == BindMethod::simple && (s.bind_dn.empty() || s.bind_password_file.empty()))
        return fail(Errc::invalid_argument, at + " bind = simple needs bind-dn and bind-password-file");
    if (s.bind == BindMethod::gssapi && s.keytab.empty())
        return fail(Errc::invalid_argument, at + " bind = gssapi needs keytab");
    if (s.sasl_seal && s.bind != BindMethod::gssapi)
        return fail(Errc::invalid_argument, at + " sasl-seal = yes needs bind = gssapi");
    return s;
}

Result<Secret> read_secret_file(const std::string& path) {
    const UniqueFd owner(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!owner) return fail(Errc::not_found, "cannot open " + path);
    const int fd = owner.get();
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        return fail(Errc::permission, path + " is not a regular file");
    }
    if ((st.st_mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        return fail(Errc::permission, path + " has mode " + mode + ": it must not be readable or writable by group or others (chmod 600)");
    }
    Secret s;
    char buf[512];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            wipe(buf, sizeof buf);
            return fail(Errc::io, "cannot read " + path);
        }
        if (n == 0) break;
        s.append(std::string_view(buf, static_cast<std::size_t>(n)));
    }
    wipe(buf, sizeof buf);
    s.resize(trim_newline(s.view()).size());
    if (s.empty()) return fail(Errc::invalid_argument, path + " is empty");
    return s;
}

Result<ConnectOptions> connect_options(const Settings& s) {
    ConnectOptions o;
    o.uris = s.uris;
    o.protection = s.sasl_seal ? Protection::sasl_seal : Protection::tls;
    o.ca_file = s.ca;
    if (!s.ca.empty()) PWSYNC_TRY(check_ca_file(s.ca));
    o.insecure_skip_verify = s.insecure_skip_verify;
    o.op_timeout = s.timeout;
    o.credentials.method = s.bind;
    if (s.bind == BindMethod::simple) {
        o.credentials.name = s.bind_dn;
        PWSYNC_ASSIGN(o.credentials.password, read_secret_file(s.bind_password_file));
    } else {
        o.credentials.name = s.principal;
        o.credentials.keytab = s.keytab;
        o.credentials.krb5_config = s.krb5_config;
    }
    return o;
}

Domain domain_of(const Settings& s) { return Domain{s.base, s.domain, {}}; }

}  // namespace pwsync::directory
