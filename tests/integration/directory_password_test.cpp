// AD password writes against the real Samba DC, and every error row of
// TESTENV.md provoked for real and decoded with the right verdict.
#include <arpa/inet.h>
#include <ldap.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dc_fixture.h"

namespace pwsync::test {
namespace {

using namespace std::chrono_literals;

class Password : public DirectoryTest {};
class Errors : public DirectoryTest {
protected:
    // Checks a refused write: reason, verdict, AD code, nothing leaked.
    void expect_row(const dir::LdapStatus& r, int rc, std::uint32_t ad, std::string_view text, dir::Reason reason,
                    std::initializer_list<std::string_view> passwords) {
        ASSERT_FALSE(r) << "the DC accepted it";
        const auto& e = r.error();
        EXPECT_EQ(e.ldap_code, rc) << e.message;
        EXPECT_EQ(e.ad_code, ad) << e.message;
        EXPECT_NE(e.server_text.find(text), std::string::npos) << e.server_text;
        EXPECT_EQ(e.reason, reason) << e.message;
        EXPECT_EQ(e.verdict, dir::Verdict::permanent) << e.message;
        EXPECT_NE(e.message.find("permanent"), std::string::npos);
        expect_no_leak(e.message, passwords);
        expect_no_leak(e.server_text, passwords);
    }
};

// Non-ASCII passwords: Latin-1 range, BMP beyond it, and astral planes
// (surrogate pairs in UTF-16).
const char* const kUnicodePasswords[] = {
    "P\xC3\xA4ssw\xC3\xB6rd-\xE2\x82\xAC-1",                  // Pässwörd-€-1
    "\xD0\x9F\xD0\xB0\xD1\x80\xD0\xBE\xD0\xBB\xD1\x8C-7x",    // Пароль-7x
    "Key\xF0\x9F\x94\x91-\xF0\x9D\x84\x9E-z9",                // Key🔑-𝄞-z9
    "\xE5\xAF\x86\xE7\xA0\x81" "Ab-3\xE2\x80\x94\"q",            // 密码Ab-3—"q
};

TEST_F(Password, AdminResetAscii) {
    auto u = make_user("rsta");
    auto c = open(svc_simple_options());
    ASSERT_TRUE(dir::reset_password(c, u.dn, Secret("Reset-Ascii-Pw.5")));
    EXPECT_TRUE(can_bind(u.upn, "Reset-Ascii-Pw.5"));
    EXPECT_FALSE(can_bind(u.upn, u.password.view())) << "the old password still works";
}

TEST_F(Password, AdminResetNonAscii) {
    auto c = open(svc_simple_options());
    for (const char* pw : kUnicodePasswords) {
        auto u = make_user("rstu");
        auto r = dir::reset_password(c, u.dn, Secret(pw));
        ASSERT_TRUE(r) << r.error().message;
        EXPECT_TRUE(can_bind(u.upn, pw)) << "cannot bind with the new password " << pw;
        EXPECT_TRUE(can_bind(u.dn, pw));
        EXPECT_FALSE(can_bind(u.upn, u.password.view()));
    }
}

TEST_F(Password, UserChangeAscii) {
    auto u = make_user("chga");
    auto c = open(user_options(u));  // bound as the user
    auto r = dir::change_password(c, u.dn, u.password, Secret("Changed-Ascii-Pw.5"));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(can_bind(u.upn, "Changed-Ascii-Pw.5"));
    EXPECT_FALSE(can_bind(u.upn, u.password.view()));
}

TEST_F(Password, UserChangeNonAscii) {
    auto u = make_user("chgu");
    Secret current = u.password.clone();
    for (const char* pw : kUnicodePasswords) {
        dir::ConnectOptions o = admin_options();
        o.credentials.name = u.upn;
        o.credentials.password = current.clone();
        auto c = open(std::move(o));
        auto r = dir::change_password(c, u.dn, current, Secret(pw));
        ASSERT_TRUE(r) << r.error().message;
        EXPECT_TRUE(can_bind(u.upn, pw)) << pw;
        EXPECT_FALSE(can_bind(u.upn, current.view()));
        current = Secret(pw);
    }
}

TEST_F(Password, InvalidUtf8IsRefusedBeforeSending) {
    auto u = make_user("utf");
    auto c = open(svc_simple_options());
    const std::string bad = "Bad-\xC3\x28-Pw.1";
    auto r = dir::reset_password(c, u.dn, Secret(bad));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().reason, dir::Reason::invalid_request);
    EXPECT_EQ(r.error().ldap_code, 0);
    expect_no_leak(r.error().message, {bad, "Bad-"});
    EXPECT_TRUE(can_bind(u.upn, u.password.view()));
}

// What Samba 4.17 does with LDAP_SERVER_POLICY_HINTS (1.2.840.113556.1.4.2239)
// on an admin reset, recorded so that a change of behaviour shows up: it
// does not advertise the control and ignores it (sent non-critical), so a
// reset to a password in the history still succeeds. Windows DCs (2012 and
// later) apply history with it; that is why pwsync sends it by default.
TEST_F(Password, PolicyHintsOnAdminReset) {
    auto u = make_user("hint");
    auto c = open(svc_simple_options());
    auto root = c.root_dse();
    ASSERT_TRUE(root) << root.error().message;
    EXPECT_FALSE(root->supports_control("1.2.840.113556.1.4.2239")) << "Samba now advertises policy hints: revisit";
    const dir::ResetOptions plain{.policy_hints = false}, hints{.policy_hints = true};
    ASSERT_TRUE(dir::reset_password(c, u.dn, Secret("Hint-One-Pw.1"), plain));
    ASSERT_TRUE(dir::reset_password(c, u.dn, Secret("Hint-Two-Pw.1"), plain));
    // Without hints an admin reset ignores history, as on AD.
    auto again = dir::reset_password(c, u.dn, Secret("Hint-One-Pw.1"), plain);
    ASSERT_TRUE(again) << again.error().message;
    // With hints: accepted (not refused as an unknown critical control) and,
    // on Samba 4.17, history is still not applied.
    auto hinted = dir::reset_password(c, u.dn, Secret("Hint-Two-Pw.1"), hints);
    ASSERT_TRUE(hinted) << hinted.error().message;
    EXPECT_TRUE(can_bind(u.upn, "Hint-Two-Pw.1"));
    // Policy other than history still applies to a reset, hints or not.
    auto short_pw = dir::reset_password(c, u.dn, Secret("Sh0rt!"), hints);
    ASSERT_FALSE(short_pw);
    EXPECT_EQ(short_pw.error().reason, dir::Reason::policy);
}

// --------------------------------------------------------------- errors

TEST_F(Errors, TooYoung) {
    // A fine-grained policy with a minimum age of one day for this user only.
    auto u = make_user("young");
    const std::string pso = "CN=" + u.sam + "-pso,CN=Password Settings Container,CN=System," + env("PWSYNC_TEST_DC_BASE");
    auto add = admin().add(pso, {{dir::Mod::add, "objectClass", {"msDS-PasswordSettings"}},
                                 {dir::Mod::add, "msDS-PasswordSettingsPrecedence", {"1"}},
                                 {dir::Mod::add, "msDS-PasswordReversibleEncryptionEnabled", {"FALSE"}},
                                 {dir::Mod::add, "msDS-PasswordHistoryLength", {"24"}},
                                 {dir::Mod::add, "msDS-PasswordComplexityEnabled", {"TRUE"}},
                                 {dir::Mod::add, "msDS-MinimumPasswordLength", {"7"}},
                                 {dir::Mod::add, "msDS-MinimumPasswordAge", {"-864000000000"}},
                                 {dir::Mod::add, "msDS-MaximumPasswordAge", {"-36288000000000"}},
                                 {dir::Mod::add, "msDS-LockoutThreshold", {"0"}},
                                 {dir::Mod::add, "msDS-LockoutObservationWindow", {"-18000000000"}},
                                 {dir::Mod::add, "msDS-LockoutDuration", {"-18000000000"}},
                                 {dir::Mod::add, "msDS-PSOAppliesTo", {u.dn}}});
    ASSERT_TRUE(add) << add.error().message;
    cleanup_dc_.insert(cleanup_dc_.begin(), pso);
    auto c = open(user_options(u));
    const std::string pw = "Too-Young-Pw.1";
    expect_row(dir::change_password(c, u.dn, u.password, Secret(pw)), LDAP_CONSTRAINT_VIOLATION, 0x52D,
               "password is too young to change", dir::Reason::policy, {pw, u.password.view()});
}

TEST_F(Errors, WrongOldPassword) {
    auto u = make_user("wold");
    auto c = open(user_options(u));
    const std::string wrong = "Not-The-Old-Pw.1", pw = "Wanted-New-Pw.1";
    expect_row(dir::change_password(c, u.dn, Secret(wrong), Secret(pw)), LDAP_CONSTRAINT_VIOLATION, 0x56,
               "The old password specified doesn't match", dir::Reason::wrong_old_password, {wrong, pw});
    EXPECT_TRUE(can_bind(u.upn, u.password.view()));
}

TEST_F(Errors, TooShort) {
    auto u = make_user("short");
    auto c = open(svc_simple_options());
    const std::string pw = "Sh0rt!";
    expect_row(dir::reset_password(c, u.dn, Secret(pw)), LDAP_CONSTRAINT_VIOLATION, 0x52D, "too short",
               dir::Reason::policy, {pw});
}

TEST_F(Errors, NotComplex) {
    auto u = make_user("cplx");
    auto c = open(user_options(u));
    const std::string pw = "alllowercaseletters";
    expect_row(dir::change_password(c, u.dn, u.password, Secret(pw)), LDAP_CONSTRAINT_VIOLATION, 0x52D,
               "complexity", dir::Reason::policy, {pw, u.password.view()});
}

TEST_F(Errors, InHistory) {
    auto u = make_user("hist");
    const std::string next = "History-Next-Pw.1";
    {
        auto c = open(user_options(u));
        ASSERT_TRUE(dir::change_password(c, u.dn, u.password, Secret(next)));
    }
    dir::ConnectOptions o = admin_options();
    o.credentials.name = u.upn;
    o.credentials.password = Secret(next);
    auto c = open(std::move(o));
    expect_row(dir::change_password(c, u.dn, Secret(next), u.password), LDAP_CONSTRAINT_VIOLATION, 0x52D,
               "already used", dir::Reason::policy, {next, u.password.view()});
}

TEST_F(Errors, BadBind) {
    auto u = make_user("bbind");
    dir::ConnectOptions o = user_options(u);
    const std::string wrong = "Bad-Bind-Pw.1";
    o.credentials.password = Secret(wrong);
    auto c = dir::Connection::open(std::move(o));
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().ldap_code, LDAP_INVALID_CREDENTIALS);
    EXPECT_EQ(c.error().ad_code, 0x80090308u);
    ASSERT_TRUE(c.error().ad_data);
    EXPECT_EQ(*c.error().ad_data, 0x52eu);
    EXPECT_NE(c.error().server_text.find("AcceptSecurityContext error, data 52e"), std::string::npos);
    EXPECT_EQ(c.error().reason, dir::Reason::invalid_credentials);
    EXPECT_EQ(c.error().verdict, dir::Verdict::permanent);
    expect_no_leak(c.error().message, {wrong, u.password.view()});
}

TEST_F(Errors, SimpleBindWithoutTls) {
    // pwsync itself never sends a simple bind without TLS (Refuse.*), so the
    // DC's answer is provoked with libldap directly, with a dummy password,
    // and fed to the decoder.
    LDAP* raw = nullptr;
    ASSERT_EQ(ldap_initialize(&raw, env("PWSYNC_TEST_DC_STARTTLS_URI").c_str()), LDAP_SUCCESS);
    std::unique_ptr<LDAP, decltype([](LDAP* l) { ldap_unbind_ext(l, nullptr, nullptr); })> ld(raw);
    const int v3 = LDAP_VERSION3;
    ldap_set_option(raw, LDAP_OPT_PROTOCOL_VERSION, &v3);
    char dummy[] = "dummy-not-a-password";
    berval cred{sizeof dummy - 1, dummy};
    const int rc = ldap_sasl_bind_s(raw, env("PWSYNC_TEST_SVC_DN").c_str(), LDAP_SASL_SIMPLE, &cred, nullptr, nullptr, nullptr);
    char* diag = nullptr;
    ldap_get_option(raw, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
    const std::string text = diag != nullptr ? diag : "";
    ldap_memfree(diag);
    ASSERT_EQ(rc, LDAP_STRONG_AUTH_REQUIRED) << text;
    const auto e = dir::decode_error(rc, text, "simple bind");
    EXPECT_NE(e.server_text.find("Transport encryption required"), std::string::npos) << e.server_text;
    EXPECT_EQ(e.reason, dir::Reason::confidentiality_required);
    EXPECT_EQ(e.verdict, dir::Verdict::permanent);
}

TEST_F(Errors, InsufficientRights) {
    auto actor = make_user("actor");
    auto victim = make_user("victim");
    auto c = open(user_options(actor));
    const std::string pw = "Not-Allowed-Pw.1";
    auto r = dir::reset_password(c, victim.dn, Secret(pw));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().ldap_code, LDAP_INSUFFICIENT_ACCESS) << r.error().message;
    EXPECT_EQ(r.error().reason, dir::Reason::insufficient_rights);
    EXPECT_EQ(r.error().verdict, dir::Verdict::permanent);
    expect_no_leak(r.error().message, {pw});
    EXPECT_TRUE(can_bind(victim.upn, victim.password.view()));
}

TEST_F(Errors, NoSuchUser) {
    auto c = open(svc_simple_options());
    const std::string pw = "Nobody-Pw.1";
    auto r = dir::reset_password(c, "CN=nobody-" + unique_name("x") + ",CN=Users," + env("PWSYNC_TEST_DC_BASE"), Secret(pw));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().ldap_code, LDAP_NO_SUCH_OBJECT) << r.error().message;
    EXPECT_EQ(r.error().reason, dir::Reason::no_such_object);
    EXPECT_EQ(r.error().verdict, dir::Verdict::permanent);
    expect_no_leak(r.error().message, {pw});
}

TEST_F(Errors, ServerDown) {
    dir::ConnectOptions o = svc_simple_options();
    o.uris = {"ldaps://127.0.0.3"};
    auto c = dir::Connection::open(std::move(o));
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().ldap_code, LDAP_SERVER_DOWN) << c.error().message;
    EXPECT_EQ(c.error().verdict, dir::Verdict::retryable);
    EXPECT_EQ(c.error().code, Errc::unavailable);
}

TEST_F(Errors, Timeout) {
    // A server that accepts connections and never answers.
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(10389);
    ::inet_pton(AF_INET, "127.0.0.4", &a.sin_addr);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(fd, 4), 0);
    dir::ConnectOptions o;
    o.uris = {"ldap://127.0.0.4:10389"};
    o.protection = dir::Protection::none;
    o.op_timeout = 500ms;
    auto c = dir::Connection::open(std::move(o));
    ASSERT_TRUE(c) << c.error().message;  // TCP connects (the kernel's backlog)
    const auto t0 = std::chrono::steady_clock::now();
    auto r = c->root_dse();
    const auto took = std::chrono::steady_clock::now() - t0;
    ::close(fd);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().reason, dir::Reason::timeout) << r.error().message;
    EXPECT_TRUE(r.error().retryable());
    EXPECT_EQ(r.error().code, Errc::timeout);
    EXPECT_GE(took, 400ms);
    EXPECT_LT(took, 5s);

    // StartTLS against it: the connect timeout bounds the handshake too.
    const int fd2 = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_EQ(::bind(fd2, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(fd2, 4), 0);
    dir::ConnectOptions t;
    t.uris = {"ldap://127.0.0.4:10389"};
    t.op_timeout = 500ms;
    t.connect_timeout = 500ms;
    const auto t1 = std::chrono::steady_clock::now();
    auto s = dir::Connection::open(std::move(t));
    const auto took2 = std::chrono::steady_clock::now() - t1;
    ::close(fd2);
    ASSERT_FALSE(s);
    EXPECT_TRUE(s.error().retryable()) << s.error().message;
    EXPECT_LT(took2, 5s);
}

}  // namespace
}  // namespace pwsync::test
