// The dispatcher: takes jobs from the durable outbox and delivers them
// through adapters. Per (adapter, external account) only the newest job is
// sent and older ones are dropped as superseded; one job per account is in
// flight at a time, so an older password never lands after a newer one.
// Retryable failures back off exponentially with jitter; permanent ones, and
// jobs past retry-count or max-age, become dead letters with the reason.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "pwsync/adapter.h"
#include "pwsync/store.h"

namespace pwsync::gateway {

// Several gateways on one store (docs/HA.md): this gateway's right to act
// as the active one. Every write of the dispatcher checks the lease in its
// own transaction (WriteTxn::require_lease); every delivery ends by `until`.
struct Fence {
    std::string instance;
    std::uint64_t epoch = 0;
    std::chrono::steady_clock::time_point until{};
};

struct DispatcherOptions {
    const Clock* clock = nullptr;                 // nullptr: system clock
    std::function<double()> random;               // [0, 1) for jitter; nullptr: a seeded PRNG
    std::size_t workers = 4;                      // delivery threads (threaded mode)
    std::chrono::milliseconds idle_poll{1000};    // rescan at least this often
    AdapterFactory factory;                       // makes adapters: make_adapter (the registry)
    std::function<void(std::string_view)> log;    // errors the dispatcher cannot return
    // Unset: this gateway alone uses the store (always allowed). Set: the
    // right as it stands now; nullopt: not the active gateway (nothing is
    // scanned, written or started).
    std::function<std::optional<Fence>()> fence;
};

// A target pwsync itself provides (e.g. "windows": the AD writer for full sync).
struct BuiltinTarget {
    store::Adapter settings;  // delivery settings: retry-count, retry-delay, max-age, concurrency
    std::shared_ptr<Adapter> adapter;
};

class Dispatcher {
public:
    Dispatcher(store::Store& store, DispatcherOptions options);
    Dispatcher(const Dispatcher&) = delete;
    Dispatcher& operator=(const Dispatcher&) = delete;
    ~Dispatcher();

    void add_builtin(const std::string& name, BuiltinTarget target);

    // One synchronous pass: supersede (one transaction when there is any),
    // deliver every job due now, record all their outcomes in one
    // transaction. Returns how many deliveries were attempted.
    Result<std::size_t> run_once();

    // Threaded mode: a scheduler and `workers` delivery threads. Workers
    // hand their outcomes back; each pass of the scheduler records every
    // outcome handed back so far together with its supersedes and dead
    // letters in one transaction, and only then frees those accounts.
    void start();
    // Finishes the deliveries already started and records their outcomes,
    // then returns; jobs not yet started stay in the outbox for the next
    // start.
    void stop();
    void wake();   // a job was queued: look now

private:
    struct Work {
        store::Job job;
        // Shared by the pass's work: an adapter's settings hold maps and
        // sealed values, too much to copy per job.
        std::shared_ptr<const store::Adapter> settings;
        std::shared_ptr<Adapter> adapter;
        bool slot_held = true;  // counted in adapter_load_
    };
    // A delivery that ended; its account stays claimed until this is committed.
    struct Finished {
        Work work;
        DeliveryResult result;  // message scrubbed of the passwords
        std::optional<store::SealedCredential> credential;  // done: the password sealed for its mapping
    };
    // A pass: scans the outbox (read transaction), then writes the outcomes
    // in `done`, the supersedes and the dead letters in one transaction (none
    // when there is nothing to write), frees the accounts of `done` and
    // claims the work it returns. `scan` false: only records `done`.
    // `early` (threaded mode): work that needs no write first goes to the
    // workers before the pass's outcomes are committed.
    Result<std::vector<Work>> plan(std::vector<Finished>& done, bool scan = true, bool early = false);
    // Sends one job; nothing when it was not sent (dropped meanwhile: the
    // account is freed at once).
    std::optional<Finished> execute(Work& work);
    // The write of one outcome; not_found (the job was dropped by an admin
    // while it was being sent) is no error, so it costs the others nothing.
    Status record(store::WriteTxn& w, const Finished& f);
    Result<std::shared_ptr<Adapter>> adapter_for(const store::Adapter& config);
    // A delivery ended: the adapter may take another (the outcome is not
    // recorded yet).
    void release_slot(Work& work);
    // Its outcome is recorded (or it was not sent): the account may be
    // claimed again.
    void finish(Work& work);
    // Never started (stopping): account and slot are free. Under mutex_.
    void unclaim(const Work& work);
    double jitter();  // [0, 1) for the retry delay
    void scheduler_loop();
    void wake_scheduler();  // under mutex_
    void notify_workers(std::size_t jobs);  // jobs queued; not under mutex_
    void worker_loop();
    void log(const std::string& line) const {
        if (options_.log) options_.log(line);
    }
    TimePoint now() const { return clock_->now(); }

    store::Store& store_;
    DispatcherOptions options_;
    SystemClock system_clock_;
    const Clock* clock_;
    std::map<std::string, BuiltinTarget> builtins_;

    std::mutex mutex_;
    std::condition_variable wake_cv_, work_cv_;
    bool stopping_ = false, woken_ = false;
    std::set<std::string> in_flight_;                 // target keys
    std::map<std::string, std::uint32_t> adapter_load_;  // lower(adapter) -> deliveries in flight
    std::deque<Work> queue_;
    std::vector<Finished> finished_;                  // handed back by workers, not recorded yet
    bool workers_gone_ = false;                       // stop(): every started delivery has handed back
    std::map<std::string, std::pair<TimePoint, std::shared_ptr<Adapter>>> cache_;  // by lower(name), updated
    std::mutex random_mutex_;
    std::uint64_t prng_;
    std::thread scheduler_;
    std::vector<std::thread> workers_;
};

}  // namespace pwsync::gateway
