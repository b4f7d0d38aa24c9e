// Shared by the listener tests: a fake RequestHandler that records what
// reaches it, a thread-safe test clock, a per-suite PKI, and a fixture that
// starts a Listener on 127.0.0.1 port 0 (ldaps and StartTLS).
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "helpers.h"
#include "ldap_raw_client.h"
#include "listener.h"
#include "pki.h"

namespace pwsync::test {

inline const std::string kHookDn = "cn=hook,ou=principals,o=pwsync";
inline const std::string kHookSecret = "hook-secret";
inline const std::string kOtherDn = "cn=other,ou=principals,o=pwsync";
inline const std::string kOtherSecret = "other-secret";
inline constexpr std::string_view kWrongSecret = "wrong-guess-1";

// A clock tests move by hand; safe to read from connection threads.
class TestClock final : public Clock {
public:
    TimePoint now() const override { return from_unix_micros(us_.load()); }
    void advance(std::chrono::seconds by) { us_ += std::chrono::duration_cast<std::chrono::microseconds>(by).count(); }

private:
    std::atomic<std::int64_t> us_{to_unix_micros(std::chrono::system_clock::now())};
};

struct ModifyCall {
    std::string principal, identity;
    std::optional<std::string> old_password;
    std::string new_password;
    gateway::Peer peer;
};

class FakeHandler final : public gateway::RequestHandler {
public:
    std::expected<std::string, gateway::LdapResult> bind_simple(std::string_view dn, const Secret& password,
                                                                const gateway::Peer&) override {
        std::lock_guard lock(mutex);
        ++simple_binds;
        if (!bind_answers.empty()) {
            auto answer = bind_answers.front();
            bind_answers.erase(bind_answers.begin());
            return std::unexpected(answer);
        }
        const auto it = secrets.find(std::string(dn));
        if (it == secrets.end() || it->second != password.view())
            return std::unexpected(gateway::LdapResult{49, "invalid credentials"});
        return std::string(dn);
    }
    std::expected<std::string, gateway::LdapResult> bind_external(const gateway::Peer& peer) override {
        std::lock_guard lock(mutex);
        external_peers.push_back(peer);
        return std::string("dc1-hook");
    }
    gateway::LdapResult password_modify(const std::string& principal, std::string_view identity,
                                        const std::optional<Secret>& old_password, const Secret& new_password,
                                        const gateway::Peer& peer) override {
        ModifyCall call{principal, std::string(identity),
                        old_password ? std::optional<std::string>(std::string(old_password->view())) : std::nullopt,
                        std::string(new_password.view()), peer};
        std::function<void(const ModifyCall&)> hook;
        {
            std::lock_guard lock(mutex);
            calls.push_back(call);
            hook = on_modify;
        }
        cv.notify_all();
        if (hook) hook(call);
        std::lock_guard lock(mutex);
        return result;
    }

    std::expected<std::vector<gateway::SearchEntry>, gateway::LdapResult> search_subtree(const std::string& principal,
                                                                                         std::string_view base) override {
        std::lock_guard lock(mutex);
        if (tree.empty()) return RequestHandler::search_subtree(principal, base);
        if (principal != kHookDn) return std::unexpected(gateway::LdapResult{50, "not a monitor principal"});
        return tree;
    }

    std::vector<ModifyCall> modify_calls() {
        std::lock_guard lock(mutex);
        return calls;
    }

    std::mutex mutex;
    std::condition_variable cv;
    std::map<std::string, std::string> secrets{{kHookDn, kHookSecret}, {kOtherDn, kOtherSecret}};
    std::vector<ModifyCall> calls;
    std::vector<gateway::Peer> external_peers;
    int simple_binds = 0;
    std::vector<gateway::LdapResult> bind_answers;  // the next binds' answers, before the secret is checked
    gateway::LdapResult result{0, ""};
    std::function<void(const ModifyCall&)> on_modify;  // runs outside the lock, may block
    std::vector<gateway::SearchEntry> tree;           // empty: search is not offered
};

class ListenerTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        pki_dir_ = new TempDir();
        pki_ = new TestPki(make_test_pki(pki_dir_->path()));
    }
    static void TearDownTestSuite() {
        delete pki_;
        delete pki_dir_;
        pki_ = nullptr;
        pki_dir_ = nullptr;
    }

    const TestPki& pki() const { return *pki_; }

    gateway::ListenerOptions options() {
        gateway::ListenerOptions o;
        o.uris = {"ldaps://127.0.0.1:0", "ldap://127.0.0.1:0"};
        o.cert_file = pki_->server_cert;
        o.key_file = pki_->server_key;
        o.client_ca_file = pki_->ca_cert;
        o.clock = &clock_;
        o.log = [this](std::string_view line) {
            std::lock_guard lock(log_mutex_);
            log_.emplace_back(line);
        };
        return o;
    }

    void start(const gateway::ListenerOptions& o) {
        auto l = gateway::Listener::start(o, handler_);
        ASSERT_TRUE(l) << l.error().message;
        listener_ = std::make_unique<gateway::Listener>(std::move(*l));
    }
    void start() { start(options()); }

    std::uint16_t ldaps_port() const { return listener_->endpoints().at(0).port; }
    std::uint16_t ldap_port() const { return listener_->endpoints().at(1).port; }
    std::string ldaps_uri() const { return "ldaps://127.0.0.1:" + std::to_string(ldaps_port()); }
    std::string ldap_uri() const { return "ldap://127.0.0.1:" + std::to_string(ldap_port()); }

    // A file in this test's folder (passwords go to tools through files).
    std::string file(const std::string& name, std::string_view content) {
        const std::string path = dir_ / name;
        write_file(path, content);
        return path;
    }

    // An OpenLDAP tool with host configuration shut out.
    RunResult tool(const std::string& name, std::vector<std::string> args, std::vector<std::string> env = {}) {
        args.insert(args.begin(), "/usr/bin/" + name);
        env.push_back("LDAPTLS_CACERT=" + pki_->ca_cert);
        env.push_back("LDAPTLS_REQCERT=demand");
        env.push_back("LDAPRC=/dev/null");
        env.push_back("LDAPCONF=/dev/null");
        env.push_back("HOME=" + dir_.path());
        return run(args, {}, env, 30);
    }

    // Waits (real time, bounded) until `done` holds.
    static bool eventually(const std::function<bool()>& done, double seconds = 5) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
        while (std::chrono::steady_clock::now() < until) {
            if (done()) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return done();
    }

    std::unique_ptr<RawClient> plain_client() { return RawClient::connect("127.0.0.1", ldap_port()); }
    std::unique_ptr<RawClient> tls_client() {
        auto c = RawClient::connect("127.0.0.1", ldaps_port());
        if (c && !c->start_tls(pki_->ca_cert)) return nullptr;
        return c;
    }

    void TearDown() override {
        if (listener_) listener_->stop();
        // No secret ever reaches the log.
        std::lock_guard lock(log_mutex_);
        for (const auto& line : log_)
            for (const auto& secret : {kHookSecret, kOtherSecret, std::string(kWrongSecret)})
                EXPECT_EQ(line.find(secret), std::string::npos) << line;
    }

    static inline TempDir* pki_dir_ = nullptr;
    static inline TestPki* pki_ = nullptr;
    TempDir dir_;
    TestClock clock_;
    FakeHandler handler_;
    std::mutex log_mutex_;
    std::vector<std::string> log_;
    std::unique_ptr<gateway::Listener> listener_;
};

}  // namespace pwsync::test
