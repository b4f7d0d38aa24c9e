// LDAP and AD failures decoded into one typed error with a verdict.
//
// The verdict decides what the gateway does: permanent failures go to dead
// letters at once, retryable ones back off and try again. When in doubt a
// server-side failure is retryable (a retry costs a delay; a wrong
// "permanent" loses a change).
#include <ldap.h>

#include <cctype>
#include <charconv>
#include <string>

#include "connection_impl.h"

namespace pwsync::directory {
namespace {

// A leading "XXXXXXXX:" of 8 hex digits, as AD and Samba start their text.
std::uint32_t leading_ad_code(std::string_view text) {
    if (text.size() < 9 || text[8] != ':') return 0;
    std::uint32_t v = 0;
    const auto [p, ec] = std::from_chars(text.data(), text.data() + 8, v, 16);
    return ec == std::errc() && p == text.data() + 8 ? v : 0;
}

// "…, data 52e, …" of an AD bind failure.
std::optional<std::uint32_t> data_code(std::string_view text) {
    const auto at = text.find(" data ");
    if (at == std::string_view::npos) return std::nullopt;
    const char* b = text.data() + at + 6;
    const char* e = text.data() + text.size();
    std::uint32_t v = 0;
    const auto [p, ec] = std::from_chars(b, e, v, 16);
    if (ec != std::errc() || p == b) return std::nullopt;
    return v;
}

// Win32 codes seen in AD diagnostics.
const char* win32_name(std::uint32_t code) {
    switch (code) {
    case 0x00000056: return "ERROR_INVALID_PASSWORD";
    case 0x0000052D: return "ERROR_PASSWORD_RESTRICTION";
    case 0x0000052E: return "ERROR_LOGON_FAILURE";
    case 0x00000005: return "ERROR_ACCESS_DENIED";
    case 0x0000001F: return "ERROR_GEN_FAILURE";
    case 0x00000525: return "ERROR_NO_SUCH_USER";
    case 0x00002098: return "ERROR_DS_INSUFF_ACCESS_RIGHTS";
    case 0x0000208D: return "ERROR_DS_OBJ_NOT_FOUND";
    case 0x00002077: return "ERROR_DS_CONSTRAINT_VIOLATION";
    case 0x0000200E: return "ERROR_DS_BUSY";
    case 0x0000200F: return "ERROR_DS_UNAVAILABLE";
    case 0x00002024: return "ERROR_DS_UNWILLING_TO_PERFORM";
    case 0x000004DC: return "ERROR_NOT_AUTHENTICATED";
    case 0x80090308: return "SEC_E_INVALID_TOKEN";
    default: return nullptr;
    }
}

// The sub-code of an AD bind failure (80090308 … data NNN).
const char* bind_data_text(std::uint32_t data) {
    switch (data) {
    case 0x525: return "user not found";
    case 0x52e: return "invalid credentials";
    case 0x530: return "logon not permitted at this time";
    case 0x531: return "logon not permitted at this workstation";
    case 0x532: return "password expired";
    case 0x533: return "account disabled";
    case 0x568: return "too many security identifiers";
    case 0x701: return "account expired";
    case 0x773: return "user must reset password";
    case 0x775: return "account locked out";
    default: return nullptr;
    }
}

struct Class {
    Reason reason;
    Verdict verdict;
};

Class classify(int rc, std::uint32_t ad, std::string_view text) {
    const auto perm = [](Reason r) { return Class{r, Verdict::permanent}; };
    const auto retry = [](Reason r) { return Class{r, Verdict::retryable}; };
    switch (rc) {
    case LDAP_SERVER_DOWN:
    case LDAP_CONNECT_ERROR:
        // A failed TLS handshake is reported as "can't contact": a certificate
        // that does not verify is a configuration problem, not an outage.
        if (text.find("certificate verify failed") != std::string_view::npos ||
            text.find("hostname does not match") != std::string_view::npos ||
            text.find("certificate") != std::string_view::npos)
            return perm(Reason::tls);
        return retry(Reason::server_down);
    case LDAP_TIMEOUT:
    case LDAP_TIMELIMIT_EXCEEDED:
        return retry(Reason::timeout);
    case LDAP_BUSY:
    case LDAP_UNAVAILABLE:
    case LDAP_X_CONNECTING:
    case LDAP_NO_MEMORY:
        return retry(Reason::busy);
    case LDAP_LOCAL_ERROR:
        // SASL/GSSAPI failures arrive here; an unreachable KDC is an outage.
        if (text.find("Cannot contact any KDC") != std::string_view::npos ||
            text.find("Cannot find KDC") != std::string_view::npos ||
            text.find("Connection refused") != std::string_view::npos)
            return retry(Reason::server_down);
        return perm(Reason::invalid_request);
    case LDAP_CONSTRAINT_VIOLATION:
        if (ad == 0x56) return perm(Reason::wrong_old_password);
        return perm(Reason::policy);
    case LDAP_INVALID_CREDENTIALS:
    case LDAP_INAPPROPRIATE_AUTH:
        return perm(Reason::invalid_credentials);
    case LDAP_INSUFFICIENT_ACCESS:
        return perm(Reason::insufficient_rights);
    case LDAP_NO_SUCH_OBJECT:
        return perm(Reason::no_such_object);
    case LDAP_NO_SUCH_ATTRIBUTE:
        // Windows answers a user change with a wrong old password this way.
        if (ad == 0x56) return perm(Reason::wrong_old_password);
        return perm(Reason::invalid_request);
    case LDAP_STRONG_AUTH_REQUIRED:
    case LDAP_CONFIDENTIALITY_REQUIRED:
        return perm(Reason::confidentiality_required);
    case LDAP_UNWILLING_TO_PERFORM:
        if (ad == 0x52D) return perm(Reason::policy);
        return perm(Reason::unwilling);
    case LDAP_OPERATIONS_ERROR:
    case LDAP_OTHER:
        return retry(Reason::other);
    default:
        // Protocol, syntax, naming, filter and client-side errors: a retry
        // would send the same bad request.
        return perm(Reason::invalid_request);
    }
}

Errc errc_of(Reason r) {
    switch (r) {
    case Reason::server_down:
    case Reason::busy: return Errc::unavailable;
    case Reason::timeout: return Errc::timeout;
    case Reason::no_such_object: return Errc::not_found;
    case Reason::invalid_credentials:
    case Reason::insufficient_rights: return Errc::permission;
    case Reason::invalid_request: return Errc::invalid_argument;
    case Reason::ambiguous: return Errc::conflict;
    case Reason::tls: return Errc::crypto;
    case Reason::other: return Errc::unavailable;
    default: return Errc::refused;
    }
}

// Trims trailing NULs and whitespace some servers append.
std::string clean_text(std::string_view t) {
    while (!t.empty() && (t.back() == '\0' || t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.remove_suffix(1);
    return std::string(t);
}

}  // namespace

const char* verdict_name(Verdict v) noexcept { return v == Verdict::permanent ? "permanent" : "retryable"; }

const char* reason_name(Reason r) noexcept {
    switch (r) {
    case Reason::policy: return "refused by password policy";
    case Reason::wrong_old_password: return "the old password does not match";
    case Reason::invalid_credentials: return "invalid credentials";
    case Reason::insufficient_rights: return "insufficient access rights";
    case Reason::no_such_object: return "no such object";
    case Reason::confidentiality_required: return "an encrypted connection is required";
    case Reason::unwilling: return "the server is unwilling to perform it";
    case Reason::tls: return "TLS failed";
    case Reason::invalid_request: return "invalid request";
    case Reason::ambiguous: return "ambiguous name";
    case Reason::server_down: return "server down or unreachable";
    case Reason::timeout: return "timed out";
    case Reason::busy: return "server busy or unavailable";
    case Reason::other: return "server error";
    }
    return "error";
}

LdapError decode_error(int ldap_code, std::string_view server_text, std::string_view context) {
    LdapError e;
    e.ldap_code = ldap_code;
    e.server_text = clean_text(server_text);
    e.ad_code = leading_ad_code(e.server_text);
    if (e.ad_code == 0x80090308 || e.ldap_code == LDAP_INVALID_CREDENTIALS) e.ad_data = data_code(e.server_text);
    const auto cls = classify(ldap_code, e.ad_code, e.server_text);
    e.reason = cls.reason;
    e.verdict = cls.verdict;
    e.code = errc_of(e.reason);

    std::string m(context);
    if (!m.empty()) m += ": ";
    m += reason_name(e.reason);
    if (e.reason == Reason::invalid_credentials && e.ad_data) {
        if (const char* d = bind_data_text(*e.ad_data)) m += std::string(" (") + d + ")";
    }
    m += " [LDAP " + std::to_string(ldap_code) + " " + ldap_err2string(ldap_code);
    if (e.ad_code != 0) {
        char hex[16];
        std::snprintf(hex, sizeof hex, "%08X", e.ad_code);
        m += std::string(", AD ") + hex;
        if (const char* n = win32_name(e.ad_code)) m += std::string(" ") + n;
    }
    if (e.ad_data) {
        char hex[16];
        std::snprintf(hex, sizeof hex, "%x", *e.ad_data);
        m += std::string(" data ") + hex;
    }
    m += ", ";
    m += verdict_name(e.verdict);
    m += "]";
    if (!e.server_text.empty()) m += ": " + e.server_text;
    e.message = std::move(m);
    return e;
}

LdapError client_error(Reason reason, std::string message) {
    LdapError e;
    e.reason = reason;
    e.verdict = reason == Reason::server_down || reason == Reason::timeout || reason == Reason::busy
                    ? Verdict::retryable
                    : Verdict::permanent;
    e.code = errc_of(reason);
    e.ldap_code = 0;
    e.message = std::move(message);
    return e;
}

LdapError scrubbed(LdapError e, std::initializer_list<const Secret*> secrets) {
    for (const Secret* s : secrets) {
        if (s == nullptr || s->empty()) continue;
        for (std::string* t : {&e.server_text, &e.message})
            for (auto at = t->find(s->view()); at != std::string::npos; at = t->find(s->view(), at))
                t->replace(at, s->size(), "[password]");
    }
    return e;
}

LdapError from_error(const Error& err) {
    LdapError e;
    e.code = err.code;
    e.verdict = err.code == Errc::unavailable || err.code == Errc::timeout ? Verdict::retryable : Verdict::permanent;
    e.reason = err.code == Errc::timeout ? Reason::timeout : err.code == Errc::unavailable ? Reason::busy : Reason::other;
    e.message = err.message;
    return e;
}

}  // namespace pwsync::directory
