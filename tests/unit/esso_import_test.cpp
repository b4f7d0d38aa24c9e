// pwsync import esso, run as a program against a temporary store.
#include <gtest/gtest.h>

#include "cli_fixture.h"

namespace pwsync::cli::testing {
namespace {

const std::string kData = std::string(PWSYNC_TEST_DATA) + "/esso/";

class EssoImport : public Cli {
protected:
    void SetUp() override {
        Cli::SetUp();
        ok({"adapter", "create", "racf-ldap", "--type", "ldap", "--property", "uri=ldaps://ext.example"});
    }
    std::string file(const std::string& name, const std::string& text) {
        const auto p = dir_ / name;
        test::write_file(p, text);
        return p;
    }
};

TEST_F(EssoImport, AppsFlagsAndMappingsInOneGo) {
    auto r = pw({"import", "esso", kData + "apps.xml", kData + "mappings.xml", "--adapter", "RACF=racf-ldap"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("imported 2 applications, 3 mappings (3 new)"), std::string::npos) << r.out;
    EXPECT_NE(r.err.find("not mapped: "), std::string::npos);
    EXPECT_NE(r.err.find("allowLocalAccounts=yes"), std::string::npos) << r.err;

    auto apps = js({"app", "list"});
    ASSERT_EQ(apps.size(), 2u);
    auto adapter = js({"adapter", "show", "racf-ldap"});
    EXPECT_EQ(adapter["enabled"], true) << adapter.dump();
    EXPECT_EQ(adapter["sync_to_adapter"], true);
    EXPECT_EQ(adapter["sync_from_adapter"], true);
    EXPECT_EQ(adapter["change_windows_password"], true);
    EXPECT_EQ(adapter["verify_old_password"], false);
    EXPECT_EQ(adapter["send_old_password"], true);
    EXPECT_EQ(adapter["allow_mapping_conflicts"], false);
    auto mappings = js({"mapping", "list", "--app", "RACF"});
    ASSERT_EQ(mappings.size(), 2u);
    EXPECT_EQ(mappings[0]["external"], "ALICE01");
    auto payroll = js({"app", "show", "Payroll"});
    EXPECT_EQ(payroll["enabled"], false);
    // The import is in the audit.
    EXPECT_NE(ok({"audit"}).find("import.esso"), std::string::npos);
    // Importing the same files again changes nothing and succeeds.
    r = pw({"import", "esso", kData + "apps.xml", kData + "mappings.xml", "--adapter", "RACF=racf-ldap"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("(0 new)"), std::string::npos) << r.out;
}

TEST_F(EssoImport, AnAdapterOfTheSameNameIsFoundWithoutBeingNamed) {
    ok({"adapter", "create", "RACF", "--type", "ldap", "--property", "uri=ldaps://ext.example"});
    auto r = pw({"import", "esso", kData + "apps.xml"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(js({"adapter", "show", "RACF"})["sync_to_adapter"], true);
    EXPECT_EQ(js({"app", "show", "RACF"})["adapter"], "RACF");
}

TEST_F(EssoImport, DryRunChangesNothing) {
    auto r = pw({"import", "esso", kData + "apps.xml", kData + "mappings.xml", "--adapter", "RACF=racf-ldap",
                 "--dry-run", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto plan = json::parse(r.out);
    EXPECT_EQ(plan["dry_run"], true);
    EXPECT_EQ(plan["applications"].size(), 2u);
    EXPECT_EQ(plan["mappings"].size(), 3u);
    EXPECT_FALSE(plan["not_mapped"].empty());
    EXPECT_TRUE(js({"app", "list"}).empty());
    EXPECT_TRUE(js({"mapping", "list"}).empty());
    EXPECT_EQ(js({"adapter", "show", "racf-ldap"})["sync_to_adapter"], false);
}

TEST_F(EssoImport, AllOrNothing) {
    // The third mapping names an application nobody created: nothing lands,
    // not even the applications of the first file.
    const auto bad = file("bad.xml", "<sso>\n<mapping><windowsUserId>x</windowsUserId>"
                                     "<externalApplication>Nowhere</externalApplication>"
                                     "<externalUserId>x</externalUserId></mapping></sso>");
    auto err = failing({"import", "esso", kData + "apps.xml", bad}, 1);
    EXPECT_NE(err.find("bad.xml line 2"), std::string::npos) << err;
    EXPECT_NE(err.find("Nowhere"), std::string::npos) << err;
    EXPECT_TRUE(js({"app", "list"}).empty());
    // --strict refuses files with anything unmapped.
    err = failing({"import", "esso", kData + "apps.xml", "--adapter", "RACF=racf-ldap", "--strict"}, 1);
    EXPECT_NE(err.find("could not be mapped"), std::string::npos) << err;
    EXPECT_TRUE(js({"app", "list"}).empty());
    // Two applications of one adapter that disagree on a flag.
    const auto clash = file("clash.xml", "<sso><application name='A'><flags syncToAdapter='yes'/></application>"
                                         "<application name='B'><flags syncToAdapter='no'/></application></sso>");
    err = failing({"import", "esso", clash, "--adapter", "A=racf-ldap", "--adapter", "B=racf-ldap"}, 1);
    EXPECT_NE(err.find("contradicts"), std::string::npos) << err;
    // A mapping that contradicts the store.
    ok({"app", "create", "RACF"});
    ok({"mapping", "create", "--app", "RACF", "--windows", "TEST\\alice", "--external", "SOMEONE"});
    err = failing({"import", "esso", kData + "mappings.xml"}, 1);
    EXPECT_NE(err.find("SOMEONE"), std::string::npos) << err;
    EXPECT_EQ(js({"mapping", "list"}).size(), 1u);
}

TEST_F(EssoImport, BadInputIsAUsageOrInputError) {
    failing({"import", "esso"}, 2);
    failing({"import", "esso", kData + "apps.xml", "--adapter", "RACF"}, 2);
    auto err = failing({"import", "esso", dir_ / "missing.xml"}, 1);
    EXPECT_NE(err.find("cannot read"), std::string::npos);
    err = failing({"import", "esso", file("broken.xml", "<sso><application name='A'>")}, 1);
    EXPECT_NE(err.find("not well-formed"), std::string::npos);
    err = failing({"import", "esso", kData + "apps.xml", "--adapter", "RACF=no-such-adapter"}, 1);
    EXPECT_NE(err.find("no-such-adapter"), std::string::npos) << err;
}

}  // namespace
}  // namespace pwsync::cli::testing
