// Why a TLS connection failed. libldap reports a certificate that does not
// verify as "Can't contact LDAP server" with no detail; an admin needs to
// know it is the certificate (and which problem), and the gateway must not
// treat it as an outage. This repeats the handshake with OpenSSL alone.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace pwsync::directory {

struct TlsProbe {
    bool reachable = false;   // the TCP connection was accepted
    bool handshake_ok = false;
    bool rejected = false;    // the certificate or the TLS parameters were refused
    std::string detail;       // OpenSSL's reason when rejected
};

// `uri`: ldaps:// (TLS at once) or ldap:// (StartTLS first).
TlsProbe probe_tls(const std::string& uri, const std::string& ca_file, std::chrono::milliseconds timeout);

}  // namespace pwsync::directory
