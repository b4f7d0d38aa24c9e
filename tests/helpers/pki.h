// A throwaway TLS PKI for tests: a CA, a server certificate for 127.0.0.1,
// ::1 and localhost, a client certificate from that CA, and one from an
// unrelated CA (which a server must refuse). Made with the openssl CLI.
#pragma once

#include <string>

namespace pwsync::test {

struct TestPki {
    std::string ca_cert;
    std::string server_cert, server_key;
    std::string client_cert, client_key;
    std::string client_subject;  // RFC 2253, as a server sees it
    std::string rogue_cert, rogue_key;  // signed by another CA
};

// Writes everything into `dir`; fails the calling test (ADD_FAILURE) when
// openssl does not cooperate.
TestPki make_test_pki(const std::string& dir);

}  // namespace pwsync::test
