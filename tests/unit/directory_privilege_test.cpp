// Privileged accounts found by SID: binary SIDs as text, AdminSDHolder's
// protected accounts and groups by well-known RID, whatever their names.
#include <gtest/gtest.h>

#include "pwsync/directory.h"

namespace pwsync::directory {
namespace {

// S-1-5-21-a-b-c-rid in AD's binary form.
std::string domain_sid(std::uint32_t a, std::uint32_t b, std::uint32_t c, std::uint32_t rid) {
    std::string out{'\x01', '\x05', 0, 0, 0, 0, 0, '\x05'};
    for (std::uint32_t v : {21u, a, b, c, rid})
        for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return out;
}

TEST(Privilege, BinarySidsReadAsText) {
    EXPECT_EQ(sid_text(domain_sid(1004336348, 1177238915, 682003330, 512)), "S-1-5-21-1004336348-1177238915-682003330-512");
    const std::string builtin_admins{'\x01', '\x02', 0, 0, 0, 0, 0, '\x05', 32, 0, 0, 0, '\x20', '\x02', 0, 0};
    EXPECT_EQ(sid_text(builtin_admins), "S-1-5-32-544");
    EXPECT_EQ(sid_text(""), "");
    EXPECT_EQ(sid_text(builtin_admins.substr(0, 15)), "");  // count and length disagree
}

TEST(Privilege, ProtectedGroupsAreKnownByRidNotName) {
    EXPECT_EQ(protected_sid_name("S-1-5-21-1-2-3-512"), "Domain Admins");
    EXPECT_EQ(protected_sid_name("S-1-5-21-1-2-3-519"), "Enterprise Admins");
    EXPECT_EQ(protected_sid_name("S-1-5-21-1-2-3-518"), "Schema Admins");
    EXPECT_EQ(protected_sid_name("S-1-5-21-1-2-3-516"), "Domain Controllers");
    EXPECT_EQ(protected_sid_name("S-1-5-21-1-2-3-521"), "Read-only Domain Controllers");
    EXPECT_EQ(protected_sid_name("S-1-5-21-1-2-3-526"), "Key Admins");
    EXPECT_EQ(protected_sid_name("S-1-5-21-1-2-3-500"), "Administrator");
    EXPECT_EQ(protected_sid_name("S-1-5-32-544"), "Administrators");
    EXPECT_EQ(protected_sid_name("S-1-5-32-548"), "Account Operators");
    EXPECT_EQ(protected_sid_name("S-1-5-32-551"), "Backup Operators");
    // Ordinary groups and lookalikes are not.
    EXPECT_FALSE(protected_sid_name("S-1-5-21-1-2-3-513"));     // Domain Users
    EXPECT_FALSE(protected_sid_name("S-1-5-21-1-2-3-1105"));    // a group an admin made
    EXPECT_FALSE(protected_sid_name("S-1-5-32-545"));           // Users
    EXPECT_FALSE(protected_sid_name("S-1-5-21-512"));           // not a domain SID
    EXPECT_FALSE(protected_sid_name("S-1-5-21-1-2-3-x512"));
    EXPECT_FALSE(protected_sid_name("S-1-1-0"));
}

TEST(Privilege, TheReasonNamesEveryCause) {
    EXPECT_EQ(privileged_reason(false, "S-1-5-21-1-2-3-1104", {"S-1-5-21-1-2-3-513", "S-1-5-32-545"}), "");
    EXPECT_EQ(privileged_reason(true, "S-1-5-21-1-2-3-1104", {}), "adminCount=1");
    EXPECT_EQ(privileged_reason(false, "S-1-5-21-1-2-3-1104", {"S-1-5-21-1-2-3-513", "S-1-5-21-1-2-3-512"}),
              "member of Domain Admins (S-1-5-21-1-2-3-512)");
    EXPECT_EQ(privileged_reason(true, "S-1-5-21-1-2-3-500", {"S-1-5-32-544"}),
              "adminCount=1, the built-in Administrator account, member of Administrators (S-1-5-32-544)");
}

// An identity that may not read tokenGroups gets none back: that is not
// "no groups", and the account must not pass for unprivileged.
TEST(Privilege, UnreadableGroupsAreAnErrorNotUnprivileged) {
    Entry e;
    e.dn = "CN=admin2,CN=Users,DC=x";
    e.attributes = {{"objectSid", {std::string("\x01\x01\0\0\0\0\0\x05\x15\0\0\0", 12)}}};
    auto r = privileged_reason(e);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().reason, Reason::insufficient_rights);
    EXPECT_NE(r.error().message.find("tokenGroups"), std::string::npos);
    EXPECT_NE(r.error().message.find("CN=admin2,CN=Users,DC=x"), std::string::npos);
    // With them, the same entry is judged.
    e.attributes.push_back({"tokenGroups", {std::string("\x01\x01\0\0\0\0\0\x05\x20\0\0\0", 12)}});
    auto ok = privileged_reason(e);
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_EQ(*ok, "");
}

}  // namespace
}  // namespace pwsync::directory
