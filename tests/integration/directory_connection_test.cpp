// Connections and binds against the real Samba DC: simple and GSSAPI binds,
// StartTLS, SASL sealing, failover, reconnect, and the refusal to send a
// password over an unprotected connection.
#include <ldap.h>

#include <chrono>

#include "dc_fixture.h"
#include "tcp_proxy.h"

namespace pwsync::test {
namespace {

using namespace std::chrono_literals;

class Bind : public DirectoryTest {};
class Refuse : public DirectoryTest {};
class Failover : public DirectoryTest {};
class Reconnect : public DirectoryTest {};

TEST_F(Bind, SimpleWithDnOverLdaps) {
    auto c = dir::Connection::open(svc_simple_options());
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_TRUE(c->tls());
    EXPECT_TRUE(c->protected_for_passwords());
    EXPECT_EQ(c->uri(), env("PWSYNC_TEST_DC_URI"));
    // Bound for real: anonymous searches of CN=Users return nothing on AD.
    auto a = dir::resolve_account(*c, domain(), env("PWSYNC_TEST_SVC_USER"));
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ(ascii_lower(a->dn), ascii_lower(env("PWSYNC_TEST_SVC_DN")));
}

TEST_F(Bind, SimpleWithUpnOverStartTls) {
    dir::ConnectOptions o = svc_simple_options();
    o.uris = {env("PWSYNC_TEST_DC_STARTTLS_URI")};
    o.credentials.name = env("PWSYNC_TEST_SVC_USER") + "@" + env("PWSYNC_TEST_DC_DNS_DOMAIN");
    auto c = dir::Connection::open(std::move(o));
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_TRUE(c->uri().starts_with("ldap://"));
    EXPECT_TRUE(c->tls()) << "StartTLS must be in place on ldap://";
    auto a = dir::resolve_account(*c, domain(), "TEST\\" + env("PWSYNC_TEST_SVC_USER"));
    EXPECT_TRUE(a) << a.error().message;
}

TEST_F(Bind, WrongPasswordIsPermanentAndDoesNotLeak) {
    dir::ConnectOptions o = svc_simple_options();
    const std::string wrong = "Wrong-Pw-4711.x";
    o.credentials.password = Secret(wrong);
    auto c = dir::Connection::open(std::move(o));
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().ldap_code, LDAP_INVALID_CREDENTIALS);
    EXPECT_EQ(c.error().reason, dir::Reason::invalid_credentials);
    EXPECT_EQ(c.error().verdict, dir::Verdict::permanent);
    EXPECT_EQ(c.error().ad_code, 0x80090308u);
    ASSERT_TRUE(c.error().ad_data);
    EXPECT_EQ(*c.error().ad_data, 0x52eu);
    expect_no_leak(c.error().message, {wrong, env("PWSYNC_TEST_SVC_PASSWORD")});
}

TEST_F(Bind, GssapiWithKeytabOverLdaps) {
    auto c = dir::Connection::open(svc_gssapi_options());
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_TRUE(c->tls());
    EXPECT_EQ(c->sasl_ssf(), 0u) << "over TLS the SASL layer must be off (Samba refuses both)";
    auto a = dir::resolve_account(*c, domain(), env("PWSYNC_TEST_SVC_USER"));
    ASSERT_TRUE(a) << a.error().message;
    // Kerberos-bound as the service account, which may reset passwords.
    auto u = make_user("gss");
    auto r = dir::reset_password(*c, u.dn, Secret("Gss-Reset-Pw.7"));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(can_bind(u.upn, "Gss-Reset-Pw.7"));
}

TEST_F(Bind, GssapiSealedOverPlainLdap) {
    dir::ConnectOptions o = svc_gssapi_options();
    o.uris = {env("PWSYNC_TEST_DC_STARTTLS_URI")};
    o.protection = dir::Protection::sasl_seal;
    auto c = dir::Connection::open(std::move(o));
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_FALSE(c->tls());
    EXPECT_GE(c->sasl_ssf(), 56u);
    EXPECT_TRUE(c->protected_for_passwords());
    auto u = make_user("seal");
    auto r = dir::reset_password(*c, u.dn, Secret("Sealed-Reset-Pw.7"));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(can_bind(u.upn, "Sealed-Reset-Pw.7"));
}

TEST_F(Bind, GssapiWithAMissingKeytabIsPermanent) {
    dir::ConnectOptions o = svc_gssapi_options();
    o.credentials.keytab = env("PWSYNC_TEST_TMP") + "/no-such.keytab";
    auto c = dir::Connection::open(std::move(o));
    ASSERT_FALSE(c);
    EXPECT_FALSE(c.error().retryable()) << c.error().message;
}

TEST_F(Bind, CaVerificationIsOnByDefault) {
    // Without our CA the DC's certificate does not verify: refused, and not
    // mistaken for an outage.
    dir::ConnectOptions o = svc_simple_options();
    o.ca_file = "/etc/ssl/certs/ca-certificates.crt";
    auto c = dir::Connection::open(std::move(o));
    ASSERT_FALSE(c) << "connected to a DC whose certificate does not verify";
    EXPECT_EQ(c.error().reason, dir::Reason::tls) << c.error().message;
    EXPECT_FALSE(c.error().retryable());
    EXPECT_NE(c.error().message.find("certificate verify failed"), std::string::npos) << c.error().message;
    // The same through StartTLS.
    dir::ConnectOptions st = svc_simple_options();
    st.uris = {env("PWSYNC_TEST_DC_STARTTLS_URI")};
    st.ca_file = "/etc/ssl/certs/ca-certificates.crt";
    auto s = dir::Connection::open(std::move(st));
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().reason, dir::Reason::tls) << s.error().message;
    EXPECT_NE(s.error().message.find("certificate verify failed"), std::string::npos) << s.error().message;
    // A name the certificate does not carry (127.0.0.2 is in it, 127.0.0.5 is not).
    TcpProxy other("127.0.0.5", 636, "127.0.0.2", 636);
    ASSERT_TRUE(other.listening());
    dir::ConnectOptions wrong_name = svc_simple_options();
    wrong_name.uris = {"ldaps://127.0.0.5"};
    auto n = dir::Connection::open(std::move(wrong_name));
    ASSERT_FALSE(n) << "accepted a certificate for another name";
    EXPECT_EQ(n.error().reason, dir::Reason::tls) << n.error().message;
    EXPECT_NE(n.error().message.find("mismatch"), std::string::npos) << n.error().message;
    // By address, the IP SAN matches.
    dir::ConnectOptions by_ip = svc_simple_options();
    by_ip.uris = {"ldaps://127.0.0.2"};
    auto ip = dir::Connection::open(std::move(by_ip));
    EXPECT_TRUE(ip) << ip.error().message;

    // Turning it off works, and says so loudly.
    dir::ConnectOptions off = svc_simple_options();
    off.ca_file = "/etc/ssl/certs/ca-certificates.crt";
    off.insecure_skip_verify = true;
    std::vector<std::string> warnings;
    off.warn = [&](std::string_view w) { warnings.emplace_back(w); };
    auto insecure = dir::Connection::open(std::move(off));
    ASSERT_TRUE(insecure) << insecure.error().message;
    ASSERT_FALSE(warnings.empty());
    EXPECT_NE(warnings[0].find("verification is OFF"), std::string::npos);
    EXPECT_EQ(insecure->warnings(), warnings);
}

TEST_F(Refuse, PasswordWritesOverAnUnprotectedConnection) {
    auto u = make_user("plain");
    dir::ConnectOptions o;
    o.uris = {env("PWSYNC_TEST_DC_STARTTLS_URI")};
    o.protection = dir::Protection::none;
    std::vector<std::string> warnings;
    o.warn = [&](std::string_view w) { warnings.emplace_back(w); };
    auto c = dir::Connection::open(std::move(o));
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_FALSE(c->tls());
    EXPECT_FALSE(c->protected_for_passwords());
    EXPECT_FALSE(warnings.empty());
    const std::string pw = "Never-Sent-Pw.1";
    auto r = dir::reset_password(*c, u.dn, Secret(pw));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().reason, dir::Reason::confidentiality_required);
    EXPECT_EQ(r.error().ldap_code, 0) << "refused here, not by the server";
    expect_no_leak(r.error().message, {pw});
    auto ch = dir::change_password(*c, u.dn, u.password, Secret(pw));
    ASSERT_FALSE(ch);
    EXPECT_EQ(ch.error().reason, dir::Reason::confidentiality_required);
    expect_no_leak(ch.error().message, {pw, u.password.view()});
    EXPECT_TRUE(can_bind(u.upn, u.password.view())) << "the password changed after all";
}

TEST_F(Refuse, SimpleBindOverAnUnprotectedConnection) {
    dir::ConnectOptions o = svc_simple_options();
    o.uris = {env("PWSYNC_TEST_DC_STARTTLS_URI")};
    o.protection = dir::Protection::none;
    auto c = dir::Connection::open(std::move(o));
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().reason, dir::Reason::confidentiality_required);
    EXPECT_EQ(c.error().ldap_code, 0) << "the password must not have been sent";
    expect_no_leak(c.error().message, {env("PWSYNC_TEST_SVC_PASSWORD")});
}

TEST_F(Refuse, SignedButNotSealedGssapi) {
    // GSSAPI with integrity only: the DC accepts the bind, but a password
    // would cross the wire readable, so the client refuses to write one.
    auto u = make_user("sign");
    dir::ConnectOptions o = svc_gssapi_options();
    o.uris = {env("PWSYNC_TEST_DC_STARTTLS_URI")};
    o.protection = dir::Protection::none;
    auto c = dir::Connection::open(std::move(o));
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_FALSE(c->tls());
    EXPECT_GT(c->sasl_ssf(), 0u);
    EXPECT_LT(c->sasl_ssf(), 56u);
    EXPECT_FALSE(c->protected_for_passwords());
    // Reads work (the bind is real) ...
    auto a = dir::resolve_account(*c, domain(), u.sam);
    ASSERT_TRUE(a) << a.error().message;
    // ... password writes do not.
    auto r = dir::reset_password(*c, u.dn, Secret("Signed-Only-Pw.1"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().reason, dir::Reason::confidentiality_required);
    EXPECT_TRUE(can_bind(u.upn, u.password.view()));
    EXPECT_FALSE(can_bind(u.upn, "Signed-Only-Pw.1"));
}

TEST_F(Failover, FirstUriDeadSecondUsed) {
    dir::ConnectOptions o = svc_simple_options();
    o.uris = {"ldaps://127.0.0.3", env("PWSYNC_TEST_DC_URI")};
    const auto t0 = std::chrono::steady_clock::now();
    auto c = dir::Connection::open(std::move(o));
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->uri(), env("PWSYNC_TEST_DC_URI"));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
    EXPECT_TRUE(dir::resolve_account(*c, domain(), env("PWSYNC_TEST_SVC_USER")));
}

TEST_F(Failover, AllDeadIsRetryable) {
    dir::ConnectOptions o = svc_simple_options();
    o.uris = {"ldaps://127.0.0.3", "ldap://127.0.0.3:1389"};
    auto c = dir::Connection::open(std::move(o));
    ASSERT_FALSE(c);
    EXPECT_TRUE(c.error().retryable()) << c.error().message;
    EXPECT_EQ(c.error().reason, dir::Reason::server_down);
    EXPECT_NE(c.error().message.find("127.0.0.3:1389"), std::string::npos) << c.error().message;
}

TEST_F(Failover, BadBindStopsAtTheFirstServer) {
    // A refused bind must not be tried on every DC (lockouts).
    TcpProxy second("127.0.0.2", 10637, "127.0.0.2", 636);
    ASSERT_TRUE(second.listening());
    dir::ConnectOptions o = svc_simple_options();
    o.uris = {env("PWSYNC_TEST_DC_URI"), "ldaps://" + env("PWSYNC_TEST_DC_HOST") + ":10637"};
    o.credentials.password = Secret("Wrong-Pw-0815.x");
    auto c = dir::Connection::open(std::move(o));
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().reason, dir::Reason::invalid_credentials);
    EXPECT_EQ(second.connections_seen(), 0);
}

TEST_F(Reconnect, ReadsSurviveALostConnection) {
    TcpProxy proxy("127.0.0.2", 10636, "127.0.0.2", 636);
    ASSERT_TRUE(proxy.listening());
    dir::ConnectOptions o = svc_simple_options();
    o.uris = {"ldaps://" + env("PWSYNC_TEST_DC_HOST") + ":10636"};
    auto c = dir::Connection::open(std::move(o));
    ASSERT_TRUE(c) << c.error().message;
    ASSERT_TRUE(dir::resolve_account(*c, domain(), env("PWSYNC_TEST_SVC_USER")));
    EXPECT_EQ(proxy.connections_seen(), 1);
    proxy.cut();  // the server went away
    auto again = dir::resolve_account(*c, domain(), env("PWSYNC_TEST_SVC_USER"));
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(proxy.connections_seen(), 2) << "the read should have reconnected once";
}

TEST_F(Reconnect, WritesReportRetryableThenTheNextOneReconnects) {
    auto u = make_user("recon");
    TcpProxy proxy("127.0.0.2", 10638, "127.0.0.2", 636);
    ASSERT_TRUE(proxy.listening());
    dir::ConnectOptions o = svc_simple_options();
    o.uris = {"ldaps://" + env("PWSYNC_TEST_DC_HOST") + ":10638"};
    auto c = dir::Connection::open(std::move(o));
    ASSERT_TRUE(c) << c.error().message;
    proxy.cut();
    auto w = dir::reset_password(*c, u.dn, Secret("After-Cut-Pw.1"));
    ASSERT_FALSE(w) << "a write over a cut connection cannot have succeeded";
    EXPECT_TRUE(w.error().retryable()) << w.error().message;
    EXPECT_EQ(w.error().reason, dir::Reason::server_down);
    EXPECT_TRUE(can_bind(u.upn, u.password.view()));
    // The server is reachable again: the next write reconnects by itself.
    auto w2 = dir::reset_password(*c, u.dn, Secret("After-Cut-Pw.2"));
    ASSERT_TRUE(w2) << w2.error().message;
    EXPECT_TRUE(can_bind(u.upn, "After-Cut-Pw.2"));
    EXPECT_EQ(proxy.connections_seen(), 2);
}

TEST_F(Reconnect, ServerDownIsRetryable) {
    TcpProxy proxy("127.0.0.2", 10639, "127.0.0.2", 636);
    ASSERT_TRUE(proxy.listening());
    dir::ConnectOptions o = svc_simple_options();
    o.uris = {"ldaps://" + env("PWSYNC_TEST_DC_HOST") + ":10639"};
    auto c = dir::Connection::open(std::move(o));
    ASSERT_TRUE(c) << c.error().message;
    proxy.set_accepting(false);
    proxy.cut();
    auto r = dir::resolve_account(*c, domain(), env("PWSYNC_TEST_SVC_USER"));
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().retryable()) << r.error().message;
    proxy.set_accepting(true);
    auto back = dir::resolve_account(*c, domain(), env("PWSYNC_TEST_SVC_USER"));
    EXPECT_TRUE(back) << back.error().message;
}

}  // namespace
}  // namespace pwsync::test
