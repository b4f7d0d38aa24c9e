// The PostgreSQL side of the store suite's fixture (store_test only: it
// needs the store's internals and libpq): a schema per test in the test
// environment's database.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <string>

#include "pq.h"

namespace pwsync::store::testing {

// Runs statements as the PostgreSQL superuser of the test environment.
inline void pg_admin(std::initializer_list<std::string> statements) {
    const char* admin = std::getenv("PWSYNC_TEST_PG_ADMIN_URI");
    ASSERT_NE(admin, nullptr) << "PWSYNC_TEST_PG_ADMIN_URI is not set";
    auto c = pq::connect(admin, {});
    ASSERT_TRUE(c) << c.error().message;
    for (const auto& sql : statements) {
        auto r = pq::run(c->get(), sql.c_str(), "admin SQL");
        ASSERT_TRUE(r) << r.error().message;
    }
}

// A PostgreSQL store per test: the store URI of the test environment with
// a schema of its own first on the search path (created empty on first use).
inline std::string pg_store_uri(const std::filesystem::path& dir) {
    static std::map<std::string, std::string> made;  // per process; inherited by forks
    auto& uri = made[dir.string()];
    if (uri.empty()) {
        static int n = 0;
        const std::string schema = "t" + std::to_string(::getpid()) + "_" + std::to_string(++n);
        pg_admin({"DROP SCHEMA IF EXISTS " + schema + " CASCADE", "CREATE SCHEMA " + schema + " AUTHORIZATION pwsync"});
        uri = std::string(std::getenv("PWSYNC_TEST_PG_URI")) + "&options=-csearch_path%3D" + schema;
    }
    return uri;
}

}  // namespace pwsync::store::testing
