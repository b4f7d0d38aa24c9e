// PostgreSQL only (run by the store_postgresql integration test; in a unit
// run without PostgreSQL there is no instance of these tests): conflicts
// with another writer are retried, a connection killed mid-transaction and
// a database that refuses writes are errors, never a half or false write.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <latch>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "store_fixture.h"

namespace pwsync::store::testing {
namespace {

class PgStoreTest : public StoreTest {
protected:
    // A connection of our own to the test's store (its schema first).
    pq::Conn raw() {
        auto c = pq::connect(store().info().dir, {});
        EXPECT_TRUE(c) << c.error().message;
        return c ? std::move(*c) : pq::Conn{};
    }
    // Another store on the test's database, its sessions named `prefix` and
    // this process (to be told apart in pg_stat_activity).
    std::pair<std::string, std::optional<Store>> open_named(const std::string& prefix) {
        Options o = options();
        std::string name = prefix + std::to_string(::getpid());
        o.uri = store().info().dir + "&application_name=" + name;
        auto s = Store::open(o);
        EXPECT_TRUE(s) << s.error().message;
        if (!s) return {std::move(name), std::nullopt};
        return {std::move(name), std::move(*s)};
    }
    static App app(const std::string& name) {
        App a;
        a.name = name;
        return a;
    }
};

// Another client (an administrator's SQL, which does not take the store's
// writers' turn) commits a serializable transaction that conflicts with the
// store's: PostgreSQL fails the store's with SQLSTATE 40001, the store
// answers busy, Store::transact runs the unit again, and it is applied once.
TEST_P(PgStoreTest, ASerializationFailureIsRetriedAndAppliedOnce) {
    auto other = raw();
    ASSERT_TRUE(other);
    int runs = 0;
    auto st = store().transact("tester", [&](WriteTxn& w) -> Status {
        if (++runs == 1) {
            // Reads what the store is about to write, writes what the store
            // has read (the key check, read by every write transaction).
            PWSYNC_TRY(pq::run(other.get(), "BEGIN ISOLATION LEVEL SERIALIZABLE", "begin"));
            PWSYNC_TRY(pq::run(other.get(), "SELECT count(*) FROM pwsync_apps", "read"));
            PWSYNC_ASSIGN(auto u, pq::exec(other.get(), "UPDATE pwsync_settings SET v = v WHERE k = $1",
                                           {"keycheck"}, "update"));
            PWSYNC_TRY(pq::run(other.get(), "COMMIT", "commit"));
        }
        return w.create_app(app("RETRIED"));
    });
    ASSERT_TRUE(st) << st.error().message;
    EXPECT_EQ(runs, 2);
    EXPECT_TRUE(r().app("retried"));
    auto audit = r().audit();
    ASSERT_OK(audit);
    EXPECT_EQ(std::count_if(audit->begin(), audit->end(), [](const AuditRecord& a) { return a.action == "app.create"; }), 1);
}

// The server ends the store's session in the middle of a unit of work: a
// clear, retryable error (unavailable), nothing of the unit stays, and the
// next unit of work runs on a new connection.
TEST_P(PgStoreTest, AConnectionKilledMidTransactionLeavesNothingAndIsRetryable) {
    int runs = 0;
    auto st = store().transact("tester", [&](WriteTxn& w) -> Status {
        ++runs;
        PWSYNC_TRY(w.create_app(app("BEFORE-KILL")));
        pg_admin({"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  "WHERE usename = 'pwsync' AND state = 'idle in transaction'"});
        return w.create_app(app("AFTER-KILL"));
    });
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, Errc::unavailable) << st.error().message;
    EXPECT_NE(st.error().message.find("nothing of the transaction was committed"), std::string::npos)
        << st.error().message;
    EXPECT_EQ(runs, 1);
    EXPECT_ERRC(r().app("BEFORE-KILL"), Errc::not_found);
    EXPECT_ERRC(r().app("AFTER-KILL"), Errc::not_found);
    ASSERT_OK(store().transact("tester", [&](WriteTxn& w) { return w.create_app(app("NEXT")); }));
    EXPECT_TRUE(r().app("NEXT"));
}

// A database that refuses writes (as a standby does: read-only
// transactions) is an error for the writer, never a success.
TEST_P(PgStoreTest, ADatabaseThatRefusesWritesIsAnError) {
    struct ReadOnly {
        ReadOnly() { pg_admin({"ALTER ROLE pwsync IN DATABASE pwsync SET default_transaction_read_only = on"}); }
        ~ReadOnly() { pg_admin({"ALTER ROLE pwsync IN DATABASE pwsync RESET default_transaction_read_only"}); }
    };
    {
        ReadOnly ro;
        auto s = Store::open(options());  // new sessions get the setting
        ASSERT_OK(s);
        auto st = s->transact("tester", [&](WriteTxn& w) { return w.create_app(app("REFUSED")); });
        ASSERT_FALSE(st);
        EXPECT_EQ(st.error().code, Errc::refused) << st.error().message;
        EXPECT_NE(st.error().message.find("read-only"), std::string::npos) << st.error().message;
    }
    EXPECT_ERRC(r().app("REFUSED"), Errc::not_found);
}

// TLS verifies the server's name unless the URI says otherwise: the test
// server's certificate names 127.0.0.1 only, so "localhost" is refused
// before any password is sent (libpq's own default would not check).
TEST_P(PgStoreTest, TlsVerifiesTheServerNameByDefault) {
    std::string uri = std::getenv("PWSYNC_TEST_PG_URI");
    const std::string verify = "sslmode=verify-full&";
    ASSERT_NE(uri.find(verify), std::string::npos) << uri;
    uri.erase(uri.find(verify), verify.size());
    uri.replace(uri.find("@127.0.0.1:"), std::string("@127.0.0.1:").size(), "@localhost:");
    Options o = options();
    o.uri = uri;
    auto s = Store::open(o);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, Errc::unavailable) << s.error().message;
    EXPECT_NE(s.error().message.find("does not match host name"), std::string::npos) << s.error().message;
}

// The backup command explains that backups are the database's.
TEST_P(PgStoreTest, BackupIsTheDatabases) {
    auto st = store().backup(dir_.path() + "/backup");
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().message.find("pg_dump"), std::string::npos) << st.error().message;
}

// What a restore of the database needs is checked: the key check row gone
// (as in a partial restore) is a clear error.
TEST_P(PgStoreTest, BackupChecksWhatARestoreNeeds) {
    EXPECT_NE(store().backed_up_by().find("pg_dump"), std::string::npos);
    auto info = store().check_restorable();
    ASSERT_TRUE(info) << info.error().message;
    EXPECT_EQ(info->key_id, store().info().key_id);
    auto c = raw();
    ASSERT_TRUE(pq::run(c.get(), "DELETE FROM pwsync_settings WHERE k = 'keycheck'::bytea", "delete"));
    auto broken = store().check_restorable();
    ASSERT_FALSE(broken);
    EXPECT_NE(broken.error().message.find("no key check value"), std::string::npos) << broken.error().message;
}

// A writer that cannot get the writers' turn within lock_timeout gets a
// retryable error instead of waiting for ever; the URI's own setting wins
// over pwsync's default (30 s).
TEST_P(PgStoreTest, AStuckLockIsARetryableErrorNotAHang) {
    auto c = raw();
    ASSERT_TRUE(pq::run(c.get(), "SELECT pg_advisory_lock(1886876537, hashtext(current_schema()))", "lock"));
    Options o = options();
    o.uri = store().info().dir + "%20-clock_timeout%3D1s";
    auto s = Store::open(o);
    ASSERT_TRUE(s) << s.error().message;
    const auto t0 = std::chrono::steady_clock::now();
    auto w = s->write("tester");
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().code, Errc::busy) << w.error().message;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
}

// The server notices a gateway that vanished without closing its session
// (a network cut while it held the writers' turn) within seconds, not when
// its kernel gives up (two hours idle): each session of the store asks for
// keepalive probes every few seconds, seen on the server's end of the
// connection (ss). Another client's session keeps the system's timing.
TEST_P(PgStoreTest, TheServerProbesTheStoresSessionsWithinSeconds) {
    auto [name, s] = open_named("pwsync_probe_");
    ASSERT_TRUE(s);
    auto held = s->read();  // a session of the store, open while we look
    ASSERT_TRUE(held) << held.error().message;
    auto c = raw();
    const auto one = [&](const char* sql, std::vector<std::string> params) -> std::string {
        std::vector<std::string_view> views(params.begin(), params.end());
        auto r = pq::exec(c.get(), sql, views, "ask");
        EXPECT_TRUE(r) << r.error().message;
        return r && PQntuples(r->get()) == 1 ? std::string(pq::value(r->get(), 0, 0)) : std::string();
    };
    const std::string server_port = one("SELECT inet_server_port()::text", {});
    const std::string store_port =
        one("SELECT client_port::text FROM pg_stat_activity WHERE application_name = $1 LIMIT 1", {name});
    const std::string raw_port = one("SELECT client_port::text FROM pg_stat_activity WHERE pid = pg_backend_pid()", {});
    ASSERT_FALSE(server_port.empty() || store_port.empty() || raw_port.empty()) << "not TCP sessions";
    // The keepalive timer of the server's socket to that client port, in
    // seconds (once the last answer is acknowledged: until then the timer
    // shown is the retransmission's).
    const auto probe_in = [&](const std::string& port) -> double {
        const std::string cmd = "ss -tnoH state established '( sport = :" + server_port + " and dport = :" + port + " )'";
        std::string out;
        std::size_t at = std::string::npos;
        for (int attempt = 0; attempt < 50 && at == std::string::npos; ++attempt) {
            if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
            out.clear();
            if (FILE* f = ::popen(cmd.c_str(), "r")) {
                char buf[512];
                while (std::fgets(buf, sizeof buf, f) != nullptr) out += buf;
                ::pclose(f);
            }
            at = out.find("timer:(keepalive,");
        }
        if (at == std::string::npos) {
            ADD_FAILURE() << "no keepalive timer in: " << out;
            return -1;
        }
        std::size_t used = 0;
        const std::string rest = out.substr(at + 17);
        const double n = std::stod(rest, &used);
        const std::string unit = rest.substr(used, rest.find(',') - used);
        return unit == "ms" ? n / 1000 : unit == "sec" ? n : unit == "min" ? n * 60 : n * 3600;
    };
    const double store_probe = probe_in(store_port), raw_probe = probe_in(raw_port);
    EXPECT_GE(store_probe, 0);
    EXPECT_LE(store_probe, 5.5);
    EXPECT_GT(raw_probe, 60);  // the system's default (7,200 s): the setting is the store's doing
}

// A burst's connections go back to the pool (up to 64), so the next burst
// opens none: closing all but 8 after each use cost a connection, a TLS
// handshake and a SCRAM exchange for every other change at 32 writers.
TEST_P(PgStoreTest, ABurstsConnectionsServeTheNextBurst) {
    auto [name, s] = open_named("pwsync_burst_");
    ASSERT_TRUE(s);
    constexpr int kBurst = 16;
    const auto burst = [&] {
        std::latch all(kBurst);
        std::atomic<int> failed{0};
        std::vector<std::thread> ts;
        for (int i = 0; i < kBurst; ++i)
            ts.emplace_back([&] {
                auto t = s->read();  // each holds a connection until all have one
                if (!t) ++failed;
                all.arrive_and_wait();
            });
        for (auto& t : ts) t.join();
        return failed.load();
    };
    auto c = raw();
    const auto count = [&](const std::string& since) -> std::string {
        auto n = pq::exec(c.get(),
                          "SELECT count(*)::text FROM pg_stat_activity WHERE application_name = $1 "
                          "AND backend_start > $2::text::timestamptz",
                          {name, since}, "count");
        EXPECT_TRUE(n) << n.error().message;
        return n ? std::string(pq::value(n->get(), 0, 0)) : std::string("?");
    };
    ASSERT_EQ(burst(), 0);
    EXPECT_EQ(count("-infinity"), std::to_string(kBurst)) << "the first burst's connections are not all kept";
    auto now = pq::exec(c.get(), "SELECT clock_timestamp()::text", {}, "now");
    ASSERT_TRUE(now) << now.error().message;
    const std::string between(pq::value(now->get(), 0, 0));
    ASSERT_EQ(burst(), 0);
    EXPECT_EQ(count(between), "0") << "the second burst opened connections of its own";
}

// A batch goes in one pipeline, each statement answered as it would be
// alone: inside a transaction a failed row fails the rest and the COMMIT
// rolls back; the connection is usable again after. Prepared statements
// are prepared in the same round trip and used again without it.
TEST_P(PgStoreTest, APipelinedBatchAnswersEachStatementAndLeavesTheConnectionUsable) {
    auto c = raw();
    const char* ins = "INSERT INTO pwsync_cursors (k, v) VALUES ($1, $2)";
    std::vector<pq::Statement> bad{{"BEGIN", {}, "begin"},
                                   {ins, {"dup", "1"}, "row 1"},
                                   {ins, {"dup", "2"}, "row 2"},
                                   {ins, {"other", "3"}, "row 3"},
                                   {"COMMIT", {}, "commit"}};
    auto a = pq::exec_batch(c.get(), bad);
    ASSERT_EQ(a.size(), bad.size());
    EXPECT_TRUE(a[0] && a[1]);
    ASSERT_FALSE(a[2]);
    EXPECT_EQ(a[2].error().code, Errc::storage);
    EXPECT_NE(a[2].error().message.find("row 2: ERROR:  duplicate key"), std::string::npos) << a[2].error().message;
    EXPECT_FALSE(a[3]) << "a statement after a failed one in a transaction fails";
    ASSERT_TRUE(a[4]) << a[4].error().message;
    EXPECT_EQ(std::string_view(PQcmdStatus(a[4]->get())), "ROLLBACK");
    EXPECT_FALSE(pq::in_pipeline(c.get()));
    auto n = pq::exec(c.get(), "SELECT count(*)::text FROM pwsync_cursors", {}, "count");
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_EQ(pq::value(n->get(), 0, 0), "0");

    std::vector<pq::Statement> good{{ins, {"a", "1"}, "row a", "t_ins", true},
                                    {ins, {"b", "2"}, "row b", "t_ins", false},
                                    {"SELECT count(*)::text FROM pwsync_cursors", {}, "count", "t_count", true}};
    std::vector<bool> prepared;
    auto g = pq::exec_batch(c.get(), good, &prepared);
    ASSERT_EQ(g.size(), good.size());
    for (auto& r : g) ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(pq::value(g[2]->get(), 0, 0), "2");
    EXPECT_EQ(prepared, (std::vector<bool>{true, false, true}));
    // Prepared on the connection: used again without preparing.
    std::vector<pq::Statement> again{{"SELECT count(*)::text FROM pwsync_cursors", {}, "count", "t_count", false}};
    auto r = pq::exec_batch(c.get(), again);
    ASSERT_TRUE(r[0]) << r[0].error().message;
    EXPECT_EQ(pq::value(r[0]->get(), 0, 0), "2");
}

// Several gateways (docs/HA.md). The lease: one holder at a time; renewed
// in the same epoch; taken by another only once expired, in a new epoch.
// Job ids are drawn a block at a time (one round trip per transaction, not
// per job). Two gateways on one database writing in turn still get ids in
// the order their transactions commit: a block is the transaction's, and
// the writers' turn is held while it is drawn.
TEST_P(PgStoreTest, IdsDrawnInBlocksFollowTheOrderOfCommitsAcrossGateways) {
    auto [name, other] = open_named("pwsync_ids_");
    ASSERT_TRUE(other);
    const auto enqueue = [](Store& s, int jobs) {
        std::vector<std::uint64_t> ids;
        auto st = s.transact("tester", [&](WriteTxn& w) -> Status {
            ids.clear();
            for (int i = 0; i < jobs; ++i) {
                PWSYNC_ASSIGN(auto id, w.enqueue_job(alice_job(), Secret("Block-Password-1"), nullptr));
                ids.push_back(id);
            }
            return {};
        });
        EXPECT_TRUE(st) << st.error().message;
        return ids;
    };
    std::vector<std::uint64_t> all;
    for (auto* s : {&store(), &*other, &store(), &*other, &store()})
        for (auto id : enqueue(*s, 3)) all.push_back(id);
    ASSERT_EQ(all.size(), 15u);
    EXPECT_TRUE(std::is_sorted(all.begin(), all.end()) && std::adjacent_find(all.begin(), all.end()) == all.end())
        << ::testing::PrintToString(all);
    auto listed = r().jobs();
    ASSERT_TRUE(listed);
    ASSERT_EQ(listed->size(), 15u);
    for (std::size_t i = 0; i < all.size(); ++i) EXPECT_EQ((*listed)[i].id, all[i]);
}

TEST_P(PgStoreTest, OneGatewayHoldsTheLeaseAndAnotherTakesItOnlyOnceItExpires) {
    using std::chrono::milliseconds;
    const GatewayIdentity a{"inst-a", "gw-a", "host1", 101}, b{"inst-b", "gw-b", "host2", 202};
    ASSERT_TRUE(store().shared());
    auto la = store().heartbeat(a, milliseconds(600), true);
    ASSERT_TRUE(la) << la.error().message;
    EXPECT_TRUE(la->held);
    const auto epoch = la->epoch;
    auto lb = store().heartbeat(b, milliseconds(600), true);
    ASSERT_TRUE(lb) << lb.error().message;
    EXPECT_FALSE(lb->held);
    EXPECT_EQ(lb->holder, "gw-a");
    auto again = store().heartbeat(a, milliseconds(600), true);
    ASSERT_TRUE(again);
    EXPECT_TRUE(again->held);
    EXPECT_EQ(again->epoch, epoch);
    std::this_thread::sleep_for(milliseconds(700));
    EXPECT_FALSE(la->settle);  // the first term follows nobody
    lb = store().heartbeat(b, milliseconds(600), true);
    ASSERT_TRUE(lb);
    EXPECT_TRUE(lb->held);
    EXPECT_GT(lb->epoch, epoch);
    EXPECT_TRUE(lb->settle);  // gw-a's term ran out: its deliveries may be on the wire
    la = store().heartbeat(a, milliseconds(600), true);
    ASSERT_TRUE(la);
    EXPECT_FALSE(la->held);
    EXPECT_EQ(la->holder, "gw-b");
}

// Fencing: a write made on the strength of a lease that another gateway
// has taken since is refused and leaves nothing; the holder's write passes.
TEST_P(PgStoreTest, AWriteFencedByALostLeaseIsRefusedAndWritesNothing) {
    using std::chrono::milliseconds;
    const GatewayIdentity a{"inst-a", "gw-a", "host1", 101}, b{"inst-b", "gw-b", "host2", 202};
    auto la = store().heartbeat(a, milliseconds(300), true);
    ASSERT_TRUE(la && la->held);
    std::this_thread::sleep_for(milliseconds(400));
    auto lb = store().heartbeat(b, milliseconds(60000), true);
    ASSERT_TRUE(lb && lb->held);
    auto st = store().transact("gw-a", [&](WriteTxn& w) -> Status {
        PWSYNC_TRY(w.require_lease(a.instance, la->epoch));
        return w.create_app(app("FENCED-OUT"));
    });
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, Errc::refused) << st.error().message;
    EXPECT_FALSE(r().app("fenced-out"));
    st = store().transact("gw-b", [&](WriteTxn& w) -> Status {
        PWSYNC_TRY(w.require_lease(b.instance, lb->epoch));
        return w.create_app(app("FENCED-IN"));
    });
    ASSERT_TRUE(st) << st.error().message;
    EXPECT_TRUE(r().app("fenced-in"));
}

// A clean stop gives the lease up (another takes it at once); a gateway
// whose previous instance is known dead takes that one's lease at once.
TEST_P(PgStoreTest, AReleasedLeaseOrADeadPredecessorsIsTakenAtOnce) {
    using std::chrono::milliseconds;
    const GatewayIdentity a{"inst-a", "gw-a", "host1", 101}, b{"inst-b", "gw-b", "host2", 202},
        a2{"inst-a2", "gw-a", "host1", 303};
    auto la = store().heartbeat(a, milliseconds(60000), true);
    ASSERT_TRUE(la && la->held);
    ASSERT_TRUE(store().release_lease(a, la->epoch));
    auto lb = store().heartbeat(b, milliseconds(60000), true);
    ASSERT_TRUE(lb && lb->held);
    EXPECT_GT(lb->epoch, la->epoch);
    EXPECT_FALSE(lb->settle);  // gw-a stopped its deliveries before giving the lease up
    // gw-b's instance is not gw-a's predecessor: naming it takes nothing...
    auto l2 = store().heartbeat(a2, milliseconds(60000), true, "inst-x");
    ASSERT_TRUE(l2);
    EXPECT_FALSE(l2->held);
    // ...naming the holder does (the caller vouches that it is gone).
    l2 = store().heartbeat(a2, milliseconds(60000), true, "inst-b");
    ASSERT_TRUE(l2);
    EXPECT_TRUE(l2->held);
    EXPECT_GT(l2->epoch, lb->epoch);
}

// What `pwsync status` lists: each gateway once by name (its newest
// instance), the active one marked, times from the database.
TEST_P(PgStoreTest, GatewaysAreListedWithTheActiveOne) {
    using std::chrono::milliseconds;
    const GatewayIdentity a{"inst-a", "gw-a", "host1", 101}, b{"inst-b", "gw-b", "host2", 202},
        a2{"inst-a2", "gw-a", "host1", 303};
    ASSERT_TRUE(store().heartbeat(a, milliseconds(60000), true));
    ASSERT_TRUE(store().heartbeat(b, milliseconds(60000), true));
    ASSERT_TRUE(store().heartbeat(a2, milliseconds(60000), false));  // gw-a restarted, not asking
    auto g = store().gateways(std::chrono::seconds(60));
    ASSERT_TRUE(g) << g.error().message;
    ASSERT_EQ(g->size(), 2u);
    std::map<std::string, GatewayStatus> by;
    for (const auto& x : *g) by[x.name] = x;
    EXPECT_EQ(by["gw-a"].instance, "inst-a2");
    EXPECT_EQ(by["gw-a"].pid, 303u);
    // The lease is still inst-a's (not yet expired), which is no listed instance.
    EXPECT_FALSE(by["gw-a"].active);
    EXPECT_FALSE(by["gw-b"].active);
    EXPECT_GT(by["gw-b"].last_contact, 1'700'000'000);
    EXPECT_LT(by["gw-b"].contact_age_ms, 60000);
}

// An account's lock holds across connections (gateways): a second taker of
// the same key waits until the first lets go; another key does not wait.
TEST_P(PgStoreTest, AnAccountLockMakesOtherGatewaysWait) {
    using namespace std::chrono_literals;
    auto first = store().lock_keys({"{guid-1}", "alice"});
    ASSERT_TRUE(first) << first.error().message;
    auto other = store().lock_keys({"bob"});
    ASSERT_TRUE(other) << other.error().message;
    std::atomic<bool> got{false};
    std::thread t([&] {
        auto second = store().lock_keys({"alice"});
        EXPECT_TRUE(second) << second.error().message;
        got = true;
    });
    std::this_thread::sleep_for(300ms);
    EXPECT_FALSE(got.load());
    { auto gone = std::move(*first); }
    for (int i = 0; i < 100 && !got; ++i) std::this_thread::sleep_for(20ms);
    EXPECT_TRUE(got.load());
    t.join();
}

std::vector<BackendCase> pg_only() {
    std::vector<BackendCase> out;
    for (auto& b : backends())
        if (b.name == "postgresql") out.push_back(b);
    return out;
}
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(PgStoreTest);
INSTANTIATE_TEST_SUITE_P(Pg, PgStoreTest, ::testing::ValuesIn(pg_only()), backend_name);

}  // namespace
}  // namespace pwsync::store::testing
