// Units of work (Store::transact): concurrent writers share a commit, one
// that fails is rolled back alone, and one that lost a serialization
// conflict (Errc::busy) runs again.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "store_fixture.h"

namespace pwsync::store::testing {
namespace {

TEST_P(StoreTest, GroupedWritersAreAllDurableAndAudited) {
    make_app("LINUX");
    constexpr int kThreads = 16, kEach = 20;
    std::atomic<int> failures{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; ++t)
        ts.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                const std::string who = "u" + std::to_string(t) + "-" + std::to_string(i);
                auto st = store().transact("writer" + std::to_string(t), [&](WriteTxn& w) -> Status {
                    Mapping m;
                    m.app = "LINUX";
                    m.windows = who;
                    m.external = who;
                    return w.create_mapping(std::move(m));
                });
                if (!st) ++failures;
            }
        });
    for (auto& t : ts) t.join();
    EXPECT_EQ(failures.load(), 0);
    auto all = r().mappings();
    ASSERT_OK(all);
    EXPECT_EQ(all->size(), std::size_t{kThreads * kEach});
    // Each body's audit record carries its own actor, not the batch leader's.
    auto audit = r().audit(TimePoint{}, 0);
    ASSERT_OK(audit);
    int by_writer3 = 0;
    for (const auto& a : *audit)
        if (a.action == "mapping.create" && a.actor == "writer3") ++by_writer3;
    EXPECT_EQ(by_writer3, kEach);
}

TEST_P(StoreTest, AFailingGroupedBodyIsRolledBackAloneAndReported) {
    make_app("LINUX");
    std::atomic<bool> go{false};
    std::vector<Status> results(8);
    std::vector<std::thread> ts;
    for (int t = 0; t < 8; ++t)
        ts.emplace_back([&, t] {
            while (!go) std::this_thread::yield();
            results[static_cast<std::size_t>(t)] = store().transact("w", [&](WriteTxn& w) -> Status {
                Mapping m;
                m.app = "LINUX";
                m.windows = "g" + std::to_string(t);
                m.external = "g" + std::to_string(t);
                PWSYNC_TRY(w.create_mapping(std::move(m)));
                // Odd writers fail after writing: their mapping must not stay.
                if (t % 2 == 1) return fail(Errc::invalid_argument, "refused " + std::to_string(t));
                return {};
            });
        });
    go = true;
    for (auto& t : ts) t.join();
    for (int t = 0; t < 8; ++t) {
        const auto& st = results[static_cast<std::size_t>(t)];
        if (t % 2 == 1) {
            ASSERT_FALSE(st);
            EXPECT_EQ(st.error().message, "refused " + std::to_string(t));
        } else {
            EXPECT_TRUE(st) << st.error().message;
        }
        auto m = r().mapping({"LINUX", "g" + std::to_string(t)});
        EXPECT_EQ(static_cast<bool>(m), t % 2 == 0) << "g" << t;
    }
    // The store reopened from disk has the same: the commit was real.
    store_.reset();
    auto s = Store::open(options());
    ASSERT_OK(s);
    auto again = s->read();
    ASSERT_OK(again);
    auto all = again->mappings();
    ASSERT_OK(all);
    EXPECT_EQ(all->size(), 4u);
}

// A unit of work that loses a conflict is run again on a fresh transaction:
// the writes of the failed run are gone, those of the last run stay once.
TEST_P(StoreTest, AUnitOfWorkIsRunAgainAfterAConflict) {
    make_app("LINUX");
    int runs = 0;
    auto st = store().transact("retrier", [&](WriteTxn& w) -> Status {
        ++runs;
        Mapping m;
        m.app = "LINUX";
        m.windows = "retried";
        m.external = "retried";
        PWSYNC_TRY(w.create_mapping(std::move(m)));  // already_exists if run 1 had stayed
        if (runs < 3) return fail(Errc::busy, "lost a serialization conflict");
        return {};
    });
    ASSERT_TRUE(st) << st.error().message;
    EXPECT_EQ(runs, 3);
    EXPECT_TRUE(r().mapping({"LINUX", "retried"}));
    int created = 0;
    auto audit = r().audit();
    ASSERT_OK(audit);
    for (const auto& a : *audit)
        if (a.action == "mapping.create" && a.object.find("retried") != std::string::npos) ++created;
    EXPECT_EQ(created, 1);
}

// A conflict that does not go away is reported, after a bounded number of runs;
// any other error is reported at once.
TEST_P(StoreTest, ConflictsAreRetriedABoundedNumberOfTimes) {
    int runs = 0;
    auto st = store().transact("t", [&](WriteTxn&) -> Status {
        ++runs;
        return fail(Errc::busy, "always loses");
    });
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, Errc::busy);
    EXPECT_GT(runs, 1);
    EXPECT_LE(runs, 10);
    runs = 0;
    st = store().transact("t", [&](WriteTxn&) -> Status {
        ++runs;
        return fail(Errc::conflict, "an ESSO rule says no");
    });
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, Errc::conflict);
    EXPECT_EQ(runs, 1);
}

// A dry run (import esso --dry-run) sees its own writes and leaves nothing.
TEST_P(StoreTest, ARehearsalSeesItsWritesAndLeavesNothing) {
    make_app("LINUX");
    bool saw = false;
    auto st = store().rehearse("dry", [&](WriteTxn& w) -> Status {
        Mapping m;
        m.app = "LINUX";
        m.windows = "rehearsed";
        m.external = "rehearsed";
        PWSYNC_TRY(w.create_mapping(std::move(m)));
        saw = w.mapping({"LINUX", "rehearsed"}).has_value();
        return w.commit();  // against the contract: still rolled back
    });
    ASSERT_TRUE(st) << st.error().message;
    EXPECT_TRUE(saw);
    EXPECT_FALSE(r().mapping({"LINUX", "rehearsed"}));
    auto audit = r().audit();
    ASSERT_OK(audit);
    for (const auto& a : *audit) EXPECT_NE(a.actor, "dry");
    // Its error is the caller's.
    st = store().rehearse("dry", [](WriteTxn&) -> Status { return fail(Errc::conflict, "no"); });
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, Errc::conflict);
}

// Job and capture ids come from the backend's sequence: increasing, never
// reused, across units of work and a reopen.
TEST_P(StoreTest, IdsComeFromTheSequenceAndIncrease) {
    std::vector<std::uint64_t> ids;
    for (int i = 0; i < 3; ++i) {
        ASSERT_OK(store().transact("t", [&](WriteTxn& w) -> Status {
            PendingCapture c;
            c.account = "TEST\\u" + std::to_string(i);
            c.principal = "dc1";
            PWSYNC_ASSIGN(auto id, w.add_pending_capture(c, Secret("Pw-" + std::to_string(i))));
            ids.push_back(id);
            return {};
        }));
    }
    store_.reset();
    auto s = Store::open(options());
    ASSERT_OK(s);
    ASSERT_OK(s->transact("t", [&](WriteTxn& w) -> Status {
        PendingCapture c;
        c.account = "TEST\\later";
        c.principal = "dc1";
        PWSYNC_ASSIGN(auto id, w.add_pending_capture(c, Secret("Pw-later")));
        ids.push_back(id);
        return {};
    }));
    ASSERT_EQ(ids.size(), 4u);
    for (std::size_t i = 1; i < ids.size(); ++i) EXPECT_GT(ids[i], ids[i - 1]);
}



// A body that throws something that is not a std::exception: its writer gets
// an error, nothing it wrote stays, and the next writer is not left waiting
// for a leader that never finished (it waited for ever before the fix).
TEST_P(StoreTest, AGroupedBodyThatThrowsAnythingFinishesTheBatch) {
    make_app("LINUX");
    Status thrown;
    EXPECT_NO_THROW(thrown = store().transact("w", [&](WriteTxn& w) -> Status {
        Mapping m;
        m.app = "LINUX";
        m.windows = "thrower";
        m.external = "thrower";
        PWSYNC_TRY(w.create_mapping(std::move(m)));
        throw 42;
    }));
    ASSERT_FALSE(thrown);
    EXPECT_EQ(thrown.error().code, Errc::internal);
    EXPECT_FALSE(r().mapping({"LINUX", "thrower"}));

    // Run the next write on its own thread so a hang fails the test instead
    // of stopping the suite; on failure the thread is left behind on purpose.
    auto next = std::make_shared<std::packaged_task<Status()>>([&] {
        return store().transact("w", [](WriteTxn& w) -> Status {
            Mapping m;
            m.app = "LINUX";
            m.windows = "after";
            m.external = "after";
            return w.create_mapping(std::move(m));
        });
    });
    auto done = next->get_future();
    std::thread([next] { (*next)(); }).detach();
    if (done.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
        ADD_FAILURE() << "the next grouped writer is still waiting for the batch that threw";
        std::fflush(stdout);
        std::_Exit(1);  // its thread still uses the store: do not tear it down
    }
    auto st = done.get();
    EXPECT_TRUE(st) << st.error().message;
    EXPECT_TRUE(r().mapping({"LINUX", "after"}));
}

// The writer's turn is timed: running the units, committing them; only a
// commit that succeeded counts as a batch.
TEST_P(StoreTest, TheWritersTurnIsTimedAsRunningAndCommitting) {
    make_app("LINUX");
    const auto before = store().writer_time();
    ASSERT_OK(store().transact("w", [](WriteTxn& w) -> Status {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        Mapping m;
        m.app = "LINUX";
        m.windows = m.external = "slow";
        return w.create_mapping(std::move(m));
    }));
    const auto after = store().writer_time();
    EXPECT_EQ(after.batches - before.batches, 1u);
    EXPECT_EQ(after.units - before.units, 1u);
    EXPECT_GE(after.running - before.running, std::chrono::milliseconds(20));
    EXPECT_GT(after.committing - before.committing, std::chrono::nanoseconds(0));
    // A unit that fails alone commits nothing: no batch, no unit counted.
    EXPECT_FALSE(store().transact("w", [](WriteTxn&) -> Status { return fail(Errc::refused, "no"); }));
    const auto failed = store().writer_time();
    EXPECT_EQ(failed.batches, after.batches);
    EXPECT_EQ(failed.units, after.units);
    EXPECT_EQ(failed.committing, after.committing);
}

// A unit of work creating the mapping LINUX/`who`.
std::function<Status(WriteTxn&)> create(std::string who) {
    return [who = std::move(who)](WriteTxn& w) -> Status {
        Mapping m;
        m.app = "LINUX";
        m.windows = m.external = who;
        return w.create_mapping(std::move(m));
    };
}

// Runs `unit` as a leader that holds its batch open until `writers` more
// are queued, each on its own thread (`refused` fails its body instead).
// Returns what each of them got, the leader's first.
std::vector<Status> batch_with_late_writers(Store& store, const std::function<Status(WriteTxn&)>& unit,
                                            const std::vector<std::string>& writers,
                                            const std::string& refused = {}) {
    std::vector<Status> got(writers.size() + 1);
    std::atomic<bool> leading{false};
    std::thread leader([&] {
        got[0] = store.transact("w", [&](WriteTxn& w) -> Status {
            // Held on its first run only: when a late unit fails, the batch
            // runs again without it, this unit too.
            if (!leading.exchange(true)) {
                const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
                while (store.queued_writers() < writers.size() && std::chrono::steady_clock::now() < until)
                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
                EXPECT_EQ(store.queued_writers(), writers.size()) << "the late writers did not queue";
            }
            return unit(w);
        });
    });
    while (!leading) std::this_thread::yield();
    std::vector<std::thread> late;
    for (std::size_t i = 0; i < writers.size(); ++i)
        late.emplace_back([&, i] {
            got[i + 1] = writers[i] == refused
                             ? store.transact("w", [](WriteTxn&) -> Status { return fail(Errc::refused, "not this one"); })
                             : store.transact("w", create(writers[i]));
        });
    leader.join();
    for (auto& t : late) t.join();
    return got;
}

// Writers that queue while a batch runs join it: writers answered by one
// commit come back together and do not split into halves that take turns.
TEST_P(StoreTest, WritersThatQueueWhileABatchRunsJoinItsCommit) {
    make_app("LINUX");
    const auto before = store().writer_time();
    for (const auto& st : batch_with_late_writers(store(), create("first"), {"late-1", "late-2", "late-3"}))
        EXPECT_TRUE(st) << st.error().message;
    const auto after = store().writer_time();
    EXPECT_EQ(after.batches - before.batches, 1u);
    EXPECT_EQ(after.units - before.units, 4u);
    for (const char* who : {"first", "late-1", "late-2", "late-3"}) EXPECT_TRUE(r().mapping({"LINUX", who})) << who;
}

// A late writer whose unit fails is rolled back alone: the others run again
// without it and share one commit; it gets its own error.
TEST_P(StoreTest, ALateWriterThatFailsLeavesTheOthersCommitted) {
    make_app("LINUX");
    const auto before = store().writer_time();
    const auto got = batch_with_late_writers(store(), create("first"), {"late-1", "refused", "late-2"}, "refused");
    EXPECT_TRUE(got[0]);
    EXPECT_TRUE(got[1]);
    ASSERT_FALSE(got[2]);
    EXPECT_EQ(got[2].error().code, Errc::refused);
    EXPECT_EQ(got[2].error().message, "not this one");
    EXPECT_TRUE(got[3]);
    const auto after = store().writer_time();
    EXPECT_EQ(after.batches - before.batches, 1u);
    EXPECT_EQ(after.units - before.units, 3u);
    for (const char* who : {"first", "late-1", "late-2"}) EXPECT_TRUE(r().mapping({"LINUX", who})) << who;
    EXPECT_FALSE(r().mapping({"LINUX", "refused"}));
}

// After a commit of many units the next leader, alone, waits a little for
// the others to come back (gathering, its turn held), then commits alone;
// after a commit of fewer than eight it does not wait.
TEST_P(StoreTest, AfterALargeCommitALoneLeaderWaitsBrieflyForMore) {
    make_app("LINUX");
    const auto late = [](std::string tag, int n) {
        std::vector<std::string> who;
        for (int i = 1; i <= n; ++i) who.push_back(tag + std::to_string(i));
        return who;
    };
    const auto before = store().writer_time();
    for (const auto& st : batch_with_late_writers(store(), create("small"), late("small-", 3))) EXPECT_TRUE(st) << st.error().message;
    const auto small = store().writer_time();
    ASSERT_EQ(small.units - before.units, 4u);
    ASSERT_OK(store().transact("w", create("after-small")));
    const auto after_small = store().writer_time();
    EXPECT_EQ(after_small.gathering, small.gathering);  // 4 units: below the threshold

    for (const auto& st : batch_with_late_writers(store(), create("large"), late("large-", 8))) EXPECT_TRUE(st) << st.error().message;
    const auto large = store().writer_time();
    ASSERT_EQ(large.units - after_small.units, 9u);
    ASSERT_OK(store().transact("w", create("after-large")));
    const auto after_large = store().writer_time();
    EXPECT_EQ(after_large.batches - large.batches, 1u);
    EXPECT_GT(after_large.gathering, large.gathering);
    EXPECT_LT(after_large.gathering - large.gathering, std::chrono::seconds(1));  // bounded (1 ms; slack for a loaded machine)
    for (const char* who : {"after-small", "after-large"}) EXPECT_TRUE(r().mapping({"LINUX", who})) << who;
}

// A deferrable unit of work is committed without waiting for the disk
// (LMDB; PostgreSQL commits it durably); one durable writer in its batch
// makes the whole commit durable; what a deferrable commit wrote is read
// back, also by a new handle.
TEST_P(StoreTest, ADeferrableUnitIsFlushedOnlyWithADurableOne) {
    make_app("LINUX");
    const std::uint64_t deferred_durable = backend().name == "lmdb" ? 0 : 1;
    auto commits = store().commits(), durable = store().durable_commits();
    ASSERT_OK(store().transact("w", create("deferred"), Durability::deferrable));
    EXPECT_EQ(store().commits() - commits, 1u);
    EXPECT_EQ(store().durable_commits() - durable, deferred_durable);
    ASSERT_OK(store().transact("w", create("durable")));
    EXPECT_EQ(store().commits() - commits, 2u);
    EXPECT_EQ(store().durable_commits() - durable, 1u + deferred_durable);

    // A deferrable leader holds the writers' turn until a deferrable and a
    // durable writer wait behind it; those two join its batch, and the one
    // commit is durable.
    commits = store().commits(), durable = store().durable_commits();
    std::atomic<bool> leading{false}, release{false};
    std::thread leader([&] {
        EXPECT_TRUE(store().transact("w", [&](WriteTxn& w) -> Status {
            leading = true;
            while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
            return create("leader")(w);
        }, Durability::deferrable));
    });
    while (!leading) std::this_thread::yield();
    std::thread deferred([&] { EXPECT_TRUE(store().transact("w", create("mixed-deferred"), Durability::deferrable)); });
    std::thread flushed([&] { EXPECT_TRUE(store().transact("w", create("mixed-durable"))); });
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (store().queued_writers() < 2 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
    EXPECT_EQ(store().queued_writers(), 2u);
    release = true;
    for (auto* t : {&leader, &deferred, &flushed}) t->join();
    EXPECT_EQ(store().commits() - commits, 1u);
    EXPECT_EQ(store().durable_commits() - durable, 1u);
    for (const char* who : {"deferred", "durable", "leader", "mixed-deferred", "mixed-durable"})
        EXPECT_TRUE(r().mapping({"LINUX", who})) << who;

    auto again = Store::open(options());
    ASSERT_OK(again);
    auto rt = again->read();
    ASSERT_OK(rt);
    EXPECT_TRUE(rt->mapping({"LINUX", "deferred"}));
}

}  // namespace
}  // namespace pwsync::store::testing
