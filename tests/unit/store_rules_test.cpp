// The rules kept from ESSO.
#include "store_fixture.h"

namespace pwsync::store::testing {
namespace {

TEST_P(StoreTest, AdapterNamesStartingWithAtAreReserved) {
    auto t = w();
    Adapter a;
    a.name = "@windows";
    a.type = "ldap";
    EXPECT_ERRC(t.create_adapter(a), Errc::invalid_argument);
}

TEST_P(StoreTest, AdapterFlagsStartOffButVerifyOldPassword) {
    make_adapter("ad1");
    auto a = r().adapter("AD1");
    ASSERT_OK(a);
    EXPECT_FALSE(a->flags.enabled);
    EXPECT_FALSE(a->flags.sync_to_adapter);
    EXPECT_FALSE(a->flags.sync_from_adapter);
    EXPECT_FALSE(a->flags.change_windows_password);
    EXPECT_TRUE(a->flags.verify_old_password);
    EXPECT_FALSE(a->flags.send_old_password);
    EXPECT_FALSE(a->flags.allow_mapping_conflicts);
}

TEST_P(StoreTest, AnApplicationBelongsToAtMostOneAdapter) {
    make_app("RACF");
    make_adapter("ad1");
    make_adapter("ad2");
    auto t = w();
    ASSERT_OK(t.add_app_to_adapter("ad1", "RACF"));
    ASSERT_OK(t.add_app_to_adapter("AD1", "racf"));  // again: no change, no error
    auto st = t.add_app_to_adapter("ad2", "RACF");
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, Errc::conflict);
    EXPECT_NE(st.error().message.find("already belongs to adapter 'ad1'"), std::string::npos);
    ASSERT_OK(t.remove_app_from_adapter("RACF"));
    ASSERT_OK(t.add_app_to_adapter("ad2", "RACF"));
    EXPECT_ERRC(t.add_app_to_adapter("ad2", "missing"), Errc::not_found);
}

TEST_P(StoreTest, AnAdapterBelongsToAtMostOneGroup) {
    make_adapter("ad1");
    auto t = w();
    ASSERT_OK(t.create_group({"g1", "", {}}));
    ASSERT_OK(t.create_group({"g2", "", {}}));
    ASSERT_OK(t.add_to_group("g1", "ad1"));
    EXPECT_ERRC(t.add_to_group("g2", "ad1"), Errc::conflict);
    EXPECT_EQ(*t.group_members("G1"), std::vector<std::string>{"ad1"});
    EXPECT_ERRC(t.remove_from_group("g2", "ad1"), Errc::invalid_argument);
    EXPECT_ERRC(t.delete_group("g1"), Errc::in_use);
    ASSERT_OK(t.remove_from_group("g1", "ad1"));
    ASSERT_OK(t.add_to_group("g2", "ad1"));
    ASSERT_OK(t.delete_group("g1"));
}

TEST_P(StoreTest, AnAdapterInUseCannotBeDeleted) {
    make_app("RACF");
    make_adapter("ad1");
    {
        auto t = w();
        ASSERT_OK(t.add_app_to_adapter("ad1", "RACF"));
        auto st = t.delete_adapter("ad1");
        ASSERT_FALSE(st);
        EXPECT_EQ(st.error().code, Errc::in_use);
        EXPECT_NE(st.error().message.find("RACF"), std::string::npos);  // names what holds it
        ASSERT_OK(t.remove_app_from_adapter("RACF"));
        ASSERT_OK(t.create_group({"g", "", {}}));
        ASSERT_OK(t.add_to_group("g", "ad1"));
        st = t.delete_adapter("ad1");
        ASSERT_FALSE(st);
        EXPECT_EQ(st.error().code, Errc::in_use);
        EXPECT_NE(st.error().message.find("group 'g'"), std::string::npos);
        ASSERT_OK(t.remove_from_group("g", "ad1"));
        Principal p;
        p.name = "agent";
        p.kind = PrincipalKind::adapter;
        p.adapter = "ad1";
        ASSERT_OK(t.create_principal(p, Secret("a-long-enough-secret")));
        EXPECT_ERRC(t.delete_adapter("ad1"), Errc::in_use);
        ASSERT_OK(t.delete_principal("agent"));
        ASSERT_OK(t.delete_adapter("ad1"));
        ASSERT_OK(t.commit());
    }
    EXPECT_ERRC(r().adapter("ad1"), Errc::not_found);
}

TEST_P(StoreTest, AnApplicationWithMappingsCannotBeDeleted) {
    make_app("RACF");
    ASSERT_OK(map("RACF", "alice", "ALICE"));
    auto t = w();
    EXPECT_ERRC(t.delete_app("RACF"), Errc::in_use);
    ASSERT_OK(t.delete_mapping({"RACF", "alice"}));
    ASSERT_OK(t.delete_app("RACF"));
}

TEST_P(StoreTest, MappingConflictsAcrossAnAdaptersApplications) {
    make_app("RACF");
    make_app("LINUX");
    make_app("OTHER");
    make_adapter("ad1");
    {
        auto t = w();
        ASSERT_OK(t.add_app_to_adapter("ad1", "RACF"));
        ASSERT_OK(t.add_app_to_adapter("ad1", "LINUX"));
        ASSERT_OK(t.commit());
    }
    ASSERT_OK(map("RACF", "TEST\\alice", "shared"));
    // Same external user in another application of the same adapter: refused.
    auto st = map("LINUX", "TEST\\bob", "SHARED");
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, Errc::conflict);
    EXPECT_NE(st.error().message.find("TEST\\alice"), std::string::npos);
    // ... and in the same application for another Windows account.
    EXPECT_ERRC(map("RACF", "TEST\\bob", "shared"), Errc::conflict);
    // An application outside the adapter is its own scope.
    ASSERT_OK(map("OTHER", "TEST\\bob", "shared"));
    // Joining the adapter would now create a conflict: refused.
    {
        auto t = w();
        EXPECT_ERRC(t.add_app_to_adapter("ad1", "OTHER"), Errc::conflict);
    }
    // Allowed once the adapter allows conflicts.
    {
        auto t = w();
        AdapterUpdate u;
        u.allow_mapping_conflicts = true;
        ASSERT_OK(t.update_adapter("ad1", std::move(u)));
        ASSERT_OK(t.add_app_to_adapter("ad1", "OTHER"));
        ASSERT_OK(t.commit());
    }
    ASSERT_OK(map("LINUX", "TEST\\bob", "shared"));
    // Turning the permission off while conflicts exist is refused.
    auto t = w();
    AdapterUpdate off;
    off.allow_mapping_conflicts = false;
    EXPECT_ERRC(t.update_adapter("ad1", std::move(off)), Errc::conflict);
}

TEST_P(StoreTest, AdapterSecretsAreSealedAndUpdatable) {
    {
        auto t = w();
        Adapter a;
        a.name = "ad1";
        a.type = "ldap";
        a.properties = {{"uri", "ldaps://ext"}};
        std::map<std::string, Secret> secrets;
        secrets.emplace("bind-password", Secret("Bind-Secret-123"));
        ASSERT_OK(t.create_adapter(a, std::move(secrets)));
        ASSERT_OK(t.commit());
    }
    EXPECT_EQ(r().adapter_secret("ad1", "bind-password")->view(), "Bind-Secret-123");
    EXPECT_EQ(r().adapter("ad1")->secret_properties, std::vector<std::string>{"bind-password"});
    EXPECT_TRUE(stored_files_containing("Bind-Secret-123").empty());
    {
        auto t = w();
        AdapterUpdate u;
        u.set_secrets.emplace("bind-password", Secret("Bind-Secret-456"));
        u.set_properties["base"] = "dc=ext";
        u.retry_count = 3;
        ASSERT_OK(t.update_adapter("ad1", std::move(u)));
        AdapterUpdate clash;
        clash.set_properties["bind-password"] = "plain";
        EXPECT_ERRC(t.update_adapter("ad1", std::move(clash)), Errc::conflict);
        AdapterUpdate bad;
        bad.concurrency = 0;
        EXPECT_ERRC(t.update_adapter("ad1", std::move(bad)), Errc::invalid_argument);
        ASSERT_OK(t.commit());
    }
    EXPECT_EQ(r().adapter_secret("ad1", "bind-password")->view(), "Bind-Secret-456");
    EXPECT_EQ(r().adapter("ad1")->retry_count, 3u);
    EXPECT_EQ(r().adapter("ad1")->properties.at("base"), "dc=ext");
    {
        auto t = w();
        AdapterUpdate u;
        u.unset_properties = {"bind-password"};
        ASSERT_OK(t.update_adapter("ad1", std::move(u)));
        ASSERT_OK(t.commit());
    }
    EXPECT_ERRC(r().adapter_secret("ad1", "bind-password"), Errc::not_found);
}

TEST_P(StoreTest, PrincipalRules) {
    make_adapter("ad1");
    auto t = w();
    Principal dc;
    dc.name = "dc1";
    dc.kind = PrincipalKind::windows;
    EXPECT_ERRC(t.create_principal(dc, Secret("a-long-enough-secret")), Errc::invalid_argument);  // no capture mode
    dc.capture = CaptureMode::pre_commit;
    EXPECT_ERRC(t.create_principal(dc, Secret("short")), Errc::invalid_argument);
    ASSERT_OK(t.create_principal(dc, Secret("a-long-enough-secret")));
    EXPECT_ERRC(t.create_principal(dc, Secret("a-long-enough-secret")), Errc::already_exists);
    Principal ext;
    ext.name = "ext-agent";
    ext.kind = PrincipalKind::adapter;
    ext.adapter = "missing";
    EXPECT_ERRC(t.create_principal(ext, Secret("a-long-enough-secret")), Errc::not_found);
    ext.adapter = "AD1";
    ext.capture = CaptureMode::post_commit;
    EXPECT_ERRC(t.create_principal(ext, Secret("a-long-enough-secret")), Errc::invalid_argument);
    ext.capture = CaptureMode::none;
    ASSERT_OK(t.create_principal(ext, Secret("another-long-secret")));
    ASSERT_OK(t.commit());
    EXPECT_TRUE(*r().verify_principal_secret("DC1", "a-long-enough-secret"));
    EXPECT_FALSE(*r().verify_principal_secret("dc1", "a-long-enough-secreT"));
    EXPECT_EQ(r().principal("ext-agent")->adapter, "ad1");
    EXPECT_TRUE(stored_files_containing("a-long-enough-secret").empty());
}


}  // namespace
}  // namespace pwsync::store::testing
