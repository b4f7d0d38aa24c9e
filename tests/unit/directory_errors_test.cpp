// The decoder of LDAP / AD failures: every row of TESTENV.md and the
// transport failures get the right reason and verdict. No servers (except a
// refused TCP connection on loopback).
#include <gtest/gtest.h>
#include <ldap.h>

#include "pwsync/directory.h"

namespace pwsync::directory {
namespace {

struct Row {
    int rc;
    const char* text;
    Reason reason;
    Verdict verdict;
    std::uint32_t ad_code;
};

// The texts Samba 4.17 sends (TESTENV.md), in full.
const Row kSambaRows[] = {
    {19, "0000052D: Constraint violation - check_password_restrictions: password is too young to change!",
     Reason::policy, Verdict::permanent, 0x52D},
    {19, "00000056: Constraint violation - check_password_restrictions: The old password specified doesn't match!",
     Reason::wrong_old_password, Verdict::permanent, 0x56},
    {19, "0000052D: Constraint violation - check_password_restrictions: the password is too short. It should be equal "
         "or longer than 7 characters!",
     Reason::policy, Verdict::permanent, 0x52D},
    {19, "0000052D: Constraint violation - check_password_restrictions: the password does not meet the complexity "
         "criteria!",
     Reason::policy, Verdict::permanent, 0x52D},
    {19, "0000052D: Constraint violation - check_password_restrictions: the password was already used (in history)!",
     Reason::policy, Verdict::permanent, 0x52D},
    {49, "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 52e, v1db1",
     Reason::invalid_credentials, Verdict::permanent, 0x80090308},
    {8, "BindSimple: Transport encryption required.", Reason::confidentiality_required, Verdict::permanent, 0},
};

TEST(DecodeError, EverySambaRow) {
    for (const auto& row : kSambaRows) {
        const auto e = decode_error(row.rc, row.text, "modify CN=alice");
        SCOPED_TRACE(row.text);
        EXPECT_EQ(e.ldap_code, row.rc);
        EXPECT_EQ(e.reason, row.reason);
        EXPECT_EQ(e.verdict, row.verdict);
        EXPECT_EQ(e.ad_code, row.ad_code);
        EXPECT_EQ(e.server_text, row.text);
        EXPECT_NE(e.message.find("modify CN=alice"), std::string::npos);
        EXPECT_NE(e.message.find(row.text), std::string::npos);
        EXPECT_NE(e.message.find(verdict_name(row.verdict)), std::string::npos);
        EXPECT_FALSE(e.retryable());
    }
}

TEST(DecodeError, BindDataCodes) {
    auto e = decode_error(49, "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 52e, v1db1", "bind");
    ASSERT_TRUE(e.ad_data);
    EXPECT_EQ(*e.ad_data, 0x52eu);
    EXPECT_NE(e.message.find("invalid credentials"), std::string::npos);
    EXPECT_NE(e.message.find("SEC_E_INVALID_TOKEN"), std::string::npos);
    e = decode_error(49, "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 533, v4563", "bind");
    ASSERT_TRUE(e.ad_data);
    EXPECT_EQ(*e.ad_data, 0x533u);
    EXPECT_NE(e.message.find("account disabled"), std::string::npos);
    EXPECT_EQ(e.code, Errc::permission);
    e = decode_error(49, "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 775, v4563", "bind");
    EXPECT_NE(e.message.find("locked out"), std::string::npos);
}

TEST(DecodeError, WindowsForms) {
    // Windows answers a wrong old password with 16 or 19 and 00000056.
    auto e = decode_error(16, "00000056: AtrErr: DSID-03190F80, #1:\n\t0: 00000056: DSID-03190F80, problem 1001 "
                              "(NO_ATTRIBUTE_OR_VAL), data 0, Att 9005a (unicodePwd)\n", "change");
    EXPECT_EQ(e.reason, Reason::wrong_old_password);
    EXPECT_EQ(e.server_text.back(), ')');  // trailing newline trimmed
    e = decode_error(53, "0000052D: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM), data 0", "reset");
    EXPECT_EQ(e.reason, Reason::policy);
    EXPECT_EQ(e.verdict, Verdict::permanent);
    e = decode_error(53, "00002077: SvcErr: DSID-03190F4C, problem 5003 (WILL_NOT_PERFORM), data 0", "reset");
    EXPECT_EQ(e.reason, Reason::unwilling);
}

TEST(DecodeError, PermanentOutcomes) {
    EXPECT_EQ(decode_error(LDAP_INSUFFICIENT_ACCESS, "00002098: SecErr", "x").reason, Reason::insufficient_rights);
    EXPECT_EQ(decode_error(LDAP_NO_SUCH_OBJECT, "0000208D: NameErr", "x").reason, Reason::no_such_object);
    EXPECT_EQ(decode_error(LDAP_NO_SUCH_OBJECT, "", "x").code, Errc::not_found);
    EXPECT_EQ(decode_error(LDAP_CONFIDENTIALITY_REQUIRED, "", "x").reason, Reason::confidentiality_required);
    EXPECT_EQ(decode_error(LDAP_INVALID_DN_SYNTAX, "", "x").verdict, Verdict::permanent);
    EXPECT_EQ(decode_error(LDAP_FILTER_ERROR, "", "x").verdict, Verdict::permanent);
    EXPECT_EQ(decode_error(LDAP_SERVER_DOWN, "error:0A000086:SSL routines::certificate verify failed", "x").reason, Reason::tls);
    EXPECT_EQ(decode_error(LDAP_LOCAL_ERROR, "SASL(-1): generic failure: GSSAPI Error: Unspecified GSS failure", "x").verdict,
              Verdict::permanent);
}

TEST(DecodeError, RetryableOutcomes) {
    struct R {
        int rc;
        const char* text;
        Reason reason;
        Errc code;
    } rows[] = {
        {LDAP_SERVER_DOWN, "", Reason::server_down, Errc::unavailable},
        {LDAP_CONNECT_ERROR, "", Reason::server_down, Errc::unavailable},
        {LDAP_TIMEOUT, "", Reason::timeout, Errc::timeout},
        {LDAP_TIMELIMIT_EXCEEDED, "", Reason::timeout, Errc::timeout},
        {LDAP_BUSY, "", Reason::busy, Errc::unavailable},
        {LDAP_UNAVAILABLE, "", Reason::busy, Errc::unavailable},
        {LDAP_OTHER, "", Reason::other, Errc::unavailable},
        {LDAP_LOCAL_ERROR, "GSSAPI Error: Miscellaneous failure (Cannot contact any KDC for realm 'TEST.EXAMPLE')",
         Reason::server_down, Errc::unavailable},
    };
    for (const auto& r : rows) {
        const auto e = decode_error(r.rc, r.text, "op");
        SCOPED_TRACE(r.rc);
        EXPECT_TRUE(e.retryable());
        EXPECT_EQ(e.reason, r.reason);
        EXPECT_EQ(e.code, r.code);
        EXPECT_NE(e.message.find("retryable"), std::string::npos);
    }
}

TEST(DecodeError, ConvertsToPwsyncError) {
    const auto e = decode_error(19, "0000052D: Constraint violation - check_password_restrictions: password is too young to change!", "reset");
    const Error plain = e;
    EXPECT_EQ(plain.code, Errc::refused);
    EXPECT_EQ(plain.message, e.message);
    // PWSYNC_TRY carries it into an ordinary Result.
    const auto through = [&]() -> Status {
        PWSYNC_TRY(LdapStatus(std::unexpected(e)));
        return {};
    }();
    ASSERT_FALSE(through);
    EXPECT_EQ(through.error().code, Errc::refused);
}

TEST(Connection, RefusedOnEveryUriIsRetryableAndNamesThemAll) {
    ConnectOptions o;
    // Loopback ports nothing listens on: refused at once, nothing leaves.
    o.uris = {"ldaps://127.0.0.1:1", "ldap://127.0.0.1:2"};
    o.connect_timeout = std::chrono::milliseconds(2000);
    auto c = Connection::open(std::move(o));
    ASSERT_FALSE(c);
    EXPECT_TRUE(c.error().retryable()) << c.error().message;
    EXPECT_EQ(c.error().reason, Reason::server_down);
    EXPECT_NE(c.error().message.find("127.0.0.1:1"), std::string::npos) << c.error().message;
    EXPECT_NE(c.error().message.find("127.0.0.1:2"), std::string::npos) << c.error().message;
}

TEST(Connection, BadConfigurationIsPermanent) {
    ConnectOptions none;
    auto c = Connection::open(std::move(none));
    ASSERT_FALSE(c);
    EXPECT_FALSE(c.error().retryable());

    ConnectOptions scheme;
    scheme.uris = {"http://dc1.example"};
    c = Connection::open(std::move(scheme));
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().reason, Reason::invalid_request);

    ConnectOptions sealed;
    sealed.uris = {"ldap://127.0.0.1:2"};
    sealed.protection = Protection::sasl_seal;
    sealed.credentials.method = BindMethod::simple;
    c = Connection::open(std::move(sealed));
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().reason, Reason::invalid_request);
    EXPECT_NE(c.error().message.find("gssapi"), std::string::npos);
}

TEST(Connection, InsecureSkipVerifyWarnsLoudly) {
    ConnectOptions o;
    o.uris = {"ldaps://127.0.0.1:1"};
    o.insecure_skip_verify = true;
    std::vector<std::string> seen;
    o.warn = [&](std::string_view w) { seen.emplace_back(w); };
    (void)Connection::open(std::move(o));
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_NE(seen[0].find("verification is OFF"), std::string::npos);
}

}  // namespace
}  // namespace pwsync::directory
