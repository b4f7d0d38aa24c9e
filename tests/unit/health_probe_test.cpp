// pwsyncd --health-check's probe against a running listener, and against none.
#include "health.h"
#include "listener_fixture.h"

namespace pwsync::test {
namespace {

gateway::DaemonConfig listening_on(std::string uri) {
    gateway::DaemonConfig c;
    c.listen_uris = {std::move(uri)};
    return c;
}

TEST_F(ListenerTest, HealthProbeGetsAnAnswerOverLdapsAndStartTls) {
    start();
    auto ldaps = gateway::probe_listener(listening_on(ldaps_uri()), 5);
    ASSERT_TRUE(ldaps) << ldaps.error().message;
    EXPECT_EQ(*ldaps, ldaps_uri() + " answers");
    auto starttls = gateway::probe_listener(listening_on(ldap_uri()), 5);
    ASSERT_TRUE(starttls) << starttls.error().message;
    EXPECT_EQ(*starttls, ldap_uri() + " answers");
    // A wildcard listen address is asked on loopback.
    auto wildcard = gateway::probe_listener(listening_on("ldaps://0.0.0.0:" + std::to_string(ldaps_port())), 5);
    ASSERT_TRUE(wildcard) << wildcard.error().message;
    EXPECT_EQ(*wildcard, ldaps_uri() + " answers");
}

TEST(HealthProbe, NothingListeningIsUnavailableAndSaysWhere) {
    auto r = gateway::probe_listener(listening_on("ldaps://127.0.0.1:1"), 5);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::unavailable);
    EXPECT_NE(r.error().message.find("ldaps://127.0.0.1:1: WhoAmI"), std::string::npos) << r.error().message;
}

TEST(HealthProbe, NoListenUriIsAConfigurationError) {
    auto r = gateway::probe_listener(gateway::DaemonConfig{}, 5);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::invalid_argument);
}

}  // namespace
}  // namespace pwsync::test
