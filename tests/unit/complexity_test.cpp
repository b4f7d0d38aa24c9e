#include <gtest/gtest.h>

#include "complexity.h"

namespace pwsync::cli {
namespace {

TEST(Complexity, ThreeOfFiveCategories) {
    EXPECT_EQ(complexity_problem("Wonder-Land.2024x", "alice", "Alice Liddell"), "");
    EXPECT_EQ(complexity_problem("abcDEF123", "alice", ""), "");              // upper, lower, digits
    EXPECT_EQ(complexity_problem("abc-def-123", "alice", ""), "");            // lower, symbols, digits
    EXPECT_EQ(complexity_problem("p\xC3\xA4ssw\xC3\xB6rd1", "alice", ""), "");  // lower, other letters, digit
    EXPECT_NE(complexity_problem("abcdefgh", "alice", ""), "");
    EXPECT_NE(complexity_problem("abcdEFGH", "alice", ""), "");
    EXPECT_NE(complexity_problem("12345678!", "alice", ""), "");
}

TEST(Complexity, NotTheAccountNameOrPartsOfTheFullName) {
    EXPECT_NE(complexity_problem("My-Alice.2024", "alice", ""), "");
    EXPECT_NE(complexity_problem("My-Alice.2024", "TEST\\alice", ""), "");   // the domain is not part of the name
    EXPECT_EQ(complexity_problem("My-Al.2024x", "al", ""), "");              // names under 3 characters are not checked
    EXPECT_NE(complexity_problem("Liddell-2024x", "alice", "Alice Liddell"), "");
    EXPECT_NE(complexity_problem("X-smith.99", "jsmith", "John_Smith"), "");
    EXPECT_EQ(complexity_problem("Jo-99.Blue", "jsmith", "Jo Smith"), "");  // "Jo" is too short to count
    const auto msg = complexity_problem("My-Alice.2024", "alice", "");
    EXPECT_EQ(msg.find("My-Alice"), std::string::npos);  // never the password
}

}  // namespace
}  // namespace pwsync::cli
