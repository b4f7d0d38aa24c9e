// The listener against raw sockets: hostile or broken input, limits, idle
// connections, failed-bind throttling, and the exact shape of responses.
#include <thread>

#include "listener_fixture.h"

namespace pwsync::test {
namespace {

using namespace std::chrono_literals;

constexpr unsigned long kBindResponse = 0x61, kSearchDone = 0x65, kExtendedResponse = 0x78;
const std::string kNotice = "1.3.6.1.4.1.1466.20036";
const std::string kStartTls = "1.3.6.1.4.1.1466.20037";
const std::string kPasswordModify = "1.3.6.1.4.1.4203.1.11.1";
const std::string kWhoAmI = "1.3.6.1.4.1.4203.1.11.3";

class ListenerHostileTest : public ListenerTest {
protected:
    // The listener still serves a well-behaved client.
    void expect_still_serving() {
        auto c = tls_client();
        ASSERT_TRUE(c);
        ASSERT_TRUE(c->send(bind_request(1, kHookDn, kHookSecret)));
        const auto r = c->receive();
        ASSERT_TRUE(r);
        EXPECT_EQ(r->code, 0);
    }
    // The server answers with a Notice of Disconnection (protocolError) and closes.
    void expect_notice_and_close(RawClient& c, int code = 2) {
        const auto r = c.receive();
        ASSERT_TRUE(r);
        EXPECT_EQ(r->message_id, 0);
        EXPECT_EQ(r->op, kExtendedResponse);
        EXPECT_EQ(r->name, kNotice);
        EXPECT_EQ(r->code, code);
        EXPECT_TRUE(c.closed_within(3));
    }
    // Failed binds slowed in real time: `principal` and `peer` failures
    // free, then 400 ms doubling up to 5 s.
    gateway::ListenerOptions throttled(unsigned principal, unsigned peer) {
        auto o = options();
        o.clock = nullptr;  // throttling waits in real time
        o.throttle.per_principal = {.free_failures = principal, .window = 600s, .base_delay = 400ms, .max_delay = 5s};
        o.throttle.per_peer = {.free_failures = peer, .window = 600s, .base_delay = 400ms, .max_delay = 5s};
        return o;
    }
    // How long a bind on a fresh TLS connection takes, the handshake
    // included, and its result. The throttle's wait counts from the last
    // failure, before the handshake: timed from after it, a slow handshake
    // (ASan on a loaded machine: 67 ms) hid part of the wait.
    std::pair<std::chrono::milliseconds, int> timed_bind(const std::string& dn, const std::string& secret) {
        const auto t0 = std::chrono::steady_clock::now();
        auto c = tls_client();
        if (!c) return {0ms, -1};
        if (!c->send(bind_request(1, dn, secret))) return {0ms, -1};
        const auto r = c->receive();
        const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
        return {took, r ? r->code : -1};
    }
};

TEST_F(ListenerHostileTest, OversizedLengthHeaderClosesAndOthersAreServed) {
    start();
    auto c = plain_client();
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->send(std::string("\x30\x84\x7f\xff\xff\xff", 6)));
    expect_notice_and_close(*c);
    expect_still_serving();
}

TEST_F(ListenerHostileTest, MessageJustOverTheLimitIsRefusedBeforeReading) {
    auto o = options();
    o.max_message_size = 1024;
    start(o);
    auto c = tls_client();
    ASSERT_TRUE(c);
    // Header only: the listener must not wait for (or allocate) the body.
    ASSERT_TRUE(c->send(std::string("\x30\x82\x04\x01", 4)));
    expect_notice_and_close(*c);
    // A bind just under the limit still works.
    auto ok = tls_client();
    ASSERT_TRUE(ok);
    ASSERT_TRUE(ok->send(bind_request(1, kHookDn + std::string(900, ' '), kHookSecret)));
    const auto r = ok->receive();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, 49);
}

TEST_F(ListenerHostileTest, TruncatedMessageThenEofCloses) {
    start();
    auto c = tls_client();
    ASSERT_TRUE(c);
    const std::string bind = bind_request(5, kHookDn, kHookSecret);
    ASSERT_TRUE(c->send(bind.substr(0, bind.size() / 2)));
    c.reset();  // the client goes away mid-message
    ASSERT_TRUE(eventually([&] { return listener_->connection_count() == 0; }));
    expect_still_serving();
}

TEST_F(ListenerHostileTest, TruncatedInnerElementIsAProtocolError) {
    start();
    auto c = tls_client();
    ASSERT_TRUE(c);
    // messageID 1, BindRequest whose name claims 16 bytes of the 2 there are.
    ASSERT_TRUE(c->send(std::string("\x30\x0c\x02\x01\x01\x60\x07\x02\x01\x03\x04\x10\x61\x62", 14)));
    expect_notice_and_close(*c);
    expect_still_serving();
}

TEST_F(ListenerHostileTest, GarbageBytesClose) {
    start();
    auto c = plain_client();
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    expect_notice_and_close(*c);
    auto d = plain_client();
    ASSERT_TRUE(d);
    ASSERT_TRUE(d->send(std::string("\x30\x80\x00\x00", 4)));  // indefinite length
    expect_notice_and_close(*d);
    expect_still_serving();
}

TEST_F(ListenerHostileTest, PlainLdapOnTheLdapsPortIsDropped) {
    start();
    auto c = RawClient::connect("127.0.0.1", ldaps_port());
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->send(bind_request(1, kHookDn, kHookSecret)));
    EXPECT_TRUE(c->closed_within(3));
    {
        std::lock_guard lock(handler_.mutex);
        EXPECT_EQ(handler_.simple_binds, 0);
    }
    expect_still_serving();
}

TEST_F(ListenerHostileTest, NothingButStartTlsBeforeTls) {
    start();
    auto c = plain_client();
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->send(bind_request(3, kHookDn, kHookSecret)));
    auto r = c->receive();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->message_id, 3);
    EXPECT_EQ(r->op, kBindResponse);
    EXPECT_EQ(r->code, 13);
    ASSERT_TRUE(c->send(extended_request(4, kPasswordModify, password_modify_value("alice", {}, "pw-Secret1"))));
    r = c->receive();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->message_id, 4);
    EXPECT_EQ(r->op, kExtendedResponse);
    EXPECT_EQ(r->code, 13);
    ASSERT_TRUE(c->send(extended_request(5, kWhoAmI)));
    r = c->receive();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, 13);
    ASSERT_TRUE(c->send(search_request(6)));
    r = c->receive();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->op, kSearchDone);
    EXPECT_EQ(r->code, 13);
    // StartTLS still works on the same connection afterwards.
    ASSERT_TRUE(c->send(extended_request(7, kStartTls)));
    r = c->receive();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, 0);
    EXPECT_EQ(r->name, kStartTls);
    ASSERT_TRUE(c->start_tls(pki().ca_cert));
    ASSERT_TRUE(c->send(bind_request(8, kHookDn, kHookSecret)));
    r = c->receive();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, 0);
    EXPECT_TRUE(handler_.modify_calls().empty());
}

TEST_F(ListenerHostileTest, ResponsesEchoIdsInTheRightShape) {
    start();
    auto c = tls_client();
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->send(bind_request(2147483647, kHookDn, kHookSecret)));
    auto r = c->receive();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->message_id, 2147483647);
    EXPECT_EQ(r->op, kBindResponse);
    EXPECT_EQ(r->code, 0);

    ASSERT_TRUE(c->send(extended_request(9, kWhoAmI)));
    r = c->receive();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->message_id, 9);
    EXPECT_EQ(r->op, kExtendedResponse);
    EXPECT_FALSE(r->name.has_value());
    EXPECT_EQ(r->value, "dn:" + kHookDn);

    ASSERT_TRUE(c->send(search_request(10)));
    r = c->receive();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->message_id, 10);
    EXPECT_EQ(r->op, kSearchDone);
    EXPECT_EQ(r->code, 53);

    ASSERT_TRUE(c->send(extended_request(11, kStartTls)));  // already TLS
    r = c->receive();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, 1);

    ASSERT_TRUE(c->send(extended_request(12, kPasswordModify, "\x30\x03\x80\x05\x61")));  // malformed value
    r = c->receive();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->message_id, 12);
    EXPECT_EQ(r->code, 2);

    ASSERT_TRUE(c->send(extended_request(13, kPasswordModify)));  // no value: nothing to set
    r = c->receive();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, 53);

    ASSERT_TRUE(c->send(extended_request(14, kPasswordModify, password_modify_value({}, {}, "only-new-1"))));
    r = c->receive();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, 0);
    const auto calls = handler_.modify_calls();
    ASSERT_EQ(calls.size(), 1U);
    EXPECT_EQ(calls[0].identity, "");
    EXPECT_EQ(calls[0].new_password, "only-new-1");

    ASSERT_TRUE(c->send(sasl_bind_request(15, "DIGEST-MD5")));
    r = c->receive();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, 7);

    ASSERT_TRUE(c->send(bind_request(16, kHookDn, "")));  // unauthenticated bind
    r = c->receive();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, 53);

    // A failed bind leaves the connection anonymous.
    ASSERT_TRUE(c->send(extended_request(17, kPasswordModify, password_modify_value({}, {}, "only-new-2"))));
    r = c->receive();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, 50);

    ASSERT_TRUE(c->send(unbind_request(18)));
    EXPECT_TRUE(c->closed_within(3));
}

// OpenLDAP's tools will not even try EXTERNAL without a certificate of their
// own, so these go over a raw connection.
TEST_F(ListenerHostileTest, SaslExternalWithoutCertificateGives48) {
    start();
    auto c = tls_client();
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->send(sasl_bind_request(1, "EXTERNAL")));
    const auto r = c->receive();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->op, kBindResponse);
    EXPECT_EQ(r->code, 48);
    std::lock_guard lock(handler_.mutex);
    EXPECT_TRUE(handler_.external_peers.empty());
}

TEST_F(ListenerHostileTest, SaslExternalWithAnAuthzidIsRefused) {
    start();
    auto c = RawClient::connect("127.0.0.1", ldaps_port());
    ASSERT_TRUE(c && c->start_tls(pki().ca_cert, pki().client_cert, pki().client_key));
    ASSERT_TRUE(c->send(sasl_bind_request(1, "EXTERNAL", "dn:cn=admin")));
    auto r = c->receive();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, 50);
    ASSERT_TRUE(c->send(sasl_bind_request(2, "EXTERNAL", "")));  // empty: the certificate's own identity
    r = c->receive();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, 0);
    ASSERT_TRUE(c->send(extended_request(3, kWhoAmI)));
    r = c->receive();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->value, "u:dc1-hook");
}

TEST_F(ListenerHostileTest, WithoutClientCaExternalIsNotSupported) {
    auto o = options();
    o.client_ca_file.clear();
    start(o);
    auto c = RawClient::connect("127.0.0.1", ldaps_port());
    ASSERT_TRUE(c && c->start_tls(pki().ca_cert, pki().client_cert, pki().client_key));
    ASSERT_TRUE(c->send(sasl_bind_request(1, "EXTERNAL")));
    const auto r = c->receive();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, 7);
}

TEST_F(ListenerHostileTest, PipelinedRequestsAreAnsweredInOrder) {
    start();
    auto c = tls_client();
    ASSERT_TRUE(c);
    const std::string abandon("\x30\x06\x02\x01\x03\x50\x01\x01", 8);  // Abandon: no answer
    ASSERT_TRUE(c->send(bind_request(1, kHookDn, kHookSecret) + extended_request(2, kWhoAmI) + abandon +
                        extended_request(4, kPasswordModify, password_modify_value("bob", {}, "Bob-pw-1"))));
    for (int id : {1, 2, 4}) {
        const auto r = c->receive();
        ASSERT_TRUE(r);
        EXPECT_EQ(r->message_id, id);
        EXPECT_EQ(r->code, 0);
    }
    ASSERT_EQ(handler_.modify_calls().size(), 1U);
    EXPECT_EQ(handler_.modify_calls()[0].identity, "bob");
}

TEST_F(ListenerHostileTest, BadMessageIdOrUnknownOperationCloses) {
    start();
    auto c = tls_client();
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->send(std::string("\x30\x05\x02\x01\x00\x42\x00", 7)));  // messageID 0
    expect_notice_and_close(*c);
    auto d = tls_client();
    ASSERT_TRUE(d);
    ASSERT_TRUE(d->send(std::string("\x30\x05\x02\x01\x01\x61\x00", 7)));  // a response, not a request
    expect_notice_and_close(*d);
    expect_still_serving();
}

TEST_F(ListenerHostileTest, MaxConnectionsExceededClosesAtOnce) {
    auto o = options();
    o.max_connections = 2;
    start(o);
    auto a = plain_client();
    auto b = plain_client();
    ASSERT_TRUE(a && b);
    ASSERT_TRUE(eventually([&] { return listener_->connection_count() == 2; }));
    auto c = plain_client();
    ASSERT_TRUE(c);
    EXPECT_TRUE(c->closed_within(3));
    a.reset();
    ASSERT_TRUE(eventually([&] { return listener_->connection_count() == 1; }));
    auto d = plain_client();
    ASSERT_TRUE(d);
    ASSERT_TRUE(d->send(extended_request(1, kStartTls)));
    const auto r = d->receive();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, 0);
}

TEST_F(ListenerHostileTest, MaxConnectionsPerAddressExceededClosesAtOnce) {
    auto o = options();
    o.max_connections = 10;
    o.max_connections_per_address = 2;
    start(o);
    auto a = plain_client();
    auto b = plain_client();
    ASSERT_TRUE(a && b);
    ASSERT_TRUE(eventually([&] { return listener_->connection_count() == 2; }));
    auto c = plain_client();
    ASSERT_TRUE(c);
    EXPECT_TRUE(c->closed_within(3));
    EXPECT_EQ(listener_->connection_count(), 2u);
    a.reset();
    ASSERT_TRUE(eventually([&] { return listener_->connection_count() == 1; }));
    auto d = plain_client();
    ASSERT_TRUE(d);
    ASSERT_TRUE(d->send(extended_request(1, kStartTls)));
    const auto r = d->receive();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, 0);
}

TEST_F(ListenerHostileTest, IdleConnectionsAreClosed) {
    start();
    auto idle = plain_client();
    auto busy = plain_client();
    ASSERT_TRUE(idle && busy);
    ASSERT_TRUE(eventually([&] { return listener_->connection_count() == 2; }));
    clock_.advance(40s);
    ASSERT_TRUE(busy->send(extended_request(1, kWhoAmI)));  // activity (answered 13: no TLS yet)
    ASSERT_TRUE(busy->receive());
    clock_.advance(25s);  // 65 s since `idle` connected, 25 s since `busy` spoke
    EXPECT_TRUE(idle->closed_within(3));
    EXPECT_FALSE(busy->closed_within(0.6));
    clock_.advance(40s);
    EXPECT_TRUE(busy->closed_within(3));
    EXPECT_TRUE(eventually([&] { return listener_->connection_count() == 0; }));
}

TEST_F(ListenerHostileTest, StalledTlsHandshakeTimesOut) {
    start();
    auto c = RawClient::connect("127.0.0.1", ldaps_port());
    ASSERT_TRUE(c);
    ASSERT_TRUE(eventually([&] { return listener_->connection_count() == 1; }));
    clock_.advance(61s);
    EXPECT_TRUE(c->closed_within(3));
}

TEST_F(ListenerHostileTest, FailedBindsSlowThatPrincipalNotOthers) {
    start(throttled(2, 100));
    for (int i = 0; i < 2; ++i) {
        const auto [took, code] = timed_bind(kHookDn, std::string(kWrongSecret));
        EXPECT_EQ(code, 49);
        EXPECT_LT(took, 300ms);
    }
    // Third attempt on that DN waits; a correct password too (no oracle).
    auto [took, code] = timed_bind(kHookDn, std::string(kWrongSecret));
    EXPECT_EQ(code, 49);
    EXPECT_GE(took, 350ms);
    // Meanwhile another principal from the same address is not slowed,
    // even while a throttled bind is waiting on another connection.
    std::pair<std::chrono::milliseconds, int> slow{};
    std::thread t([&] { slow = timed_bind(kHookDn, kHookSecret); });
    std::this_thread::sleep_for(100ms);
    std::tie(took, code) = timed_bind(kOtherDn, kOtherSecret);
    EXPECT_EQ(code, 0);
    EXPECT_LT(took, 300ms);
    t.join();
    EXPECT_EQ(slow.second, 0);
    EXPECT_GE(slow.first, 700ms);  // 800 ms after the third failure
    // Success cleared the principal's record.
    std::tie(took, code) = timed_bind(kHookDn, kHookSecret);
    EXPECT_EQ(code, 0);
    EXPECT_LT(took, 300ms);
    std::lock_guard lock(log_mutex_);
    EXPECT_TRUE(std::any_of(log_.begin(), log_.end(),
                            [](const std::string& l) { return l.find("slowed down") != std::string::npos; }));
}

// A bind the store could not check (52: a database failing over) is not a
// failed bind: however many, they do not slow the principal or the address,
// and the next bind goes through at once.
TEST_F(ListenerHostileTest, BindsTheStoreCouldNotCheckAreNotCountedAsFailures) {
    start(throttled(1, 1));
    {
        std::lock_guard lock(handler_.mutex);
        handler_.bind_answers.assign(4, gateway::LdapResult{52, "the store is unavailable: try again"});
    }
    for (int i = 0; i < 4; ++i) {
        const auto [took, code] = timed_bind(kHookDn, kHookSecret);
        EXPECT_EQ(code, 52);
        EXPECT_LT(took, 300ms);
    }
    auto [took, code] = timed_bind(kHookDn, kHookSecret);
    EXPECT_EQ(code, 0);
    EXPECT_LT(took, 300ms);
    // Whereas two 49s in a row are slowed (the throttle is on).
    for (int i = 0; i < 2; ++i) std::tie(took, code) = timed_bind(kHookDn, std::string(kWrongSecret));
    EXPECT_EQ(code, 49);
    EXPECT_GE(took, 350ms);
}

TEST_F(ListenerHostileTest, FailedBindsSlowThePeerAddress) {
    start(throttled(100, 2));
    EXPECT_EQ(timed_bind("cn=a", std::string(kWrongSecret)).second, 49);
    EXPECT_EQ(timed_bind("cn=b", std::string(kWrongSecret)).second, 49);
    const auto [took, code] = timed_bind(kOtherDn, kOtherSecret);  // same address, other name
    EXPECT_EQ(code, 0);
    EXPECT_GE(took, 350ms);
}

TEST_F(ListenerHostileTest, ThrottledBindBeyondMaxDelayIsBusy) {
    auto o = options();
    o.clock = nullptr;
    o.throttle.per_principal = {.free_failures = 1, .window = 600s, .base_delay = 2s, .max_delay = 2s};
    start(o);
    EXPECT_EQ(timed_bind(kHookDn, std::string(kWrongSecret)).second, 49);
    // The next slot is 2 s away; three attempts at once: one waits for it,
    // the others would wait beyond max_delay and are told busy at once.
    std::vector<int> codes(3);
    std::vector<std::thread> threads;
    for (int i = 0; i < 3; ++i)
        threads.emplace_back([&, i] { codes[i] = timed_bind(kHookDn, std::string(kWrongSecret)).second; });
    for (auto& t : threads) t.join();
    std::sort(codes.begin(), codes.end());
    EXPECT_EQ(codes, (std::vector<int>{49, 51, 51}));
}

}  // namespace
}  // namespace pwsync::test
