// The lean capture hook client (cli/notify): its LDAP messages checked
// against the gateway's own codec, and the client against the gateway's
// listener in process (TLS, StartTLS, bind, Password Modify, failover).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "ber.h"
#include "gateway_client.h"
#include "ldap_codec.h"
#include "ldap_message.h"
#include "listener_fixture.h"

namespace pwsync::notify {
namespace {

namespace gw = gateway::ldap;

// The gateway's decoder wants a readable byte past the message.
Result<gw::Request> gateway_decode(std::string_view bytes) {
    std::string copy(bytes);
    copy.push_back('\0');
    return gw::decode_request(std::string_view(copy.data(), copy.size() - 1));
}

TEST(NotifyLdapMessage, BindRequestReadsAsTheGatewayReadsIt) {
    const Secret req = ldap::bind_request(7, "cn=dc1", "Principal-Secret-9");
    ASSERT_EQ(ldap::message_size(req.view(), 1 << 20), req.size());
    auto r = gateway_decode(req.view());
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->message_id, 7);
    EXPECT_EQ(r->op, gw::tag::bind_request);
    const auto& bind = std::get<gw::BindRequest>(r->body);
    EXPECT_EQ(bind.version, 3);
    const auto& simple = std::get<gw::SimpleBind>(bind.auth);
    EXPECT_EQ(simple.dn, "cn=dc1");
    EXPECT_EQ(simple.password.view(), "Principal-Secret-9");
}

TEST(NotifyLdapMessage, PasswordModifyAndStartTlsReadAsTheGatewayReadsThem) {
    // A password long enough for a long-form length.
    const Secret pw(std::string(300, 'x') + "-New.1");
    const Secret old("Old-Pass.1");
    const Secret value = directory::ber::password_modify_request("TEST\\alice", &old, &pw);
    const Secret req = ldap::extended_request(2, ldap::kPasswordModifyOid, value.view());
    auto r = gateway_decode(req.view());
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->message_id, 2);
    const auto& ext = std::get<gw::ExtendedRequest>(r->body);
    EXPECT_EQ(ext.oid, gw::oid::password_modify);
    ASSERT_TRUE(ext.value);
    auto pm = gw::decode_password_modify(ext.value->view());
    ASSERT_TRUE(pm) << pm.error().message;
    EXPECT_EQ(pm->user_identity, "TEST\\alice");
    ASSERT_TRUE(pm->old_password && pm->new_password);
    EXPECT_EQ(pm->old_password->view(), "Old-Pass.1");
    EXPECT_EQ(pm->new_password->view(), pw.view());

    r = gateway_decode(ldap::extended_request(1, ldap::kStartTlsOid, std::nullopt).view());
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(std::get<gw::ExtendedRequest>(r->body).oid, gw::oid::start_tls);
    EXPECT_FALSE(std::get<gw::ExtendedRequest>(r->body).value);
    r = gateway_decode(ldap::unbind_request(3));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->op, gw::tag::unbind_request);
}

TEST(NotifyLdapMessage, ReadsTheResponsesTheGatewayWrites) {
    auto bytes = gw::encode_response(5, gw::tag::bind_response, {49, "80090308: invalid credentials\n"});
    ASSERT_TRUE(bytes);
    auto r = ldap::decode_response(*bytes);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->message_id, 5);
    EXPECT_EQ(r->op, ldap::kBindResponse);
    EXPECT_EQ(r->result_code, 49);
    EXPECT_EQ(r->diagnostic, "80090308: invalid credentials");
    bytes = gw::encode_response(9, gw::tag::extended_response, {0, ""}, gw::oid::password_modify, "\x30\x00");
    ASSERT_TRUE(bytes);
    r = ldap::decode_response(*bytes);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->op, ldap::kExtendedResponse);
    EXPECT_EQ(r->result_code, 0);
    EXPECT_EQ(r->response_name, gw::oid::password_modify);
    bytes = gw::encode_notice_of_disconnection({52, "shutting down"});
    ASSERT_TRUE(bytes);
    r = ldap::decode_response(*bytes);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->message_id, 0);
    EXPECT_EQ(r->result_code, 52);
}

TEST(NotifyLdapMessage, RefusesMalformedResponses) {
    const auto good = *gw::encode_response(5, gw::tag::extended_response, {0, "ok"}, gw::oid::password_modify);
    ASSERT_TRUE(ldap::decode_response(good));
    for (std::size_t cut = 0; cut < good.size(); ++cut)
        EXPECT_FALSE(ldap::decode_response(std::string_view(good).substr(0, cut))) << cut;
    EXPECT_FALSE(ldap::decode_response(good + "x"));               // trailing bytes
    std::string bad_code = good;
    bad_code[bad_code.find('\x0a')] = '\x02';                       // resultCode not ENUMERATED
    EXPECT_FALSE(ldap::decode_response(bad_code));
    EXPECT_FALSE(ldap::decode_response(std::string("\x30\x03\x02\x01\x05", 5)));  // no protocolOp
}

TEST(NotifyLdapMessage, MessageSizeNeedsMoreOrRefuses) {
    EXPECT_FALSE(ldap::message_size("", 100));
    EXPECT_FALSE(ldap::message_size("\x30", 100));
    EXPECT_FALSE(ldap::message_size(std::string("\x30\x82\x01", 3), 1000));
    EXPECT_EQ(ldap::message_size(std::string("\x30\x05", 2), 100), 7U);
    EXPECT_EQ(ldap::message_size(std::string("\x30\x82\x01\x00", 4), 1000), 260U);
    EXPECT_EQ(ldap::message_size("G", 100), 0U);                                    // not a SEQUENCE
    EXPECT_EQ(ldap::message_size(std::string("\x30\x80", 2), 100), 0U);             // indefinite
    EXPECT_EQ(ldap::message_size(std::string("\x30\x82\x01\x00", 4), 100), 0U);     // over the limit
    EXPECT_EQ(ldap::message_size(std::string("\x30\x85\x01\x00\x00\x00\x00", 7), 1 << 20), 0U);
}

TEST(NotifyLdapMessage, RetryableResultCodes) {
    for (int rc : {1, 3, 51, 52, 80}) EXPECT_TRUE(ldap::retryable_result(rc)) << rc;
    for (int rc : {0, 2, 19, 32, 49, 50, 53}) EXPECT_FALSE(ldap::retryable_result(rc)) << rc;
    EXPECT_EQ(ldap::result_name(49), "invalid credentials (49)");
}

TEST(GatewayUri, ParsesLdapsLdapAndIpv6) {
    auto e = parse_gateway_uri("ldaps://gw.example.com:1636");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->host, "gw.example.com");
    EXPECT_EQ(e->port, "1636");
    EXPECT_TRUE(e->ldaps);
    e = parse_gateway_uri("ldap://10.0.0.1/");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->port, "389");
    EXPECT_FALSE(e->ldaps);
    e = parse_gateway_uri("ldaps://[::1]:1636");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->host, "::1");
    EXPECT_EQ(parse_gateway_uri("ldaps://gw")->port, "636");
    for (const char* bad : {"http://gw", "ldaps://", "ldaps://:636", "ldaps://gw:0", "ldaps://gw:70000", "ldaps://gw:x",
                            "ldaps://gw/dc=x", "ldaps://[::1", "ldaps://[::1]x"})
        EXPECT_FALSE(parse_gateway_uri(bad)) << bad;
}

// The client against the gateway's listener (fake handler behind it).
class NotifyClient : public test::ListenerTest {
protected:
    ClientOptions client(std::vector<std::string> uris) {
        ClientOptions o;
        o.uris = std::move(uris);
        o.ca_file = pki().ca_cert;
        o.timeout = std::chrono::milliseconds(2000);
        o.principal = test::kHookDn;
        return o;
    }
    std::expected<std::string, ClientError> send(const ClientOptions& o, std::string_view secret = test::kHookSecret) {
        return password_modify(o, Secret(secret), "TEST\\alice", nullptr, Secret("New-Pass.2024x"));
    }
};

// A port nothing listens on (bound, never listening, so no one else takes it
// during the test).
struct DeadPort {
    DeadPort() {
        fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
    }
    ~DeadPort() { ::close(fd); }
    int fd = -1;
    std::uint16_t port = 0;
};

TEST_F(NotifyClient, StoresOverLdapsAndOverStartTls) {
    start();
    for (const auto& uri : {ldaps_uri(), ldap_uri()}) {
        auto r = send(client({uri}));
        ASSERT_TRUE(r) << r.error().message;
        EXPECT_EQ(*r, uri);
    }
    const auto calls = handler_.modify_calls();
    ASSERT_EQ(calls.size(), 2U);
    for (const auto& c : calls) {
        EXPECT_EQ(c.principal, test::kHookDn);
        EXPECT_EQ(c.identity, "TEST\\alice");
        EXPECT_EQ(c.new_password, "New-Pass.2024x");
        EXPECT_FALSE(c.old_password);
    }
}

TEST_F(NotifyClient, AnUnreachableGatewayPassesToTheNext) {
    start();
    DeadPort dead;
    const std::string first = "ldaps://127.0.0.1:" + std::to_string(dead.port);
    auto r = send(client({first, ldaps_uri()}));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(*r, ldaps_uri());
    // All unreachable: an outage (exit 3), every URI named.
    DeadPort dead2;
    const std::string second = "ldap://127.0.0.1:" + std::to_string(dead2.port);
    r = send(client({first, second}));
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().retryable);
    EXPECT_FALSE(r.error().connected);
    EXPECT_NE(r.error().message.find(first), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(second), std::string::npos) << r.error().message;
}

TEST_F(NotifyClient, ARefusedBindStopsTheFailover) {
    start();
    auto r = send(client({ldaps_uri(), ldap_uri()}), test::kWrongSecret);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().connected);
    EXPECT_FALSE(r.error().retryable);
    EXPECT_EQ(r.error().result_code, 49);
    EXPECT_EQ(handler_.simple_binds, 1);  // not tried again on the second URI
    EXPECT_EQ(r.error().message.find(test::kWrongSecret), std::string::npos);
    EXPECT_TRUE(handler_.modify_calls().empty());
}

// A gateway whose store cannot check the bind now (52, e.g. its database
// failing over) is not a refusal: the next gateway is tried.
TEST_F(NotifyClient, ABindTheGatewayCouldNotCheckPassesToTheNext) {
    start();
    handler_.bind_answers = {{52, "the store is unavailable: try again"}};
    auto r = send(client({ldaps_uri(), ldap_uri()}));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(*r, ldap_uri());
    EXPECT_EQ(handler_.simple_binds, 2);
    EXPECT_EQ(handler_.modify_calls().size(), 1U);
    // Every gateway unable to check: an outage (exit 3), not a refusal.
    handler_.bind_answers = {{52, "the store is unavailable: try again"}, {80, "the store could not check this principal"}};
    r = send(client({ldaps_uri(), ldap_uri()}));
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().connected);
    EXPECT_TRUE(r.error().retryable);
    EXPECT_EQ(r.error().result_code, 52);
    EXPECT_TRUE(r.error().at_bind);
    EXPECT_NE(r.error().message.find("no gateway took the bind"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(ldap_uri()), std::string::npos) << r.error().message;
    EXPECT_EQ(handler_.modify_calls().size(), 1U);
}

// The bind throttle's 51 (another sender's failed binds slowed this
// principal down) passes to the next gateway too; that gateway's refusal
// (49) is final, and said to be the bind's.
TEST_F(NotifyClient, ABusyBindPassesOnAndARefusedOneEndsTheFailover) {
    start();
    handler_.bind_answers = {{51, "too many failed binds: try again later"}, {49, "invalid credentials"}};
    auto r = send(client({ldaps_uri(), ldap_uri(), ldaps_uri()}));
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().connected);
    EXPECT_FALSE(r.error().retryable);
    EXPECT_TRUE(r.error().at_bind);
    EXPECT_EQ(r.error().result_code, 49);
    EXPECT_EQ(r.error().uri, ldap_uri());
    EXPECT_EQ(handler_.simple_binds, 2);  // the third gateway is not asked
    EXPECT_TRUE(handler_.modify_calls().empty());
}

TEST_F(NotifyClient, RefusalsAndOutagesOfTheChange) {
    start();
    handler_.result = {19, "password policy"};
    auto r = send(client({ldaps_uri()}));
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().connected);
    EXPECT_FALSE(r.error().retryable);
    EXPECT_EQ(r.error().result_code, 19);
    EXPECT_EQ(r.error().message, "password policy");
    handler_.result = {52, "store unavailable"};
    r = send(client({ldaps_uri()}));
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().retryable);
    EXPECT_EQ(r.error().result_code, 52);
}

TEST_F(NotifyClient, AnotherCaOrAMissingCaFileIsATlsFailure) {
    start();
    // A certificate of another CA: the gateway's does not chain to it.
    auto o = client({ldaps_uri()});
    o.ca_file = pki().rogue_cert;
    auto r = send(o);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().tls);
    EXPECT_FALSE(r.error().connected);
    EXPECT_NE(r.error().message.find("certificate verify failed"), std::string::npos) << r.error().message;
    o = client({ldap_uri()});
    o.ca_file = pki().rogue_cert;
    r = send(o);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().tls);
    o = client({ldaps_uri()});
    o.ca_file = pki().ca_cert + ".missing";
    r = send(o);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().tls);
    EXPECT_TRUE(handler_.modify_calls().empty());
}

TEST_F(NotifyClient, TheCertificateMustNameTheHostOfTheUri) {
    // Listening on every address: 127.0.0.2 reaches it, but the certificate
    // names 127.0.0.1, ::1 and localhost only.
    auto lo = options();
    lo.uris = {"ldaps://0.0.0.0:0", "ldap://127.0.0.1:0"};
    start(lo);
    const std::string port = std::to_string(ldaps_port());
    auto r = send(client({"ldaps://127.0.0.2:" + port}));
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().tls) << r.error().message;
    EXPECT_NE(r.error().message.find("certificate verify failed"), std::string::npos) << r.error().message;
    r = send(client({"ldaps://localhost:" + port}));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(handler_.modify_calls().size(), 1U);
}

TEST_F(NotifyClient, ASilentGatewayTimesOut) {
    // Accepts connections (the kernel does) but never speaks TLS.
    DeadPort silent;
    ASSERT_EQ(::listen(silent.fd, 4), 0);
    auto o = client({"ldaps://127.0.0.1:" + std::to_string(silent.port)});
    o.timeout = std::chrono::milliseconds(300);
    const auto t0 = std::chrono::steady_clock::now();
    auto r = send(o);
    const auto took = std::chrono::steady_clock::now() - t0;
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().retryable);
    EXPECT_NE(r.error().message.find("timed out"), std::string::npos) << r.error().message;
    EXPECT_LT(took, std::chrono::seconds(2));
}

}  // namespace
}  // namespace pwsync::notify
