// Names and keys that would break SQL built from text (quotes, backslashes,
// LIKE's % and _), non-ASCII, control characters and NUL bytes round-trip
// on every backend, and a prefix scan finds exactly its prefix.
#include <algorithm>

#include "backend.h"
#include "store_fixture.h"

namespace pwsync::store::testing {
namespace {

const std::vector<std::string> kTricky = {
    "o'brien",     "say \"hi\"",  "back\\slash", "100%",       "a_b",        "a%",
    "ab",          "a_",          "Jos\xC3\xA9", "\xE2\x82\xAC-euro", "\xF0\x9F\x94\x91 key",
    "'; DROP TABLE pwsync_mappings; --",
};

TEST_P(StoreTest, TrickyNamesRoundTrip) {
    make_app("APP'S \"100%\"_\\");
    for (const auto& n : kTricky) {
        auto st = map("APP'S \"100%\"_\\", "TEST\\" + n, n);
        ASSERT_TRUE(st) << n << ": " << st.error().message;
    }
    for (const auto& n : kTricky) {
        auto m = r().mapping({"app's \"100%\"_\\", "test\\" + n});
        ASSERT_OK(m);
        EXPECT_EQ(m->external, n);
        EXPECT_EQ(m->app, "APP'S \"100%\"_\\");
        auto by_ext = r().mappings_by_external("APP'S \"100%\"_\\", n);
        ASSERT_OK(by_ext);
        ASSERT_EQ(by_ext->size(), 1u) << n;  // "a%" must not find "ab", nor "a_" find "ab"
        EXPECT_EQ((*by_ext)[0].windows, "TEST\\" + n);
    }
    MappingFilter f;
    f.app = "APP'S \"100%\"_\\";
    auto all = r().mappings(f);
    ASSERT_OK(all);
    EXPECT_EQ(all->size(), kTricky.size());
    EXPECT_TRUE(store().verify()->problems.empty());
}

// Below the store's name rules: raw keys and values with NUL, control
// characters and 0xff bytes, read back, scanned by prefix, in byte order.
TEST_P(StoreTest, RawKeysWithAnyByteRoundTripInByteOrder) {
    const std::string uri = options().uri;
    store_.reset();  // LMDB: one open per process
    auto where = resolve_backend(uri);
    ASSERT_OK(where);
    auto backend = where->type->open(where->location);
    ASSERT_OK(backend);
    const Table t = tables().cursors;
    const std::vector<std::string> keys = {
        std::string("p\0a", 3), std::string("p\0b", 3), "p\x01\x02", "p\x7f", "p\xff", std::string("p\xff\xff\0", 4),
        "p\\'%_\"", "q", "",
    };
    {
        auto txn = (*backend)->begin(true);
        ASSERT_OK(txn);
        for (const auto& k : keys) {
            if (k.empty()) continue;  // an empty key is no key
            ASSERT_OK((*txn)->put(t, k, "v" + k + std::string("\0\n\t\xff", 4)));
        }
        ASSERT_OK((*txn)->put(t, "empty-value", ""));
        ASSERT_OK((*txn)->commit());
    }
    auto txn = (*backend)->begin(false);
    ASSERT_OK(txn);
    for (const auto& k : keys) {
        if (k.empty()) continue;
        auto v = (*txn)->get(t, k);
        ASSERT_OK(v);
        ASSERT_TRUE(*v) << "missing key of " << k.size() << " bytes";
        EXPECT_EQ(**v, "v" + k + std::string("\0\n\t\xff", 4));
    }
    auto empty = (*txn)->get(t, "empty-value");
    ASSERT_OK(empty);
    ASSERT_TRUE(*empty);
    EXPECT_EQ(**empty, "");
    auto scan = [&](std::string_view prefix, std::string_view from = {}) {
        std::vector<std::string> out;
        auto st = (*txn)->scan(t, prefix, [&](std::string_view k, std::string_view) -> Result<bool> {
            out.emplace_back(k);
            return true;
        }, from);
        EXPECT_TRUE(st) << st.error().message;
        return out;
    };
    std::vector<std::string> p_keys;
    for (const auto& k : keys)
        if (k.starts_with("p")) p_keys.push_back(k);
    std::sort(p_keys.begin(), p_keys.end());  // bytewise: std::string compares as unsigned char
    EXPECT_EQ(scan("p"), p_keys);
    EXPECT_EQ(scan(std::string("p\0", 2)), (std::vector<std::string>{std::string("p\0a", 3), std::string("p\0b", 3)}));
    EXPECT_EQ(scan("p\xff"), (std::vector<std::string>{"p\xff", std::string("p\xff\xff\0", 4)}));
    EXPECT_EQ(scan("p\\'%"), (std::vector<std::string>{"p\\'%_\""}));
    EXPECT_EQ(scan("p", "p\x7f"), (std::vector<std::string>{"p\x7f", "p\xff", std::string("p\xff\xff\0", 4)}));
    auto last = (*txn)->last_key(t);
    ASSERT_OK(last);
    EXPECT_EQ(**last, "q");
    auto n = (*txn)->entries(t);
    ASSERT_OK(n);
    EXPECT_EQ(*n, keys.size());  // the empty key was skipped, "empty-value" added
}

// More keys than a backend may fetch at once (PostgreSQL: pages of 512):
// every key once, in order, from the start and from the middle.
TEST_P(StoreTest, LongScansSeeEveryKeyOnceInOrder) {
    const std::string uri = options().uri;
    store_.reset();
    auto where = resolve_backend(uri);
    ASSERT_OK(where);
    auto backend = where->type->open(where->location);
    ASSERT_OK(backend);
    const Table t = tables().cursors;
    constexpr int kKeys = 1300;
    auto key = [](int i) { return "k" + std::string(5 - std::to_string(i).size(), '0') + std::to_string(i); };
    {
        auto txn = (*backend)->begin(true);
        ASSERT_OK(txn);
        for (int i = 0; i < kKeys; ++i) ASSERT_OK((*txn)->put(t, key(i), std::to_string(i)));
        ASSERT_OK((*txn)->put(t, "l", "after"));
        ASSERT_OK((*txn)->commit());
    }
    auto txn = (*backend)->begin(false);
    ASSERT_OK(txn);
    for (int from : {0, 700}) {
        int next = from;
        ASSERT_OK((*txn)->scan(t, "k", [&](std::string_view k, std::string_view v) -> Result<bool> {
            EXPECT_EQ(k, key(next));
            EXPECT_EQ(v, std::to_string(next));
            ++next;
            return true;
        }, from == 0 ? std::string() : key(from)));
        EXPECT_EQ(next, kKeys);
    }
}

}  // namespace
}  // namespace pwsync::store::testing
