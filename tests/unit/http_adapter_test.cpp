// The http adapter against a local HTTPS server (127.0.0.1, no other
// servers): body, signature, bearer token, client certificate, CA checks,
// and through the dispatcher: 200 done, 503 retried then done, 400 dead.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <thread>

#include "dispatcher.h"
#include "registry.h"
#include "helpers.h"
#include "https_test_server.h"
#include "pki.h"
#include "store_fixture.h"

namespace pwsync::gateway {
namespace {

constexpr std::string_view kPassword = "Gl\xC3\xBC" "ck \"quoted\" 2026";
constexpr std::string_view kToken = "tok-5f1e2d3c";
constexpr std::string_view kHmac = "hmac-key-9a8b7c";

std::string hmac_hex(std::string_view key, std::string_view message) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(message.data()),
         message.size(), mac, &len);
    return hex_encode(std::string_view(reinterpret_cast<const char*>(mac), len));
}

class HttpAdapterTest : public store::testing::StoreFixture {
protected:
    void SetUp() override {
        StoreFixture::SetUp();
        pki_ = test::make_test_pki(dir_.path());
    }

    AdapterContext context(const std::string& url, std::map<std::string, std::string> extra = {},
                           std::map<std::string, std::string> secrets = {}) {
        AdapterContext c;
        c.config.name = "hook";
        c.config.type = "http";
        c.config.timeout = 5;
        c.config.properties = {{"url", url}, {"ca", pki_.ca_cert}};
        for (auto& [k, v] : extra) c.config.properties[k] = v;
        for (const auto& [k, v] : secrets) c.config.secret_properties.push_back(k);
        c.secret = [secrets](std::string_view k) -> Result<Secret> {
            auto it = secrets.find(std::string(k));
            if (it == secrets.end()) return fail(Errc::not_found, "no secret");
            return Secret(it->second);
        };
        return c;
    }

    DeliveryResult deliver(const AdapterContext& c, const Secret* old = nullptr) {
        auto a = gateway::make_adapter(c);
        EXPECT_TRUE(a) << a.error().message;
        if (!a) return {Outcome::permanent, "no adapter"};
        const Secret pw(kPassword);
        Delivery d{"EXAMPLE\\alice", "alice@ext", &pw, old, "dc1", "CRM", 42, from_unix_micros(1'790'000'000'000'000)};
        auto r = (*a)->deliver(d);
        EXPECT_EQ(r.message.find(kPassword), std::string::npos) << r.message;
        return r;
    }

    test::TestPki pki_;
};

TEST_F(HttpAdapterTest, PostsASignedJsonBodyWithTheBearerToken) {
    test::HttpsTestServer server(pki_.server_cert, pki_.server_key, "");
    const Secret old("Old \\ one");
    auto r = deliver(context(server.url(), {}, {{"token", std::string(kToken)}, {"hmac-secret", std::string(kHmac)}}), &old);
    EXPECT_EQ(r.outcome, Outcome::done) << r.message;
    EXPECT_EQ(r.message, "HTTP 200: ok");
    auto reqs = server.requests();
    ASSERT_EQ(reqs.size(), 1u);
    const auto& q = reqs[0];
    EXPECT_EQ(q.method, "POST");
    EXPECT_EQ(q.target, "/hook");
    EXPECT_EQ(q.headers.at("content-type"), "application/json");
    EXPECT_EQ(q.headers.at("authorization"), "Bearer " + std::string(kToken));
    auto body = nlohmann::json::parse(q.body);
    EXPECT_EQ(body["password"], kPassword);
    EXPECT_EQ(body["old_password"], "Old \\ one");
    EXPECT_EQ(body["external"], "alice@ext");
    EXPECT_EQ(body["windows"], "EXAMPLE\\alice");
    EXPECT_EQ(body["application"], "CRM");
    EXPECT_EQ(body["origin"], "dc1");
    EXPECT_EQ(body["change_id"], 42);
    EXPECT_EQ(body["time"], "2026-09-21T14:13:20Z");
    // The receiver's check: HMAC over "TIMESTAMP.BODY", timestamp near now.
    const std::string ts = q.headers.at("x-pwsync-timestamp");
    EXPECT_NEAR(std::stoll(ts), std::chrono::duration_cast<std::chrono::seconds>(
                                    std::chrono::system_clock::now().time_since_epoch()).count(), 60);
    EXPECT_EQ(q.headers.at("x-pwsync-signature"), "sha256=" + hmac_hex(kHmac, ts + "." + q.body));
    EXPECT_NE(q.headers.at("x-pwsync-signature"), "sha256=" + hmac_hex("other key", ts + "." + q.body));
}

TEST_F(HttpAdapterTest, WithoutSecretsSendsNoAuthorizationAndNoSignature) {
    test::HttpsTestServer server(pki_.server_cert, pki_.server_key, "");
    EXPECT_EQ(deliver(context(server.url())).outcome, Outcome::done);
    auto reqs = server.requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_FALSE(reqs[0].headers.contains("authorization"));
    EXPECT_FALSE(reqs[0].headers.contains("x-pwsync-signature"));
    EXPECT_FALSE(nlohmann::json::parse(reqs[0].body).contains("old_password"));
}

TEST_F(HttpAdapterTest, PresentsTheClientCertificate) {
    test::HttpsTestServer server(pki_.server_cert, pki_.server_key, pki_.ca_cert);
    auto r = deliver(context(server.url(), {{"cert", pki_.client_cert}, {"key", pki_.client_key}}));
    EXPECT_EQ(r.outcome, Outcome::done) << r.message;
    ASSERT_EQ(server.requests().size(), 1u);
    EXPECT_EQ(server.requests()[0].client_subject, pki_.client_subject);
    // A certificate from another CA: the server refuses the handshake.
    r = deliver(context(server.url(), {{"cert", pki_.rogue_cert}, {"key", pki_.rogue_key}}));
    EXPECT_EQ(r.outcome, Outcome::retry) << r.message;
    EXPECT_EQ(server.requests().size(), 1u);
    // The server counts the failure after its alert is sent: give it a moment.
    for (int i = 0; i < 100 && server.failed_handshakes() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(server.failed_handshakes(), 1);
}

TEST_F(HttpAdapterTest, RefusesAServerItsCaDidNotSign) {
    test::HttpsTestServer server(pki_.rogue_cert, pki_.rogue_key, "");
    auto r = deliver(context(server.url()));
    EXPECT_EQ(r.outcome, Outcome::retry) << r.message;
    EXPECT_NE(r.message.find("certificate"), std::string::npos) << r.message;
    EXPECT_TRUE(server.requests().empty()) << "the password went to an unverified server";
    // No `ca`: the system CAs, which do not know the test CA either.
    auto c = context(server.url());
    c.config.properties.erase("ca");
    EXPECT_EQ(deliver(c).outcome, Outcome::retry);
    EXPECT_TRUE(server.requests().empty());
}

TEST_F(HttpAdapterTest, MapsStatusCodesToOutcomes) {
    test::HttpsTestServer server(pki_.server_cert, pki_.server_key, "");
    server.replies({{204, ""}, {429, "Retry-After: 120\r\n"}, {503, ""}, {400, ""}, {404, ""}, {302, "Location: https://127.0.0.1:1/\r\n"}});
    const auto c = context(server.url());
    EXPECT_EQ(deliver(c).outcome, Outcome::done);
    auto busy = deliver(c);
    EXPECT_EQ(busy.outcome, Outcome::retry);
    EXPECT_EQ(busy.retry_after, std::chrono::seconds(120));
    EXPECT_EQ(deliver(c).outcome, Outcome::retry);
    auto bad = deliver(c);
    EXPECT_EQ(bad.outcome, Outcome::permanent);
    EXPECT_EQ(bad.message, "HTTP 400: ok");
    EXPECT_EQ(deliver(c).outcome, Outcome::permanent);
    EXPECT_EQ(deliver(c).outcome, Outcome::permanent) << "a redirect is not followed";
    EXPECT_EQ(server.requests().size(), 6u);
}

TEST_F(HttpAdapterTest, ConnectionErrorsAreRetried) {
    auto r = deliver(context("https://127.0.0.1:1/hook"));
    EXPECT_EQ(r.outcome, Outcome::retry) << r.message;
}

TEST_F(HttpAdapterTest, BadSettingsAreRefusedUpFront) {
    for (const auto& url : {"http://127.0.0.1/hook", "", "ftp://x"}) {
        auto a = gateway::make_adapter(context(url));
        ASSERT_FALSE(a) << url;
        EXPECT_NE(a.error().message.find("url"), std::string::npos) << a.error().message;
    }
    auto a = gateway::make_adapter(context("https://127.0.0.1/", {{"cert", pki_.client_cert}}));
    ASSERT_FALSE(a);
    EXPECT_NE(a.error().message.find("cert and key"), std::string::npos);
}

TEST_F(HttpAdapterTest, AppliesThePasswordTransform) {
    test::HttpsTestServer server(pki_.server_cert, pki_.server_key, "");
    auto r = deliver(context(server.url(), {{"password-case", "upper"}, {"password-remove", " \""}}));
    EXPECT_EQ(r.outcome, Outcome::done) << r.message;
    ASSERT_EQ(server.requests().size(), 1u);
    EXPECT_EQ(nlohmann::json::parse(server.requests()[0].body)["password"], "GL\xC3\xBC" "CKQUOTED2026");
}

// Through the dispatcher and the store: 503 is retried (after Retry-After)
// and then done; 400 becomes a dead letter; no password in log or audit.
TEST_F(HttpAdapterTest, TheDispatcherRetriesThenDeliversOrDeadLetters) {
    test::HttpsTestServer server(pki_.server_cert, pki_.server_key, "");
    server.replies({{503, "Retry-After: 300\r\n"}, {200, ""}, {400, ""}});
    store::Store* st = &store();
    make_app("CRM");
    {
        auto w = st->write("test");
        ASSERT_TRUE(w);
        store::Adapter a = context(server.url()).config;
        a.flags.enabled = a.flags.sync_to_adapter = true;
        a.retry_count = 3;
        a.retry_delay = 10;
        std::map<std::string, Secret> secrets;
        secrets["hmac-secret"] = Secret(kHmac);
        ASSERT_TRUE(w->create_adapter(a, std::move(secrets)));
        ASSERT_TRUE(w->add_app_to_adapter("hook", "CRM"));
        ASSERT_TRUE(w->commit());
    }
    for (const char* u : {"alice", "bob"}) ASSERT_TRUE(map("CRM", std::string("EXAMPLE\\") + u, u));
    std::vector<std::string> logged;
    DispatcherOptions opts;
    opts.factory = gateway::make_adapter;
    opts.clock = &clock_;
    opts.random = [] { return 0.0; };
    opts.log = [&](std::string_view l) { logged.emplace_back(l); };
    Dispatcher dispatcher(*st, opts);
    auto enqueue = [&](const std::string& user) {
        auto w = st->write("test");
        store::Job j;
        j.adapter = "hook";
        j.app = "CRM";
        j.windows = "EXAMPLE\\" + user;
        j.external = user;
        j.origin = "dc1";
        auto id = w->enqueue_job(j, Secret(kPassword), nullptr);
        EXPECT_TRUE(id);
        EXPECT_TRUE(w->commit());
    };
    enqueue("alice");
    ASSERT_EQ(dispatcher.run_once().value_or(0), 1u);  // 503
    clock_.advance(std::chrono::seconds(60));            // past the 5 s backoff, not past Retry-After
    EXPECT_EQ(dispatcher.run_once().value_or(9), 0u);
    clock_.advance(std::chrono::seconds(300));
    ASSERT_EQ(dispatcher.run_once().value_or(0), 1u);  // 200
    enqueue("bob");
    ASSERT_EQ(dispatcher.run_once().value_or(0), 1u);  // 400
    auto r = st->read();
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->jobs()->empty());
    auto dead = r->dead_letters();
    ASSERT_TRUE(dead);
    ASSERT_EQ(dead->size(), 1u);
    EXPECT_EQ((*dead)[0].job.external, "bob");
    EXPECT_EQ((*dead)[0].reason, "HTTP 400: ok");
    auto mapping = r->mapping({"CRM", "EXAMPLE\\alice"});
    ASSERT_TRUE(mapping);
    EXPECT_TRUE(mapping->has_credential) << "done: the mapping's credential is the new password";
    const auto reqs = server.requests();
    ASSERT_EQ(reqs.size(), 3u);
    EXPECT_EQ(reqs[0].body, reqs[1].body) << "a retry sends the same change";
    for (const auto& q : reqs) EXPECT_EQ(q.headers.at("x-pwsync-signature"), "sha256=" + hmac_hex(kHmac, q.headers.at("x-pwsync-timestamp") + "." + q.body));
    for (const auto& l : logged) EXPECT_EQ(l.find(kPassword), std::string::npos) << l;
    EXPECT_TRUE(test::files_containing(dir_ / "store", kPassword).empty());
    EXPECT_TRUE(test::files_containing(dir_ / "store", kHmac).empty());
}

}  // namespace
}  // namespace pwsync::gateway
