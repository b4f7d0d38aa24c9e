#include <gtest/gtest.h>

#include "codec.h"
#include "records.h"

namespace pwsync::store::records {
namespace {

TEST(Records, AdapterRoundTrip) {
    AdapterRecord r;
    r.adapter.name = "Ldap1";
    r.adapter.type = "ldap";
    r.adapter.flags.enabled = true;
    r.adapter.flags.verify_old_password = false;
    r.adapter.retry_count = 9;
    r.adapter.properties = {{"uri", "ldaps://x"}, {"base", "dc=x"}};
    r.sealed = {{"bind-password", std::string("\x01sealed\0bytes", 13)}};
    r.adapter.group = "g";
    r.adapter.created = from_unix_micros(123456789);
    auto back = decode_adapter(encode(r));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->adapter.name, "Ldap1");
    EXPECT_TRUE(back->adapter.flags.enabled);
    EXPECT_FALSE(back->adapter.flags.verify_old_password);
    EXPECT_EQ(back->adapter.retry_count, 9u);
    EXPECT_EQ(back->adapter.properties, r.adapter.properties);
    EXPECT_EQ(back->sealed, r.sealed);
    EXPECT_EQ(back->adapter.secret_properties, std::vector<std::string>{"bind-password"});
    EXPECT_EQ(back->adapter.group, "g");
    EXPECT_EQ(to_unix_micros(back->adapter.created), 123456789);
}

// allow-privileged and the awaiting-change status survive encoding; an
// application written before allow-privileged existed reads as refusing.
TEST(Records, SafeScopeFieldsRoundTrip) {
    App a;
    a.name = "LINUX";
    a.allow_privileged = true;
    auto back = decode_app(encode(a));
    ASSERT_TRUE(back);
    EXPECT_TRUE(back->allow_privileged);
    a.allow_privileged = false;
    back = decode_app(encode(a));
    ASSERT_TRUE(back);
    EXPECT_FALSE(back->allow_privileged);
    MappingRecord m{{"RACF", "TEST\\alice", "ALICE", true, false, MappingStatus::awaiting_change, "", {}, {}, {}}, ""};
    auto mb = decode_mapping(encode(m));
    ASSERT_TRUE(mb);
    EXPECT_EQ(mb->mapping.status, MappingStatus::awaiting_change);
    EXPECT_STREQ(mapping_status_name(mb->mapping.status), "awaiting-change");
    // What a release that knows only ok and stale reads: ok, not an error.
    std::uint64_t status = 99;
    ASSERT_TRUE(codec::decode(encode(m), kFormat, "mapping", [&](std::uint32_t tag, std::string_view v) -> Status {
        if (tag == 5) status = *codec::as_u64(v);
        return {};
    }));
    EXPECT_EQ(status, static_cast<std::uint64_t>(MappingStatus::ok));
}

TEST(Records, MappingPrincipalAuditRoundTrip) {
    MappingRecord m{{"RACF", "TEST\\alice", "ALICE", false, false, MappingStatus::stale, "{guid}", {}, {}, {}}, "sealed"};
    auto mb = decode_mapping(encode(m));
    ASSERT_TRUE(mb);
    EXPECT_EQ(mb->mapping.windows, "TEST\\alice");
    EXPECT_FALSE(mb->mapping.enabled);
    EXPECT_TRUE(mb->mapping.has_credential);
    EXPECT_EQ(mb->mapping.status, MappingStatus::stale);

    PrincipalRecord p{{"dc1", PrincipalKind::windows, "", CaptureMode::pre_commit, "CN=x", {}}, {16384, 8, 1, "salt", "hash"}};
    auto pb = decode_principal(encode(p));
    ASSERT_TRUE(pb);
    EXPECT_EQ(pb->principal.kind, PrincipalKind::windows);
    EXPECT_EQ(pb->principal.capture, CaptureMode::pre_commit);
    EXPECT_EQ(pb->secret.n, 16384u);
    EXPECT_EQ(pb->secret.hash, "hash");

    AuditRecord a{0, from_unix_micros(5), "root", "app.create", "RACF", "enabled"};
    auto ab = decode_audit(encode(a));
    ASSERT_TRUE(ab);
    EXPECT_EQ(ab->action, "app.create");
    EXPECT_EQ(to_unix_micros(ab->time), 5);
}

// Bytes as release 0.1 wrote them: they must decode the same way forever.
TEST(Records, ReadsFormatOneAppWrittenByRelease01) {
    const std::string v1 = codec::Encoder(1).str(1, "RACF").str(2, "mainframe").str(3, "ops").boolean(4, false)
                               .str(5, "ldap1").i64(6, 1000).i64(7, 2000).take();
    const std::string golden("\x01\x01\x04RACF\x02\x09mainframe\x03\x03ops\x04\x01\x00\x05\x05ldap1\x06\x02\xe8\x07\x07\x02\xd0\x0f",
                             41);
    ASSERT_EQ(v1, golden);
    auto a = decode_app(golden);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->name, "RACF");
    EXPECT_FALSE(a->enabled);
    EXPECT_EQ(a->adapter, "ldap1");
    EXPECT_EQ(to_unix_micros(a->updated), 2000);
}

// An adapter record from before a flag existed keeps that flag's default
// (verify-old-password is on unless a record says otherwise).
TEST(Records, MissingFieldsKeepDefaults) {
    const std::string old = codec::Encoder(1).str(1, "old").str(2, "exec").take();
    auto r = decode_adapter(old);
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->adapter.flags.verify_old_password);
    EXPECT_FALSE(r->adapter.flags.enabled);
    EXPECT_EQ(r->adapter.retry_count, 5u);
    EXPECT_EQ(r->adapter.concurrency, 1u);
}

TEST(Records, OutOfRangeEnumIsCorrupt) {
    const std::string bad = codec::Encoder(1).str(1, "p").u64(2, 7).take();
    auto r = decode_principal(bad);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::corrupt);
}

}  // namespace
}  // namespace pwsync::store::records
