// The dispatcher against a real store and the exec adapter running a script.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <sstream>

#include "backoff.h"
#include "dispatcher.h"
#include "registry.h"
#include "helpers.h"

namespace pwsync::gateway {
namespace {

class DispatcherTest : public ::testing::Test {
protected:
    void SetUp() override {
        store::Options o;
        o.uri = "lmdb:" + (dir_ / "store") + "?map_size=1073741824";  // 1 GiB: tests stay small
        o.clock = &clock_;
        auto s = store::Store::init(o);
        ASSERT_TRUE(s) << s.error().message;
        store_.emplace(std::move(*s));
        // The external system: a script that records "external password" or
        // fails as told by a control file.
        test::write_file(dir_ / "target.sh",
                         "#!/bin/bash\nread -r pw\nread -r old || true\n"
                         "mode=$(cat " + (dir_ / "mode") + " 2>/dev/null)\n"
                         "case \"$mode\" in\n"
                         "  retry) echo 'server busy'; exit 75;;\n"
                         "  fail) echo \"refused $pw ${pw^^}\"; exit 3;;\n"
                         "  slow) sleep 5;;\n"
                         "esac\n"
                         "echo \"$1 $pw ${old:--}\" >> " + (dir_ / "log") + "\n",
                         0700);
        auto w = store_->write("test");
        ASSERT_TRUE(w);
        store::App app;
        app.name = "LINUX";
        ASSERT_TRUE(w->create_app(app));
        store::Adapter a;
        a.name = "ext";
        a.type = "exec";
        a.flags.enabled = true;
        a.flags.sync_to_adapter = true;
        a.retry_count = 2;
        a.retry_delay = 10;
        a.max_age = 3600;
        a.timeout = 2;
        a.concurrency = 4;
        a.properties["program"] = dir_ / "target.sh";
        ASSERT_TRUE(w->create_adapter(a));
        ASSERT_TRUE(w->add_app_to_adapter("ext", "LINUX"));
        for (int i = 0; i < 20; ++i) {
            store::Mapping m;
            m.app = "LINUX";
            m.windows = "TEST\\u" + std::to_string(i);
            m.external = "u" + std::to_string(i);
            ASSERT_TRUE(w->create_mapping(m));
        }
        ASSERT_TRUE(w->commit());
        opts_.factory = make_adapter;
        opts_.clock = &clock_;
        opts_.random = [] { return 0.5; };
        opts_.idle_poll = std::chrono::milliseconds(50);
        dispatcher_.emplace(*store_, opts_);
    }

    // The adapter "ext" becomes `deliver` (in this process, not the script).
    void use_adapter(std::function<DeliveryResult(const Delivery&)> deliver) {
        struct Fn final : Adapter {
            std::function<DeliveryResult(const Delivery&)> fn;
            DeliveryResult deliver(const Delivery& d) override { return fn(d); }
        };
        dispatcher_.reset();
        opts_.factory = [deliver](const AdapterContext&) -> Result<std::unique_ptr<Adapter>> {
            auto a = std::make_unique<Fn>();
            a->fn = deliver;
            return a;
        };
        dispatcher_.emplace(*store_, opts_);
    }

    std::uint64_t enqueue(int user, const std::string& pw, const Secret* old = nullptr) {
        auto w = store_->write("test");
        store::Job j;
        j.adapter = "ext";
        j.app = "LINUX";
        j.windows = "TEST\\u" + std::to_string(user);
        j.external = "u" + std::to_string(user);
        j.origin = "dc1";
        auto id = w->enqueue_job(j, Secret(pw), old);
        EXPECT_TRUE(id);
        EXPECT_TRUE(w->commit());
        return *id;
    }
    void set_mode(const std::string& m) { test::write_file(dir_ / "mode", m); }
    std::vector<std::string> log() {
        std::vector<std::string> lines;
        std::istringstream in(test::read_file(dir_ / "log"));
        for (std::string l; std::getline(in, l);) lines.push_back(l);
        return lines;
    }
    std::size_t run() {
        auto n = dispatcher_->run_once();
        EXPECT_TRUE(n) << n.error().message;
        return n.value_or(0);
    }
    store::ReadTxn r() { return std::move(*store_->read()); }

    test::TempDir dir_;
    ManualClock clock_{from_unix_micros(1'790'000'000'000'000)};
    std::optional<store::Store> store_;
    DispatcherOptions opts_;
    std::optional<Dispatcher> dispatcher_;
};

TEST(Backoff, DoublesWithJitterAndCap) {
    using std::chrono::milliseconds;
    EXPECT_EQ(retry_delay(1, 10, 0.0), milliseconds(5000));
    EXPECT_EQ(retry_delay(1, 10, 0.5), milliseconds(7500));
    EXPECT_EQ(retry_delay(2, 10, 0.0), milliseconds(10000));
    EXPECT_EQ(retry_delay(3, 10, 0.0), milliseconds(20000));
    EXPECT_LT(retry_delay(3, 10, 0.9999), milliseconds(40000));
    EXPECT_EQ(retry_delay(40, 10, 0.0), milliseconds(1800000));  // capped at an hour, then jittered
}

// Several gateways (docs/HA.md): a gateway without the right to act as the
// active one scans, sends and writes nothing; the job waits for the one that
// has it.
TEST_F(DispatcherTest, WithoutTheRightToDeliverNothingIsSentAndTheJobStays) {
    opts_.fence = [] { return std::optional<Fence>{}; };
    dispatcher_.emplace(*store_, opts_);
    const auto id = enqueue(1, "Fenced-Pass-1");
    EXPECT_EQ(run(), 0u);
    EXPECT_TRUE(log().empty());
    auto job = r().job(id);
    ASSERT_TRUE(job) << job.error().message;
    EXPECT_EQ(job->attempts, 0u);
}

// A delivery must be over when the right ends: the exec adapter's program
// is stopped at the right's end (the adapter's own timeout is 2 s, the
// program would take 5 s, the right ends in 1 s), and the job is retried.
TEST_F(DispatcherTest, ADeliveryIsStoppedWhenTheRightToDeliverEnds) {
    // The right ends 1 s from now, the adapter's timeout (2 s) later and the
    // script's sleep (5 s) later still: the error text says which cut it.
    // 1 s leaves room for a loaded machine's fsync before the delivery starts
    // (with 400 ms the test failed once in a parallel unit run).
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1000);
    opts_.fence = [until]() -> std::optional<Fence> { return Fence{"me", 1, until}; };
    dispatcher_.emplace(*store_, opts_);
    set_mode("slow");
    const auto id = enqueue(2, "Cut-Off-Pass-2");
    EXPECT_EQ(run(), 1u);
    EXPECT_LT(std::chrono::steady_clock::now() - until, std::chrono::seconds(3));  // not the script's 5 s
    EXPECT_TRUE(log().empty());
    auto job = r().job(id);
    ASSERT_TRUE(job) << job.error().message;
    EXPECT_EQ(job->attempts, 1u);
    EXPECT_NE(job->last_error.find("right to deliver ended"), std::string::npos) << job->last_error;
}

// What an adapter is given: the right's end as the delivery's deadline.
TEST_F(DispatcherTest, TheRightsEndIsTheDeliverysDeadline) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(9);
    opts_.fence = [until]() -> std::optional<Fence> { return Fence{"me", 1, until}; };
    std::chrono::steady_clock::time_point seen{};
    use_adapter([&](const Delivery& d) {
        seen = d.deadline;
        return DeliveryResult{Outcome::done, {}};
    });
    enqueue(3, "Deadline-Pass-3");
    EXPECT_EQ(run(), 1u);
    EXPECT_EQ(seen, until);
    const Delivery free_delivery{};
    EXPECT_EQ(time_allowed(free_delivery, std::chrono::seconds(30)), std::chrono::seconds(30));
}

TEST_F(DispatcherTest, OnlyTheNewestJobOfAnAccountIsSent) {
    enqueue(1, "Old-Pass-1");
    enqueue(1, "Mid-Pass-2");
    const Secret old("Prev-Pass-0");
    enqueue(1, "New-Pass-3", &old);
    enqueue(2, "Other-Pass-1");
    EXPECT_EQ(run(), 2u);
    auto lines = log();
    std::sort(lines.begin(), lines.end());
    // send-old-password is off: the old password is not passed on.
    EXPECT_EQ(lines, (std::vector<std::string>{"u1 New-Pass-3 -", "u2 Other-Pass-1 -"}));
    EXPECT_TRUE(r().jobs()->empty());
    EXPECT_EQ(r().mapping_credential({"LINUX", "TEST\\u1"})->view(), "New-Pass-3");
    int superseded = 0;
    auto audit = r().audit();
    for (const auto& a : *audit) superseded += a.action == "job.superseded";
    EXPECT_EQ(superseded, 2);
    EXPECT_EQ(run(), 0u);
}

// A pass stops once the adapter is at its concurrency (an expiry wave must
// not cost a scan of the whole outbox per delivery); later passes take the
// rest, still newest-only per account.
TEST_F(DispatcherTest, APassTakesNoMoreThanTheConcurrencyAndLaterPassesTheRest) {
    for (int i = 0; i < 20; ++i) enqueue(i, "First-Pass-" + std::to_string(i));
    for (int i = 0; i < 20; i += 2) enqueue(i, "Second-Pass-" + std::to_string(i));
    std::vector<std::size_t> per_pass;
    for (int pass = 0; pass < 10; ++pass) {
        auto n = dispatcher_->run_once();
        ASSERT_TRUE(n) << n.error().message;
        if (*n == 0) break;
        per_pass.push_back(*n);
    }
    EXPECT_EQ(per_pass, (std::vector<std::size_t>{4, 4, 4, 4, 4}));  // concurrency 4, 20 accounts
    auto lines = log();
    EXPECT_EQ(lines.size(), 20u);
    for (int i = 0; i < 20; ++i) {
        const std::string want = (i % 2 == 0 ? "Second-Pass-" : "First-Pass-") + std::to_string(i);
        EXPECT_EQ(std::count(lines.begin(), lines.end(), "u" + std::to_string(i) + " " + want + " -"), 1) << want;
    }
    EXPECT_TRUE(r().jobs()->empty());
}

TEST_F(DispatcherTest, SendOldPasswordPassesTheStoredOne) {
    {
        auto w = store_->write("test");
        store::AdapterUpdate u;
        u.send_old_password = true;
        ASSERT_TRUE(w->update_adapter("ext", std::move(u)));
        ASSERT_TRUE(w->commit());
    }
    const Secret old("Prev-Pass-0");
    enqueue(3, "New-Pass-9", &old);
    EXPECT_EQ(run(), 1u);
    EXPECT_EQ(log(), std::vector<std::string>{"u3 New-Pass-9 Prev-Pass-0"});
}

TEST_F(DispatcherTest, RetryableFailuresBackOffThenDeadLetter) {
    set_mode("retry");
    const auto id = enqueue(1, "Retry-Pass-1");
    EXPECT_EQ(run(), 1u);
    auto job = r().job(id);
    ASSERT_TRUE(job);
    EXPECT_EQ(job->attempts, 1u);
    EXPECT_EQ(job->next_attempt, clock_.now() + std::chrono::milliseconds(7500));  // 10 s * (0.5 + 0.5/2)
    EXPECT_EQ(job->last_error, dir_ / "target.sh" + " exited with 75: server busy");
    EXPECT_EQ(run(), 0u);  // not due yet
    clock_.advance(std::chrono::seconds(8));
    EXPECT_EQ(run(), 1u);
    EXPECT_EQ(r().job(id)->attempts, 2u);
    clock_.advance(std::chrono::seconds(16));
    EXPECT_EQ(run(), 1u);  // third failure > retry-count 2: dead
    EXPECT_FALSE(r().job(id));
    auto dead = r().dead_letters();
    ASSERT_EQ(dead->size(), 1u);
    EXPECT_NE((*dead)[0].reason.find("gave up after 3 attempts"), std::string::npos);
    // Requeued by an admin, it goes through once the target is back.
    set_mode("ok");
    {
        auto w = store_->write("admin");
        ASSERT_TRUE(w->dead_letter_retry(id));
        ASSERT_TRUE(w->commit());
    }
    EXPECT_EQ(run(), 1u);
    EXPECT_EQ(log(), std::vector<std::string>{"u1 Retry-Pass-1 -"});
}

TEST_F(DispatcherTest, PermanentFailureIsADeadLetterWithoutThePassword) {
    set_mode("fail");
    const auto id = enqueue(1, "Secret-Pass-7");
    EXPECT_EQ(run(), 1u);
    auto dead = r().dead_letters();
    ASSERT_EQ(dead->size(), 1u);
    EXPECT_EQ((*dead)[0].job.id, id);
    EXPECT_NE((*dead)[0].reason.find("exited with 3: refused *** ***"), std::string::npos) << (*dead)[0].reason;
    auto audit = r().audit();
    for (const auto& a : *audit) EXPECT_EQ(a.detail.find("Secret-Pass-7"), std::string::npos);
    EXPECT_FALSE(r().mapping({"LINUX", "TEST\\u1"})->has_credential);
}

TEST_F(DispatcherTest, TimeoutIsRetryable) {
    set_mode("slow");
    const auto id = enqueue(1, "Slow-Pass-1");
    EXPECT_EQ(run(), 1u);
    EXPECT_NE(r().job(id)->last_error.find("timed out"), std::string::npos);
}

TEST_F(DispatcherTest, DisabledAdapterHoldsJobsAndMaxAgeExpiresThem) {
    {
        auto w = store_->write("admin");
        store::AdapterUpdate u;
        u.enabled = false;
        ASSERT_TRUE(w->update_adapter("ext", std::move(u)));
        ASSERT_TRUE(w->commit());
    }
    const auto id = enqueue(1, "Held-Pass-1");
    EXPECT_EQ(run(), 0u);
    EXPECT_TRUE(r().job(id));
    clock_.advance(std::chrono::seconds(3601));
    EXPECT_EQ(run(), 0u);
    auto dead = r().dead_letters();
    ASSERT_EQ(dead->size(), 1u);
    EXPECT_NE((*dead)[0].reason.find("max-age"), std::string::npos);
}

TEST_F(DispatcherTest, ThreadedDeliveryKeepsTheLastPasswordPerAccount) {
    dispatcher_->start();
    for (int round = 0; round < 5; ++round)
        for (int u = 0; u < 20; ++u) {
            enqueue(u, "P" + std::to_string(u) + "-round" + std::to_string(round));
            dispatcher_->wake();
        }
    for (int i = 0; i < 400 && !r().jobs()->empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
    dispatcher_->stop();
    EXPECT_TRUE(r().jobs()->empty());
    for (int u = 0; u < 20; ++u)
        EXPECT_EQ(r().mapping_credential({"LINUX", "TEST\\u" + std::to_string(u)})->view(),
                  "P" + std::to_string(u) + "-round4");
    // Per account, the log is in round order (never an older after a newer).
    std::map<std::string, int> last_round;
    for (const auto& line : log()) {
        const auto user = line.substr(0, line.find(' '));
        const int round = line[line.find("-round") + 6] - '0';
        EXPECT_GT(round, last_round.contains(user) ? last_round[user] : -1) << line;
        last_round[user] = round;
    }
    EXPECT_EQ(last_round.size(), 20u);
    EXPECT_TRUE(store_->verify()->problems.empty());
}

// The outcomes of a pass's deliveries share one commit, not one each, and
// it does not wait for the disk (a capture's commit is durable).
TEST_F(DispatcherTest, TheOutcomesOfAPassShareOneCommit) {
    for (int u = 0; u < 4; ++u) enqueue(u, "Batch-Pass-" + std::to_string(u));
    const std::uint64_t before = store_->commits(), durable = store_->durable_commits();
    EXPECT_EQ(run(), 4u);  // concurrency 4: all four in one pass
    EXPECT_EQ(store_->commits() - before, 1u);
    EXPECT_EQ(store_->durable_commits() - durable, 0u);
    EXPECT_TRUE(r().jobs()->empty());
    for (int u = 0; u < 4; ++u)
        EXPECT_EQ(r().mapping_credential({"LINUX", "TEST\\u" + std::to_string(u)})->view(), "Batch-Pass-" + std::to_string(u));
    EXPECT_EQ(log().size(), 4u);
}

// A job dropped by an admin while it was being sent: its outcome is
// skipped, and the other outcomes of the same commit (done, retry,
// permanent) are all recorded.
TEST_F(DispatcherTest, AnOutcomeWhoseJobWasDroppedCostsTheOthersNothing) {
    use_adapter([this](const Delivery& d) -> DeliveryResult {
        if (d.external == "u1") {
            auto w = store_->write("admin");
            EXPECT_TRUE(w && w->job_dead(d.change_id, "dropped by an admin") && w->commit());
            return {Outcome::done, "set"};
        }
        if (d.external == "u2") return {Outcome::retry, "busy"};
        if (d.external == "u3") return {Outcome::permanent, "no such user"};
        return {Outcome::done, "set"};
    });
    std::vector<std::uint64_t> ids;
    for (int u = 0; u < 4; ++u) ids.push_back(enqueue(u, "Mixed-Pass-" + std::to_string(u)));
    const std::uint64_t before = store_->commits();
    EXPECT_EQ(run(), 4u);
    EXPECT_EQ(store_->commits() - before, 2u);  // the admin's drop, then every outcome
    EXPECT_EQ(r().mapping_credential({"LINUX", "TEST\\u0"})->view(), "Mixed-Pass-0");
    EXPECT_FALSE(r().mapping({"LINUX", "TEST\\u1"})->has_credential);
    auto retried = r().job(ids[2]);
    ASSERT_TRUE(retried);
    EXPECT_EQ(retried->attempts, 1u);
    EXPECT_EQ(retried->last_error, "busy");
    std::map<std::uint64_t, std::string> reasons;
    auto dead = r().dead_letters();
    ASSERT_TRUE(dead);
    for (const auto& d : *dead) reasons[d.job.id] = d.reason;
    EXPECT_EQ(reasons, (std::map<std::uint64_t, std::string>{{ids[1], "dropped by an admin"}, {ids[3], "no such user"}}));
    EXPECT_EQ(r().jobs()->size(), 1u);
}

// stop() waits for a delivery in progress and records its outcome.
TEST_F(DispatcherTest, StopRecordsTheOutcomeOfADeliveryInProgress) {
    std::atomic<bool> entered{false};
    use_adapter([&entered](const Delivery&) -> DeliveryResult {
        entered = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        return {Outcome::done, "set"};
    });
    const auto id = enqueue(5, "Late-Pass-5");
    dispatcher_->start();
    dispatcher_->wake();
    for (int i = 0; i < 400 && !entered; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_TRUE(entered);
    dispatcher_->stop();
    EXPECT_FALSE(r().job(id));
    EXPECT_EQ(r().mapping_credential({"LINUX", "TEST\\u5"})->view(), "Late-Pass-5");
}

// Many workers, outcomes recorded in shared commits: per account the
// deliveries still come in the order of the changes, and the last lands.
TEST_F(DispatcherTest, ConcurrentWorkersKeepTheOrderPerAccount) {
    std::mutex mutex;
    std::map<std::string, std::vector<int>> seen;  // external -> rounds delivered, in order
    use_adapter([&](const Delivery& d) -> DeliveryResult {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        const std::string pw(d.password->view());
        std::lock_guard lock(mutex);
        seen[d.external].push_back(std::stoi(pw.substr(pw.find("-round") + 6)));
        return {Outcome::done, "set"};
    });
    dispatcher_.reset();
    opts_.workers = 8;
    dispatcher_.emplace(*store_, opts_);
    dispatcher_->start();
    for (int round = 0; round < 8; ++round)
        for (int u = 0; u < 20; ++u) {
            enqueue(u, "P" + std::to_string(u) + "-round" + std::to_string(round));
            dispatcher_->wake();
        }
    for (int i = 0; i < 400 && !r().jobs()->empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
    dispatcher_->stop();
    EXPECT_TRUE(r().jobs()->empty());
    std::lock_guard lock(mutex);
    EXPECT_EQ(seen.size(), 20u);
    for (const auto& [external, rounds] : seen) {
        EXPECT_TRUE(std::is_sorted(rounds.begin(), rounds.end()) &&
                    std::adjacent_find(rounds.begin(), rounds.end()) == rounds.end()) << external;
        EXPECT_EQ(rounds.back(), 7) << external;
        EXPECT_EQ(r().mapping_credential({"LINUX", "TEST\\" + external})->view(), "P" + external.substr(1) + "-round7");
    }
}

TEST_F(DispatcherTest, UnknownAdapterTypeIsPermanent) {
    {
        auto w = store_->write("admin");
        store::AdapterUpdate u;
        u.unset_properties = {"program"};
        ASSERT_TRUE(w->update_adapter("ext", std::move(u)));
        ASSERT_TRUE(w->commit());
    }
    enqueue(1, "No-Program-1");
    EXPECT_EQ(run(), 1u);
    auto dead = r().dead_letters();
    ASSERT_EQ(dead->size(), 1u);
    EXPECT_NE((*dead)[0].reason.find("needs property program"), std::string::npos);
}

}  // namespace
}  // namespace pwsync::gateway
