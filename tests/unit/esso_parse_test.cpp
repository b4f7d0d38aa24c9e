// ESSO ssomanage XML parsing, without a store.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "esso.h"

namespace pwsync::cli::esso {
namespace {

std::string data(const std::string& name) {
    std::ifstream in(std::string(PWSYNC_TEST_DATA) + "/esso/" + name);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

bool mentions(const std::vector<std::string>& lines, std::string_view what) {
    for (const auto& l : lines)
        if (l.find(what) != std::string::npos) return true;
    return false;
}

TEST(EssoParse, ApplicationsWithFlags) {
    auto d = parse(data("apps.xml"), "apps.xml");
    ASSERT_TRUE(d) << d.error().message;
    ASSERT_EQ(d->apps.size(), 2u);
    const auto& racf = d->apps[0];
    EXPECT_EQ(racf.name, "RACF");
    EXPECT_EQ(racf.description, "Mainframe & RACF");
    EXPECT_EQ(racf.contact, "ops@example.com");
    EXPECT_EQ(racf.enabled, true);
    EXPECT_EQ(racf.line, 5u);
    const std::map<std::string, bool> want = {{"syncToAdapter", true},         {"syncFromAdapter", true},
                                              {"changeWindowsPassword", true}, {"verifyOldPassword", false},
                                              {"sendOldPassword", true},       {"allowMappingConflicts", false}};
    EXPECT_EQ(racf.sync_flags, want);
    EXPECT_EQ(d->apps[1].enabled, false);
    EXPECT_TRUE(d->apps[1].sync_flags.empty());
    // What has no pwsync equivalent is reported, "no" SSO flags are not.
    EXPECT_TRUE(mentions(d->not_mapped, "allowLocalAccounts=yes"));
    EXPECT_TRUE(mentions(d->not_mapped, "<appUserAccount>"));
    EXPECT_TRUE(mentions(d->not_mapped, "<field>"));
    EXPECT_FALSE(mentions(d->not_mapped, "groupApp"));
}

TEST(EssoParse, Mappings) {
    auto d = parse(data("mappings.xml"), "m.xml");
    ASSERT_TRUE(d) << d.error().message;
    ASSERT_EQ(d->mappings.size(), 3u);
    EXPECT_EQ(d->mappings[0].windows, "TEST\\alice");
    EXPECT_EQ(d->mappings[0].app, "RACF");
    EXPECT_EQ(d->mappings[0].external, "ALICE01");
    EXPECT_EQ(d->mappings[2].external, "alice@payroll");
    EXPECT_TRUE(d->not_mapped.empty());
    auto nodomain = parse("<sso><mapping><windowsUserId>carol</windowsUserId><externalApplication>A</externalApplication>"
                          "<externalUserId>c</externalUserId></mapping></sso>", "x");
    ASSERT_TRUE(nodomain);
    EXPECT_EQ(nodomain->mappings[0].windows, "carol");
}

TEST(EssoParse, Utf16WithBom) {
    const std::string utf8 = "<sso><application name=\"Zoë\"><flags enableApp=\"yes\" syncToAdapter=\"yes\"/></application></sso>";
    std::string utf16 = "\xFF\xFE";
    // Latin-1 range only in this sample: one UTF-16LE unit per code point.
    for (std::size_t i = 0; i < utf8.size(); ++i) {
        unsigned char ch = static_cast<unsigned char>(utf8[i]);
        if (ch == 0xC3) {
            utf16 += static_cast<char>(0xC0 + (static_cast<unsigned char>(utf8[++i]) & 0x3F));
        } else {
            utf16 += static_cast<char>(ch);
        }
        utf16 += '\0';
    }
    auto d = parse(utf16, "u16.xml");
    ASSERT_TRUE(d) << d.error().message;
    ASSERT_EQ(d->apps.size(), 1u);
    EXPECT_EQ(d->apps[0].name, "Zo\xC3\xAB");
    EXPECT_EQ(d->apps[0].sync_flags.at("syncToAdapter"), true);
}

TEST(EssoParse, ErrorsNameTheFileAndLine) {
    struct Case {
        std::string xml, want;
    } cases[] = {
        {"<sso><application name='A'>", "x.xml line 1: not well-formed XML"},
        {"<apps/>", "not <sso>"},
        {"<sso>\n<application><flags/></application></sso>", "x.xml line 2: <application> has no name"},
        {"<sso><application name='A'><flags syncToAdapter='maybe'/></application></sso>", "syncToAdapter=\"maybe\" is not yes or no"},
        {"<sso><mapping><windowsUserId>u</windowsUserId><externalUserId>e</externalUserId></mapping></sso>",
         "<mapping> has no externalApplication"},
        {"<sso><mapping><windowsUserId>u</windowsUserId><externalApplication>A</externalApplication></mapping></sso>",
         "<mapping> has no externalUserId"},
        {"", "not well-formed XML"},
    };
    for (const auto& c : cases) {
        auto d = parse(c.xml, "x.xml");
        ASSERT_FALSE(d) << c.xml;
        EXPECT_EQ(d.error().code, Errc::invalid_argument);
        EXPECT_NE(d.error().message.find(c.want), std::string::npos) << d.error().message;
        EXPECT_EQ(d.error().message.rfind("x.xml", 0), 0u) << d.error().message;
    }
}

TEST(EssoParse, EntitiesFromADoctypeAreNotExpanded) {
    // A DTD-declared entity (the start of XXE and "billion laughs") is not
    // expanded: pugixml does not read DTDs.
    auto d = parse("<!DOCTYPE sso [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
                   "<sso><application name='A'><description>&x;</description></application></sso>", "x");
    ASSERT_TRUE(d) << d.error().message;
    ASSERT_EQ(d->apps.size(), 1u);
    EXPECT_EQ(d->apps[0].description->find("root:"), std::string::npos);
}

}  // namespace
}  // namespace pwsync::cli::esso
