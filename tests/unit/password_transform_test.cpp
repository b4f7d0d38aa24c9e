// Password transforms on their own (each rule, their order, non-ASCII text,
// bad settings) and through the exec adapter the registry wraps.
#include <gtest/gtest.h>

#include <algorithm>

#include "helpers.h"
#include "password_transform.h"
#include "registry.h"
#include "safe_scope.h"
#include "temporary_passwords.h"

namespace pwsync::gateway {
namespace {

using Props = std::map<std::string, std::string>;

PasswordTransform make(const Props& p) {
    auto t = PasswordTransform::from_properties(p);
    EXPECT_TRUE(t) << t.error().message;
    return t ? std::move(*t) : PasswordTransform{};
}

std::string transformed(const Props& p, std::string_view pw) {
    auto out = make(p).apply(Secret(pw));
    EXPECT_TRUE(out) << out.error().message;
    return out ? std::string(out->view()) : std::string("<error>");
}

std::string refusal(const Props& p, std::string_view pw) {
    auto out = make(p).apply(Secret(pw));
    EXPECT_FALSE(out);
    if (out) return {};
    EXPECT_EQ(out.error().code, Errc::invalid_argument);
    EXPECT_EQ(out.error().message.find(pw), std::string::npos) << "the reason carries the password";
    return out.error().message;
}

TEST(PasswordTransform, NoPropertiesChangeNothing) {
    EXPECT_TRUE(make({{"uri", "ldap://x"}}).identity());
    EXPECT_EQ(transformed({}, "Sommer 2026!"), "Sommer 2026!");
    EXPECT_FALSE(make({{"password-case", "as-is"}}).identity());
}

TEST(PasswordTransform, LetterCase) {
    EXPECT_EQ(transformed({{"password-case", "upper"}}, "abcXYZ09!"), "ABCXYZ09!");
    EXPECT_EQ(transformed({{"password-case", "lower"}}, "abcXYZ09!"), "abcxyz09!");
    EXPECT_EQ(transformed({{"password-case", "as-is"}}, "abcXYZ09!"), "abcXYZ09!");
}

TEST(PasswordTransform, CaseMapsAsciiOnlyAndKeepsOtherLettersAsTheyAre) {
    // Documented: ä, ß, é and Greek stay as they are, whatever the case rule.
    EXPECT_EQ(transformed({{"password-case", "upper"}}, "gr\xC3\xBC\xC3\x9F" "e\xCE\xB1"), "GR\xC3\xBC\xC3\x9F" "E\xCE\xB1");
    EXPECT_EQ(transformed({{"password-case", "lower"}}, "\xC3\x84PFEL"), "\xC3\x84pfel");
}

TEST(PasswordTransform, RemovesCharactersIncludingNonAscii) {
    EXPECT_EQ(transformed({{"password-remove", "-_ \xE2\x82\xAC"}}, "a-b_c d\xE2\x82\xAC" "e"), "abcde");
}

TEST(PasswordTransform, SubstitutesCharacterForCharacter) {
    EXPECT_EQ(transformed({{"password-substitute-from", "@$\xC3\xA4"}, {"password-substitute-to", "#Sa"}}, "p@$$w\xC3\xA4rd"),
              "p#SSward");
}

TEST(PasswordTransform, MaximumLengthTruncatesOnlyWhenAllowed) {
    EXPECT_EQ(transformed({{"password-max-length", "8"}, {"password-truncate", "yes"}}, "abcdefghijk"), "abcdefgh");
    // Characters, not bytes: three two-byte characters are three.
    EXPECT_EQ(transformed({{"password-max-length", "2"}, {"password-truncate", "yes"}}, "\xC3\xA4\xC3\xB6\xC3\xBC"), "\xC3\xA4\xC3\xB6");
    EXPECT_EQ(transformed({{"password-max-length", "8"}}, "abcdefgh"), "abcdefgh");
    const auto why = refusal({{"password-max-length", "8"}}, "abcdefghijk");
    EXPECT_NE(why.find("longer than the 8 characters"), std::string::npos) << why;
}

TEST(PasswordTransform, MinimumLengthPadsOnlyWhenAllowed) {
    EXPECT_EQ(transformed({{"password-min-length", "6"}, {"password-pad", "end"}, {"password-pad-char", "0"}}, "abc"), "abc000");
    EXPECT_EQ(transformed({{"password-min-length", "6"}, {"password-pad", "start"}, {"password-pad-char", "\xE2\x82\xAC"}}, "abcd"),
              "\xE2\x82\xAC\xE2\x82\xAC" "abcd");
    EXPECT_EQ(transformed({{"password-min-length", "3"}}, "abc"), "abc");
    const auto why = refusal({{"password-min-length", "6"}}, "abc");
    EXPECT_NE(why.find("shorter than the 6 characters"), std::string::npos) << why;
}

TEST(PasswordTransform, AppliesRemoveSubstituteCaseTruncatePadInThatOrder) {
    const Props racf = {{"password-remove", "-"},          {"password-substitute-from", "a"},
                        {"password-substitute-to", "q"},   {"password-case", "upper"},
                        {"password-max-length", "8"},      {"password-truncate", "yes"},
                        {"password-min-length", "6"},      {"password-pad", "end"},
                        {"password-pad-char", "x"}};
    // Removal before truncation: the dashes do not count against the 8.
    EXPECT_EQ(transformed(racf, "ab-cd-efghij"), "QBCDEFGH");
    // Substitution before case: 'a' becomes 'q', then 'Q'; 'A' is not substituted.
    EXPECT_EQ(transformed(racf, "aAb-"), "QABxxx");  // the pad character is not case-mapped
}

TEST(PasswordTransform, RefusesWhatCannotBeSent) {
    EXPECT_NE(refusal({{"password-case", "upper"}}, "ab\xFF" "cd").find("not valid UTF-8"), std::string::npos);
    EXPECT_NE(refusal({{"password-case", "upper"}}, "ab\xED\xA0\x80").find("not valid UTF-8"), std::string::npos);  // surrogate
    EXPECT_NE(refusal({{"password-remove", "ab"}}, "abba").find("nothing is left"), std::string::npos);
}

TEST(PasswordTransform, BadSettingsNameTheProperty) {
    struct Case {
        Props props;
        std::string key;
    };
    const std::vector<Case> bad = {
        {Props{{"password-case", "title"}}, "password-case"},
        {Props{{"password-max-length", "0"}}, "password-max-length"},
        {Props{{"password-max-length", "8x"}}, "password-max-length"},
        {Props{{"password-min-length", "9"}, {"password-max-length", "8"}}, "password-min-length"},
        {Props{{"password-truncate", "yes"}}, "password-truncate"},
        {Props{{"password-truncate", "maybe"}, {"password-max-length", "8"}}, "password-truncate"},
        {Props{{"password-pad", "end"}, {"password-pad-char", "x"}}, "password-pad"},
        {Props{{"password-pad", "end"}, {"password-min-length", "8"}}, "password-pad"},
        {Props{{"password-pad", "end"}, {"password-min-length", "8"}, {"password-pad-char", "xy"}}, "password-pad-char"},
        {Props{{"password-pad-char", "x"}}, "password-pad-char"},
        {Props{{"password-substitute-from", "ab"}}, "password-substitute-from"},
        {Props{{"password-substitute-from", "ab"}, {"password-substitute-to", "a"}}, "password-substitute-to"},
        {Props{{"password-remove", "\xC3"}}, "password-remove"},
    };
    for (const auto& [props, key] : bad) {
        auto t = PasswordTransform::from_properties(props);
        ASSERT_FALSE(t) << key;
        EXPECT_EQ(t.error().code, Errc::invalid_argument);
        EXPECT_NE(t.error().message.find(key), std::string::npos) << t.error().message;
        EXPECT_FALSE(check_password_transform(props));
    }
}

TEST(PasswordTransform, EveryAdapterTypeAcceptsTheTransformProperties) {
    for (const auto& type : adapter_types())
        for (const auto& p : PasswordTransform::property_names())
            EXPECT_NE(std::find(type.properties.begin(), type.properties.end(), p), type.properties.end()) << type.name << " " << p;
}

// registry.cpp (what pwsync validates) and factories.cpp (what pwsyncd
// makes) list the same types.
TEST(AdapterRegistry, EveryTypeHasAFactoryAndEveryFactoryAType) {
    for (const auto& type : adapter_types()) EXPECT_TRUE(find_adapter_factory(type.name)) << type.name;
    for (const char* name : {"ldap", "exec", "http", "null"}) {
        EXPECT_NE(find_adapter_type(name), nullptr) << name;
        EXPECT_TRUE(find_adapter_factory(name)) << name;
    }
    EXPECT_EQ(adapter_types().size(), 4u);
    EXPECT_FALSE(find_adapter_factory("bogus"));
}

// The exec adapter made by the registry receives the transformed password;
// a refusal never reaches the program and is permanent.
TEST(PasswordTransform, TheExecAdapterReceivesTheTransformedPassword) {
    test::TempDir dir;
    test::write_file(dir / "target.sh",
                     "#!/bin/bash\nread -r pw\nread -r old || true\necho \"$1 $pw ${old:--}\" >> " + (dir / "log") +
                         "\necho \"took $pw\"\n",
                     0700);
    AdapterContext ctx;
    ctx.config.name = "racf";
    ctx.config.type = "exec";
    ctx.config.timeout = 5;
    ctx.config.properties = {{"program", dir / "target.sh"},
                             {"password-case", "upper"},
                             {"password-max-length", "8"},
                             {"password-truncate", "yes"},
                             {"password-min-length", "8"},
                             {"password-pad", "end"},
                             {"password-pad-char", "0"}};
    ctx.secret = [](std::string_view) -> Result<Secret> { return fail(Errc::not_found, "none"); };
    auto adapter = make_adapter(ctx);
    ASSERT_TRUE(adapter) << adapter.error().message;
    const Secret pw("Winter2026!long"), old("short");
    Delivery d{"EXAMPLE\\alice", "ALICE1", &pw, &old, "dc1", "RACF", 7, {}};
    auto r = (*adapter)->deliver(d);
    EXPECT_EQ(r.outcome, Outcome::done) << r.message;
    EXPECT_EQ(test::read_file(dir / "log"), "ALICE1 WINTER20 SHORT000\n");
    // The program echoed the transformed password: it is scrubbed.
    EXPECT_EQ(r.message.find("WINTER20"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("***"), std::string::npos) << r.message;

    ctx.config.properties.erase("password-truncate");
    auto strict = make_adapter(ctx);
    ASSERT_TRUE(strict) << strict.error().message;
    r = (*strict)->deliver(d);
    EXPECT_EQ(r.outcome, Outcome::permanent);
    EXPECT_NE(r.message.find("password transform: the password is longer than the 8 characters"), std::string::npos) << r.message;
    EXPECT_EQ(test::read_file(dir / "log"), "ALICE1 WINTER20 SHORT000\n") << "a refused password reached the program";

    ctx.config.properties["password-case"] = "shout";
    auto broken = make_adapter(ctx);
    ASSERT_FALSE(broken);
    EXPECT_NE(broken.error().message.find("racf"), std::string::npos) << broken.error().message;
}

// temporary-passwords = send | hold, on any adapter type; send when unset.
TEST(TemporaryPasswords, EveryTypeTakesTheSettingAndBadValuesAreRefused) {
    EXPECT_EQ(*temporary_passwords({}), TemporaryPasswords::send);
    EXPECT_EQ(*temporary_passwords({{"temporary-passwords", "hold"}}), TemporaryPasswords::hold);
    EXPECT_EQ(*temporary_passwords({{"temporary-passwords", "send"}}), TemporaryPasswords::send);
    for (const auto& t : adapter_types()) {
        store::Adapter a;
        a.name = "x";
        a.type = t.name;
        EXPECT_NE(std::find(t.properties.begin(), t.properties.end(), "temporary-passwords"), t.properties.end()) << t.name;
        a.properties["temporary-passwords"] = "Hold";
        auto st = validate_adapter(a);
        ASSERT_FALSE(st) << t.name;
        EXPECT_NE(st.error().message.find("temporary-passwords: expected send or hold"), std::string::npos) << st.error().message;
    }
}

// The safe-scope decision: disabled first, then privileged (unless the
// application allows it), then a temporary password the adapter holds.
TEST(SafeScope, WithholdsInOrderAndSaysWhy) {
    store::App app;
    app.name = "LINUX";
    store::Adapter send, hold;
    send.name = "ext";
    hold.name = "ext-hold";
    hold.properties["temporary-passwords"] = "hold";
    const AccountState plain, disabled{true, ""}, admin{false, "adminCount=1"};
    EXPECT_FALSE(withhold(nullptr, false, app, send));
    EXPECT_FALSE(withhold(&plain, true, app, send));
    EXPECT_FALSE(withhold(nullptr, false, app, hold));
    auto w = withhold(&disabled, true, app, hold);
    ASSERT_TRUE(w);
    EXPECT_EQ(w->action, "change.not-sent");
    EXPECT_EQ(w->status, store::MappingStatus::stale);
    EXPECT_NE(w->reason.find("disabled"), std::string::npos);
    w = withhold(&admin, false, app, send);
    ASSERT_TRUE(w);
    EXPECT_NE(w->reason.find("privileged account (adminCount=1)"), std::string::npos) << w->reason;
    app.allow_privileged = true;
    EXPECT_FALSE(withhold(&admin, false, app, send));
    w = withhold(&admin, true, app, hold);
    ASSERT_TRUE(w);
    EXPECT_EQ(w->action, "change.held");
    EXPECT_EQ(w->status, store::MappingStatus::awaiting_change);
}

}  // namespace
}  // namespace pwsync::gateway
