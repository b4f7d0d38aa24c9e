#include "pki.h"

#include <gtest/gtest.h>

#include "helpers.h"

namespace pwsync::test {
namespace {

// Host configuration must not add extensions or change defaults.
const std::vector<std::string> kEnv = {"OPENSSL_CONF=/dev/null"};
const std::string kOpenssl = "/usr/bin/openssl";

bool openssl(const std::vector<std::string>& args) {
    std::vector<std::string> argv{kOpenssl};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = run(argv, {}, kEnv, 60);
    if (r.exit_code != 0) ADD_FAILURE() << "openssl " << args.at(0) << " failed: " << r.err;
    return r.exit_code == 0;
}

bool make_ca(const std::string& dir, const std::string& name, const std::string& cn) {
    return openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                    dir + "/" + name + ".key", "-out", dir + "/" + name + ".pem", "-days", "2", "-subj", "/CN=" + cn,
                    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
}

bool make_leaf(const std::string& dir, const std::string& ca, const std::string& name, const std::string& subject,
               const std::string& extensions, int serial) {
    const std::string base = dir + "/" + name;
    write_file(base + ".ext", extensions);
    return openssl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                    base + ".key", "-out", base + ".csr", "-subj", subject}) &&
           openssl({"x509", "-req", "-in", base + ".csr", "-CA", dir + "/" + ca + ".pem", "-CAkey", dir + "/" + ca + ".key",
                    "-set_serial", std::to_string(serial), "-days", "2", "-out", base + ".pem", "-extfile", base + ".ext"});
}

}  // namespace

TestPki make_test_pki(const std::string& dir) {
    TestPki pki;
    const bool ok =
        make_ca(dir, "ca", "pwsync test CA") && make_ca(dir, "rogue-ca", "someone else's CA") &&
        make_leaf(dir, "ca", "server", "/CN=localhost",
                  "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n", 2) &&
        make_leaf(dir, "ca", "client", "/O=pwsync test/CN=dc1-hook",
                  "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n", 3) &&
        make_leaf(dir, "rogue-ca", "rogue", "/O=pwsync test/CN=dc1-hook",
                  "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n", 4);
    if (!ok) return pki;
    pki.ca_cert = dir + "/ca.pem";
    pki.server_cert = dir + "/server.pem";
    pki.server_key = dir + "/server.key";
    pki.client_cert = dir + "/client.pem";
    pki.client_key = dir + "/client.key";
    pki.client_subject = "CN=dc1-hook,O=pwsync test";
    pki.rogue_cert = dir + "/rogue.pem";
    pki.rogue_key = dir + "/rogue.key";
    return pki;
}

}  // namespace pwsync::test
