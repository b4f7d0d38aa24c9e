// The pwsync CLI run as a program against a temporary store: the fixture
// shared by the CLI tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "helpers.h"

namespace pwsync::cli::testing {

using nlohmann::json;

class Cli : public ::testing::Test {
protected:
    void SetUp() override {
        auto r = pw({"init"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    test::RunResult pw(std::vector<std::string> args, std::string_view input = {}) {
        args.insert(args.begin(), test::program("pwsync"));
        return test::run(args, input, {"PWSYNC_STORE=" + store(), "PWSYNC_CONFIG="});
    }
    // Runs a command that must succeed and returns its stdout.
    std::string ok(std::vector<std::string> args, std::string_view input = {}) {
        auto r = pw(args, input);
        EXPECT_EQ(r.exit_code, 0) << "pwsync " << args[0] << ": " << r.err;
        EXPECT_EQ(r.err, "");
        return r.out;
    }
    json js(std::vector<std::string> args) {
        args.push_back("--json");
        return json::parse(ok(args));
    }
    // A failure: exit code and one line on stderr.
    std::string failing(std::vector<std::string> args, int code, std::string_view input = {}) {
        auto r = pw(args, input);
        EXPECT_EQ(r.exit_code, code) << r.out << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
        EXPECT_EQ(r.err.rfind("pwsync: error: ", 0), 0u) << r.err;
        return r.err;
    }
    std::string store() const { return dir_ / "store"; }
    void setup_racf() {
        ok({"app", "create", "RACF", "--description", "Mainframe", "--contact", "ops@example.com"});
        ok({"adapter", "create", "ldap1", "--type", "ldap", "--property", "uri=ldaps://ext.example", "--sync-to-adapter"});
        ok({"adapter", "add-app", "ldap1", "RACF"});
        ok({"mapping", "create", "--app", "RACF", "--windows", "TEST\\alice", "--external", "ALICE"});
    }

    test::TempDir dir_;
};

}  // namespace pwsync::cli::testing
