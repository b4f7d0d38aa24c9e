// The listener against real clients: OpenLDAP's ldapwhoami, ldappasswd,
// ldapsearch and ldapexop, over ldaps:// and over ldap:// with StartTLS.
#include <thread>

#include "listener_fixture.h"

namespace pwsync::test {
namespace {

using namespace std::chrono_literals;

// ldappasswd, ldapsearch and ldapexop exit 1 on a refused operation and
// print the result code; a refused bind exits with its code.
::testing::AssertionResult refused_with(const RunResult& r, int code) {
    const std::string text = r.out + r.err;
    if (r.exit_code != 0 && text.find("(" + std::to_string(code) + ")") != std::string::npos)
        return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "exit " << r.exit_code << ", expected result " << code << ": " << text;
}

class ListenerToolsTest : public ListenerTest {
protected:
    void SetUp() override { start(); }
    std::vector<std::string> bind_args(const std::string& uri, const std::string& dn, const std::string& secret) {
        std::vector<std::string> a{"-x", "-H", uri, "-D", dn, "-y", file("bind.secret", secret)};
        if (uri.starts_with("ldap://")) a.push_back("-ZZ");
        return a;
    }
};

TEST_F(ListenerToolsTest, WhoAmIAfterSimpleBindOverLdaps) {
    const auto r = tool("ldapwhoami", bind_args(ldaps_uri(), kHookDn, kHookSecret));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(trim_newline(r.out), "dn:" + kHookDn);
}

TEST_F(ListenerToolsTest, WhoAmIAfterSimpleBindOverStartTls) {
    const auto r = tool("ldapwhoami", bind_args(ldap_uri(), kHookDn, kHookSecret));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(trim_newline(r.out), "dn:" + kHookDn);
}

TEST_F(ListenerToolsTest, AnonymousWhoAmIIsEmpty) {
    const auto r = tool("ldapwhoami", {"-x", "-H", ldap_uri(), "-ZZ"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(trim_newline(r.out), "anonymous");
}

TEST_F(ListenerToolsTest, PasswordModifyReachesTheHandlerExactly) {
    // Non-ASCII UTF-8, spaces and punctuation; files without a newline.
    const std::string new_pw = "Pässwörd €2026 ñ\"'\\";
    const std::string old_pw = "Ältes-Passwort";
    auto args = bind_args(ldap_uri(), kHookDn, kHookSecret);
    args.insert(args.end(), {"-T", file("new.pw", new_pw), "-t", file("old.pw", old_pw), "EXAMPLE\\alice"});
    const auto r = tool("ldappasswd", args);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    const auto calls = handler_.modify_calls();
    ASSERT_EQ(calls.size(), 1U);
    EXPECT_EQ(calls[0].principal, kHookDn);
    EXPECT_EQ(calls[0].identity, "EXAMPLE\\alice");
    EXPECT_EQ(calls[0].new_password, new_pw);
    EXPECT_EQ(calls[0].old_password, old_pw);
    EXPECT_EQ(calls[0].peer.address, "127.0.0.1");
    EXPECT_TRUE(calls[0].peer.tls);
    EXPECT_TRUE(calls[0].peer.client_cert_subject.empty());
}

TEST_F(ListenerToolsTest, PasswordModifyOverLdapsWithoutOldPassword) {
    auto args = bind_args(ldaps_uri(), kHookDn, kHookSecret);
    args.insert(args.end(), {"-T", file("new.pw", "n3w-Secret!"), "alice@example.com"});
    const auto r = tool("ldappasswd", args);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    const auto calls = handler_.modify_calls();
    ASSERT_EQ(calls.size(), 1U);
    EXPECT_EQ(calls[0].identity, "alice@example.com");
    EXPECT_EQ(calls[0].new_password, "n3w-Secret!");
    EXPECT_FALSE(calls[0].old_password.has_value());
}

TEST_F(ListenerToolsTest, WrongBindSecretGives49AndNoChange) {
    auto args = bind_args(ldap_uri(), kHookDn, "not-the-secret");
    args.insert(args.end(), {"-T", file("new.pw", "whatever-1"), "alice"});
    const auto r = tool("ldappasswd", args);
    EXPECT_EQ(r.exit_code, 49) << r.out << r.err;
    EXPECT_TRUE(handler_.modify_calls().empty());
}

TEST_F(ListenerToolsTest, BindBeforeStartTlsGives13) {
    const auto r = tool("ldapwhoami", {"-x", "-H", ldap_uri(), "-D", kHookDn, "-y", file("s", kHookSecret)});
    EXPECT_EQ(r.exit_code, 13) << r.out << r.err;
    EXPECT_NE(r.err.find("Confidentiality required"), std::string::npos) << r.err;
    std::lock_guard lock(handler_.mutex);
    EXPECT_EQ(handler_.simple_binds, 0);
}

TEST_F(ListenerToolsTest, SaslExternalWithClientCertificate) {
    const auto r = tool("ldapwhoami", {"-Q", "-Y", "EXTERNAL", "-H", ldaps_uri()},
                        {"LDAPTLS_CERT=" + pki().client_cert, "LDAPTLS_KEY=" + pki().client_key});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(trim_newline(r.out), "u:dc1-hook");
    std::lock_guard lock(handler_.mutex);
    ASSERT_EQ(handler_.external_peers.size(), 1U);
    EXPECT_EQ(handler_.external_peers[0].client_cert_subject, pki().client_subject);
    EXPECT_TRUE(handler_.external_peers[0].tls);
}

TEST_F(ListenerToolsTest, SaslExternalOverStartTlsWithClientCertificate) {
    const auto r = tool("ldapwhoami", {"-Q", "-Y", "EXTERNAL", "-H", ldap_uri(), "-ZZ"},
                        {"LDAPTLS_CERT=" + pki().client_cert, "LDAPTLS_KEY=" + pki().client_key});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    std::lock_guard lock(handler_.mutex);
    ASSERT_EQ(handler_.external_peers.size(), 1U);
    EXPECT_EQ(handler_.external_peers[0].client_cert_subject, pki().client_subject);
}

TEST_F(ListenerToolsTest, CertificateFromAnotherCaIsRefused) {
    const auto r = tool("ldapwhoami", {"-Q", "-Y", "EXTERNAL", "-H", ldaps_uri()},
                        {"LDAPTLS_CERT=" + pki().rogue_cert, "LDAPTLS_KEY=" + pki().rogue_key});
    EXPECT_NE(r.exit_code, 0) << r.out;
    std::lock_guard lock(handler_.mutex);
    EXPECT_TRUE(handler_.external_peers.empty());
}

TEST_F(ListenerToolsTest, HandlerResultReachesTheClient) {
    {
        std::lock_guard lock(handler_.mutex);
        handler_.result = {19, "AD refused the password: 0000052D password history"};
    }
    auto args = bind_args(ldap_uri(), kHookDn, kHookSecret);
    args.insert(args.end(), {"-T", file("new.pw", "Password1"), "alice"});
    const auto r = tool("ldappasswd", args);
    EXPECT_TRUE(refused_with(r, 19));
    EXPECT_NE((r.out + r.err).find("AD refused the password: 0000052D password history"), std::string::npos)
        << r.out << r.err;
}

TEST_F(ListenerToolsTest, PasswordModifyWithoutBindGives50) {
    const auto r = tool("ldappasswd", {"-x", "-H", ldap_uri(), "-ZZ", "-T", file("new.pw", "Password1"), "alice"});
    EXPECT_TRUE(refused_with(r, 50));
    EXPECT_TRUE(handler_.modify_calls().empty());
}

TEST_F(ListenerToolsTest, PasswordModifyWithoutNewPasswordGives53) {
    auto args = bind_args(ldaps_uri(), kHookDn, kHookSecret);
    args.push_back("alice");
    const auto r = tool("ldappasswd", args);
    EXPECT_TRUE(refused_with(r, 53));
    EXPECT_NE((r.out + r.err).find("newPasswd is required"), std::string::npos) << r.out << r.err;
    EXPECT_TRUE(handler_.modify_calls().empty());
}

TEST_F(ListenerToolsTest, SearchGives53) {
    auto args = bind_args(ldap_uri(), kHookDn, kHookSecret);
    args.insert(args.end(), {"-b", "", "-s", "base", "(objectClass=*)"});
    const auto r = tool("ldapsearch", args);
    EXPECT_EQ(r.exit_code, 53) << r.err;
    EXPECT_NE(r.out.find("result: 53 Server is unwilling to perform"), std::string::npos) << r.out;
}

class MonitorSearchTest : public ListenerToolsTest {
protected:
    void SetUp() override {
        {
            std::lock_guard lock(handler_.mutex);
            handler_.tree = {
                {"cn=monitor", {{"objectClass", {"top", "extensibleObject"}}, {"cn", {"monitor"}}, {"pwsyncQueued", {"3"}}}},
                {"cn=adapters,cn=monitor", {{"objectClass", {"top"}}, {"cn", {"adapters"}}}},
                {"cn=racf,cn=adapters,cn=monitor", {{"objectClass", {"top"}}, {"cn", {"racf"}}, {"pwsyncQueued", {"2"}}, {"pwsyncDeadLetters", {"0"}}}},
                {"cn=ldap,cn=adapters,cn=monitor", {{"objectClass", {"top"}}, {"cn", {"ldap"}}, {"pwsyncQueued", {"1"}}, {"pwsyncDeadLetters", {"4"}}}},
            };
        }
        ListenerToolsTest::SetUp();
    }
    RunResult search(const std::string& dn, const std::string& secret, std::vector<std::string> rest) {
        auto args = bind_args(ldaps_uri(), dn, secret);
        args.insert(args.begin(), "-LLL");
        args.insert(args.end(), rest.begin(), rest.end());
        return tool("ldapsearch", args);
    }
    static std::size_t count(const std::string& text, std::string_view what) {
        std::size_t n = 0;
        for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
        return n;
    }
};

TEST_F(MonitorSearchTest, SubtreeOneLevelBaseFilterAndAttributes) {
    auto r = search(kHookDn, kHookSecret, {"-b", "cn=monitor", "(objectClass=*)"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(count(r.out, "dn: "), 4u) << r.out;
    EXPECT_NE(r.out.find("pwsyncQueued: 3"), std::string::npos) << r.out;

    r = search(kHookDn, kHookSecret, {"-b", "cn=adapters, CN=Monitor", "-s", "one", "(pwsyncDeadLetters=4)", "cn"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "dn: cn=ldap,cn=adapters,cn=monitor\ncn: ldap\n\n");

    r = search(kHookDn, kHookSecret, {"-b", "cn=monitor", "-s", "base", "(!(cn=nothing))", "1.1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "dn: cn=monitor\n\n");

    r = search(kHookDn, kHookSecret, {"-b", "cn=monitor", "(|(cn=racf)(&(cn=ldap)(pwsyncQueued=1)))", "pwsyncQueued"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(count(r.out, "dn: "), 2u) << r.out;
    EXPECT_EQ(r.out.find("cn: "), std::string::npos) << r.out;

    r = search(kHookDn, kHookSecret, {"-z", "1", "-b", "cn=monitor", "(cn=*)"});
    EXPECT_EQ(r.exit_code, 4) << r.out << r.err;  // sizeLimitExceeded
    EXPECT_EQ(count(r.out, "dn: "), 1u) << r.out;
}

TEST_F(MonitorSearchTest, RefusalsKeepTheConnectionUsable) {
    // Substring filters are not evaluated: 53, not a wrong answer.
    auto r = search(kHookDn, kHookSecret, {"-b", "cn=monitor", "(cn=ra*)"});
    EXPECT_EQ(r.exit_code, 53) << r.out << r.err;
    // The handler decides who may search.
    r = search(kOtherDn, kOtherSecret, {"-b", "cn=monitor", "(objectClass=*)"});
    EXPECT_EQ(r.exit_code, 50) << r.out << r.err;
    // Anonymous: bind first.
    r = tool("ldapsearch", {"-x", "-H", ldaps_uri(), "-b", "cn=monitor", "(objectClass=*)"});
    EXPECT_EQ(r.exit_code, 50) << r.out << r.err;
    // Still serving.
    r = search(kHookDn, kHookSecret, {"-b", "cn=monitor", "-s", "base"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(ListenerToolsTest, UnknownExtendedOperationGives2) {
    auto args = bind_args(ldaps_uri(), kHookDn, kHookSecret);
    args.push_back("1.2.3.4.5");
    const auto r = tool("ldapexop", args);
    EXPECT_TRUE(refused_with(r, 2));
}

TEST_F(ListenerToolsTest, CriticalControlGives12) {
    auto args = bind_args(ldaps_uri(), kHookDn, kHookSecret);
    args.insert(args.end(), {"-e", "!noop", "-T", file("new.pw", "Password1"), "alice"});
    const auto r = tool("ldappasswd", args);
    EXPECT_TRUE(refused_with(r, 12));
    EXPECT_TRUE(handler_.modify_calls().empty());
}

// The gateway's own AD write makes the DC's capture hook call back in while
// the first request still waits: that call must be served.
TEST_F(ListenerToolsTest, ABlockedHandlerCallDoesNotBlockOtherConnections) {
    std::atomic<bool> second_seen{false};
    {
        std::lock_guard lock(handler_.mutex);
        handler_.on_modify = [&](const ModifyCall& call) {
            if (call.identity != "first") return;
            std::unique_lock lock2(handler_.mutex);
            handler_.cv.wait_for(lock2, 10s, [&] {
                for (const auto& c : handler_.calls)
                    if (c.identity == "second") return true;
                return false;
            });
            for (const auto& c : handler_.calls) second_seen = second_seen || c.identity == "second";
        };
    }
    auto first_args = bind_args(ldap_uri(), kHookDn, kHookSecret);
    first_args.insert(first_args.end(), {"-T", file("first.pw", "First-pw1"), "first"});
    RunResult first;
    std::thread t([&] { first = tool("ldappasswd", first_args); });
    ASSERT_TRUE(eventually([&] { return handler_.modify_calls().size() == 1; }));
    auto second_args = bind_args(ldaps_uri(), kOtherDn, kOtherSecret);
    second_args.insert(second_args.end(), {"-T", file("second.pw", "Second-pw1"), "second"});
    const auto second = tool("ldappasswd", second_args);
    t.join();
    EXPECT_EQ(second.exit_code, 0) << second.err;
    EXPECT_EQ(first.exit_code, 0) << first.err;
    EXPECT_TRUE(second_seen.load());
}

TEST_F(ListenerTest, ServesIpv6Loopback) {
    auto o = options();
    o.uris = {"ldaps://[::1]:0"};
    start(o);
    ASSERT_EQ(listener_->endpoints().at(0).address, "::1");
    const auto r = tool("ldapwhoami", {"-x", "-H", "ldaps://[::1]:" + std::to_string(ldaps_port()), "-D", kHookDn, "-y",
                                       file("s", kHookSecret)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(trim_newline(r.out), "dn:" + kHookDn);
}

TEST_F(ListenerTest, StartFailsCleanlyOnBadInput) {
    auto o = options();
    o.uris = {"http://127.0.0.1:0"};
    EXPECT_FALSE(gateway::Listener::start(o, handler_));
    o = options();
    o.key_file = pki().client_key;  // does not match the certificate
    EXPECT_FALSE(gateway::Listener::start(o, handler_));
    o = options();
    o.cert_file = dir_ / "missing.pem";
    const auto r = gateway::Listener::start(o, handler_);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("missing.pem"), std::string::npos);
}

TEST_F(ListenerTest, StopClosesOpenConnectionsPromptly) {
    start();
    auto idle = plain_client();
    ASSERT_TRUE(idle);
    ASSERT_TRUE(eventually([&] { return listener_->connection_count() == 1; }));
    const auto t0 = std::chrono::steady_clock::now();
    listener_->stop();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
    const auto notice = idle->receive();
    ASSERT_TRUE(notice);
    EXPECT_EQ(notice->code, 52);
    EXPECT_EQ(notice->name, "1.3.6.1.4.1.1466.20036");
    EXPECT_TRUE(idle->closed_within(2));
    EXPECT_EQ(listener_->connection_count(), 0U);
}

}  // namespace
}  // namespace pwsync::test
