// A fresh store in a temporary folder, with a clock the test controls, in
// each backend: the one suite every store backend must pass.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "helpers.h"
#include "pwsync/store.h"
#ifdef PWSYNC_STORE_TEST_PG
#include "store_pg_fixture.h"
#endif

namespace pwsync::store::testing {

#define ASSERT_OK(expr)                                                     \
    do {                                                                    \
        auto&& ok_ = (expr);                                                \
        ASSERT_TRUE(ok_) << #expr << ": " << ok_.error().message;           \
    } while (0)

#define EXPECT_ERRC(expr, want)                                             \
    do {                                                                    \
        auto&& r_ = (expr);                                                 \
        EXPECT_FALSE(r_) << #expr << " succeeded";                          \
        if (!r_) {                                                          \
            EXPECT_EQ(r_.error().code, want) << r_.error().message;         \
        }                                                                   \
    } while (0)

// A backend the store suite runs against: every TEST_P of StoreTest (and of
// the fixtures derived from it) runs once per entry of backends(). A new
// backend adds an entry there and must pass the whole suite.
struct BackendCase {
    std::string name;
    // The store URI for a test whose private folder is `dir`.
    std::function<std::string(const std::filesystem::path& dir)> uri;
    // Where the master key goes, when not the backend's default.
    std::function<std::string(const std::filesystem::path& dir)> key_file;
    // Folders that hold the backend's files besides `dir` (leak scans).
    std::vector<std::string> data_dirs;
};

// LMDB, or, when the test environment's PostgreSQL is named by
// PWSYNC_TEST_PG_URI (the store_postgresql integration test), PostgreSQL.
inline std::vector<BackendCase> backends() {
#ifdef PWSYNC_STORE_TEST_PG
    if (const char* pg = std::getenv("PWSYNC_TEST_PG_URI"); pg != nullptr && *pg != '\0') {
        const char* data = std::getenv("PWSYNC_TEST_PG_DATA");
        return {{"postgresql", pg_store_uri,
                 [](const std::filesystem::path& dir) { return (dir / "master.key").string(); },
                 data != nullptr ? std::vector<std::string>{data} : std::vector<std::string>{}}};
    }
#endif
    return {
        // 1 GiB map: the tests stay small.
        {"lmdb", [](const std::filesystem::path& dir) { return "lmdb:" + (dir / "store").string() + "?map_size=1073741824"; },
         nullptr, {}},
    };
}

inline std::string backend_name(const ::testing::TestParamInfo<BackendCase>& info) { return info.param.name; }
inline void PrintTo(const BackendCase& b, std::ostream* os) { *os << b.name; }

// Runs FIXTURE's TEST_Ps on every backend.
#define PWSYNC_STORE_SUITE(FIXTURE) \
    INSTANTIATE_TEST_SUITE_P(Backends, FIXTURE, ::testing::ValuesIn(backends()), backend_name)

// A fresh store on the first backend, for tests of other parts that need one.
class StoreFixture : public ::testing::Test {
protected:
    virtual const BackendCase& backend() const {
        static const BackendCase first = backends().front();
        return first;
    }

    void SetUp() override {
        auto s = Store::init(options());
        ASSERT_TRUE(s) << s.error().message;
        key_file_ = s->info().key_file;
        store_.emplace(std::move(*s));
    }
    Options options() const {
        Options o;
        o.uri = backend().uri(dir_.path());
        if (backend().key_file) o.key_file = backend().key_file(dir_.path());
        o.clock = &clock_;
        return o;
    }
    // Files of the test's folder and of the backend holding `needle`.
    std::vector<std::string> stored_files_containing(const std::string& needle) const {
        auto found = test::files_containing(dir_.path(), needle);
        for (const auto& d : backend().data_dirs) {
            auto more = test::files_containing(d, needle);
            found.insert(found.end(), more.begin(), more.end());
        }
        return found;
    }
    Store& store() { return *store_; }
    WriteTxn w() {
        auto t = store_->write("tester");
        EXPECT_TRUE(t) << t.error().message;
        return std::move(*t);
    }
    ReadTxn r() {
        auto t = store_->read();
        EXPECT_TRUE(t) << t.error().message;
        return std::move(*t);
    }
    // Apps, an adapter holding them, and helpers to add mappings.
    void make_app(const std::string& name) {
        auto t = w();
        App a;
        a.name = name;
        ASSERT_OK(t.create_app(a));
        ASSERT_OK(t.commit());
    }
    void make_adapter(const std::string& name, bool allow_conflicts = false) {
        auto t = w();
        Adapter a;
        a.name = name;
        a.type = "ldap";
        a.flags.allow_mapping_conflicts = allow_conflicts;
        ASSERT_OK(t.create_adapter(a));
        ASSERT_OK(t.commit());
    }
    Status map(const std::string& app, const std::string& windows, const std::string& external) {
        auto t = w();
        Mapping m;
        m.app = app;
        m.windows = windows;
        m.external = external;
        PWSYNC_TRY(t.create_mapping(m));
        return t.commit();
    }
    // A job for LINUX/TEST\alice through adapter ldap1, captured from dc1.
    static Job alice_job(const std::string& external = "alice") {
        Job j;
        j.adapter = "ldap1";
        j.app = "LINUX";
        j.windows = "TEST\\alice";
        j.external = external;
        j.origin = "dc1";
        return j;
    }

    test::TempDir dir_;
    ManualClock clock_{from_unix_micros(1'790'000'000'000'000)};
    std::optional<Store> store_;
    std::string key_file_;  // where the backend put the master key
};

// The store suite: its TEST_Ps run on every backend.
class StoreTest : public StoreFixture, public ::testing::WithParamInterface<BackendCase> {
protected:
    const BackendCase& backend() const override { return GetParam(); }
};

}  // namespace pwsync::store::testing
