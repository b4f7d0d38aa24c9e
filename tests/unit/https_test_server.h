// A small HTTPS server for the http adapter's tests: on 127.0.0.1, one
// request per connection, answers from a queue of configured replies (200
// once it runs dry) and records every request it read.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "stream.h"
#include "tls_context.h"

namespace pwsync::test {

class HttpsTestServer {
public:
    struct Request {
        std::string method, target;
        std::map<std::string, std::string> headers;  // names in lower case
        std::string body;
        std::string client_subject;  // verified client certificate, else empty
    };
    struct Reply {
        int status = 200;
        std::string headers;  // extra "Name: value\r\n" lines
    };

    // client_ca: empty = no client certificates requested.
    HttpsTestServer(const std::string& cert, const std::string& key, const std::string& client_ca);
    HttpsTestServer(const HttpsTestServer&) = delete;
    HttpsTestServer& operator=(const HttpsTestServer&) = delete;
    ~HttpsTestServer();

    std::string url(const std::string& path = "/hook") const;
    void replies(std::vector<Reply> next);
    std::vector<Request> requests() const;
    // Connections whose TLS handshake failed (e.g. a refused client certificate).
    int failed_handshakes() const;

private:
    void serve();
    void handle(gateway::Fd fd);

    gateway::TlsContext tls_;
    gateway::Fd listen_, stop_read_, stop_write_;
    int port_ = 0;
    SystemClock clock_;
    mutable std::mutex mutex_;
    std::vector<Reply> replies_;
    std::vector<Request> requests_;
    int failed_handshakes_ = 0;
    std::thread thread_;
};

}  // namespace pwsync::test
