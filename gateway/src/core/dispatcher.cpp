#include "dispatcher.h"

#include <algorithm>
#include <thread>

#include "backoff.h"
#include "scrub.h"

namespace pwsync::gateway {
namespace {

std::string target_key(const store::Job& j) { return ascii_lower(j.adapter) + '\0' + ascii_lower(j.external); }

}  // namespace

Dispatcher::Dispatcher(store::Store& store, DispatcherOptions options)
    : store_(store), options_(std::move(options)), clock_(options_.clock ? options_.clock : &system_clock_),
      prng_(static_cast<std::uint64_t>(to_unix_micros(clock_->now())) | 1) {}

Dispatcher::~Dispatcher() { stop(); }

void Dispatcher::add_builtin(const std::string& name, BuiltinTarget target) { builtins_[ascii_lower(name)] = std::move(target); }

Result<std::shared_ptr<Adapter>> Dispatcher::adapter_for(const store::Adapter& config) {
    const std::string key = ascii_lower(config.name);
    {
        std::lock_guard lock(mutex_);
        auto it = cache_.find(key);
        if (it != cache_.end() && it->second.first == config.updated) return it->second.second;
    }
    if (!options_.factory) return fail(Errc::invalid_argument, "no adapter factory: adapter '" + config.name + "' cannot be made");
    // Made outside the lock: a factory may connect somewhere.
    AdapterContext ctx{config, [this, name = config.name](std::string_view prop) -> Result<Secret> {
                           PWSYNC_ASSIGN(auto r, store_.read());
                           return r.adapter_secret(name, prop);
                       }};
    PWSYNC_ASSIGN(std::unique_ptr<Adapter> made, options_.factory(ctx));
    std::shared_ptr<Adapter> shared = std::move(made);
    std::lock_guard lock(mutex_);
    cache_[key] = {config.updated, shared};
    return shared;
}

Result<std::vector<Dispatcher::Work>> Dispatcher::plan(std::vector<Finished>& done, bool scan, bool early) {
    std::vector<Work> work;
    std::vector<std::string> claimed;
    std::set<std::string> superseding;  // targets whose older jobs the pass's write removes
    std::vector<std::pair<std::uint64_t, std::uint64_t>> superseded;  // (job, by); written after the scan
    std::vector<std::pair<std::uint64_t, std::string>> dead;
    std::optional<Fence> right;
    if (options_.fence) {
        right = options_.fence();
        if (!right) {
            // Not the active gateway (any more): the outcomes are not
            // recorded here; the active one sends those jobs again.
            std::lock_guard lock(mutex_);
            for (const auto& f : done) in_flight_.erase(target_key(f.work.job));
            return work;
        }
    }
    // The pass's writes are the active gateway's: fenced by its lease.
    const auto fenced = [&](store::WriteTxn& w) -> Status {
        return right ? w.require_lease(right->instance, right->epoch) : Status{};
    };
    auto scan_outbox = [&]() -> Status {
        const TimePoint t = now();
        // Claims are made on copies and published only once the writes the
        // scan calls for are durable: a failure half way must not leave
        // accounts marked busy.
        std::set<std::string> in_flight;
        std::map<std::string, std::uint32_t> load;
        {
            std::lock_guard lock(mutex_);
            in_flight = in_flight_;
            load = adapter_load_;
        }
        // A snapshot taken after the copy: a target leaves in_flight_ only
        // once its outcome is committed, so the snapshot shows that outcome
        // (the accounts of `done` are still claimed: skipped in this pass).
        // A read transaction does not hold up intake or outcomes.
        PWSYNC_ASSIGN(auto r, store_.read());
        // Delivery settings per lower(adapter name).
        std::map<std::string, std::shared_ptr<const store::Adapter>> configs;
        for (const auto& [name, b] : builtins_) configs[name] = std::make_shared<const store::Adapter>(b.settings);
        PWSYNC_ASSIGN(auto adapters, r.adapters());
        for (auto& a : adapters) {
            auto key = ascii_lower(a.name);
            configs[std::move(key)] = std::make_shared<const store::Adapter>(std::move(a));
        }
        auto limit = [](const store::Adapter& a) { return std::max<std::uint32_t>(1, a.concurrency); };
        auto held = [&](const std::string& name, const store::Adapter& a) { return !builtins_.contains(name) && !a.flags.enabled; };
        // A pass runs after every delivery, so it must not cost a scan of
        // the whole outbox (tens of thousands of queued jobs during an
        // expiry wave, or thousands behind one slow adapter): the outbox is
        // scanned adapter by adapter (its index is ordered by adapter), an
        // adapter at its concurrency is skipped, and an adapter's scan stops
        // once it is. A disabled adapter's jobs are still checked for
        // max-age, and those of an adapter that no longer exists are
        // dead-lettered, so their scans go on to the end.
        const auto visit = [&](std::string_view adapter, std::string_view external,
                               const std::vector<std::uint64_t>& ids) -> Result<bool> {
            const std::string key = std::string(adapter) + '\0' + std::string(external);
            // Newest job per target; the others are superseded unless one is in flight.
            if (in_flight.contains(key)) return true;
            for (std::size_t i = 0; i + 1 < ids.size(); ++i) superseded.emplace_back(ids[i], ids.back());
            if (ids.size() > 1) superseding.insert(key);
            const std::string adapter_key(adapter);
            PWSYNC_ASSIGN(store::Job newest, r.job(ids.back()));
            auto config = configs.find(adapter_key);
            if (config == configs.end()) {
                dead.emplace_back(newest.id, "adapter '" + newest.adapter + "' no longer exists");
                return true;
            }
            const store::Adapter& settings = *config->second;
            if (t - newest.created > std::chrono::seconds(settings.max_age)) {
                dead.emplace_back(newest.id, "expired: not delivered within max-age (" + std::to_string(settings.max_age) +
                                                 " s); last error: " + (newest.last_error.empty() ? "none" : newest.last_error));
                return true;
            }
            if (held(adapter_key, settings)) return true;  // until the adapter is enabled again
            if (newest.next_attempt > t) return true;
            if (load[adapter_key] >= limit(settings)) return false;
            ++load[adapter_key];
            std::shared_ptr<Adapter> builtin;
            if (auto b = builtins_.find(adapter_key); b != builtins_.end()) builtin = b->second.adapter;
            claimed.push_back(key);
            work.push_back({std::move(newest), config->second, builtin});
            return load[adapter_key] < limit(settings);
        };
        PWSYNC_ASSIGN(auto present, r.target_adapters());
        for (const auto& name : present) {
            auto config = configs.find(name);
            if (config != configs.end() && !held(name, *config->second) && load[name] >= limit(*config->second))
                continue;  // nothing of it can go now; a later pass sees it
            PWSYNC_TRY(r.for_each_target(visit, name));
        }
        return {};
    };
    Status scanned = scan ? scan_outbox() : Status{};
    if (!scanned) {  // half a scan: none of it
        work.clear(), claimed.clear(), superseded.clear(), dead.clear();
    }
    if (early && !work.empty()) {
        // A target with nothing to supersede needs no write before its
        // delivery: it goes to the workers now, while the outcomes below are
        // committed, so that a freed adapter slot does not wait for that
        // commit's fsync. (An account whose outcome is in `done` is still
        // claimed: it is not in `work`.)
        std::vector<Work> later;
        std::vector<std::string> later_claims;
        std::size_t handed = 0;
        {
            std::lock_guard lock(mutex_);
            for (std::size_t i = 0; i < work.size(); ++i) {
                if (stopping_ || superseding.contains(claimed[i])) {
                    later.push_back(std::move(work[i]));
                    later_claims.push_back(std::move(claimed[i]));
                    continue;
                }
                in_flight_.insert(claimed[i]);
                ++adapter_load_[ascii_lower(work[i].job.adapter)];
                queue_.push_back(std::move(work[i]));
                ++handed;
            }
        }
        notify_workers(handed);
        work = std::move(later);
        claimed = std::move(later_claims);
    }

    // One transaction for the pass: the outcomes handed back, and the
    // supersedes and dead letters of the scan. A newer job goes out only
    // once the older ones it supersedes are gone: delivered and removed
    // first, it would leave them to be sent after it.
    const auto write_scan = [&](store::WriteTxn& w) -> Status {
        // not_found: an administrator dropped the job meanwhile.
        const auto tolerate = [](Status st) { return st || st.error().code == Errc::not_found ? Status{} : st; };
        for (const auto& [id, by] : superseded) PWSYNC_TRY(tolerate(w.job_superseded(id, by)));
        for (const auto& [id, why] : dead) PWSYNC_TRY(tolerate(w.job_dead(id, why)));
        return {};
    };
    // Deferrable (LMDB; PostgreSQL commits them durably): losing these
    // records to a system crash only sends the deliveries again (at least
    // once, as after a crash before recording); every capture's commit
    // stays durable and carries them to the disk.
    constexpr auto kOutcomes = store::Durability::deferrable;
    Status scan_written;
    if (!done.empty() || !superseded.empty() || !dead.empty()) {
        std::vector<store::Job> recorded;  // read ahead in one round trip (PostgreSQL)
        recorded.reserve(done.size());
        for (const auto& f : done) recorded.push_back(f.work.job);
        const Status all = store_.transact("pwsyncd", [&](store::WriteTxn& w) -> Status {
            PWSYNC_TRY(fenced(w));
            PWSYNC_TRY(w.prefetch_jobs(recorded));
            for (const auto& f : done) PWSYNC_TRY(record(w, f));
            return write_scan(w);
        }, kOutcomes);
        if (!all && all.error().code == Errc::refused && right) {
            // The lease is gone: nothing more is written as the active
            // gateway, and nothing the scan found is claimed.
            scan_written = all;
        } else if (!all) {
            // What cannot be written must not hold back the rest: each on its own.
            bool slow_down = false;
            for (const auto& f : done)
                if (Status st = store_.transact("pwsyncd", [&](store::WriteTxn& w) -> Status {
                        PWSYNC_TRY(fenced(w));
                        return record(w, f);
                    }, kOutcomes);
                    !st) {
                    log("cannot record the outcome of " + std::to_string(f.work.job.id) + ": " + st.error().message);
                    slow_down = true;
                }
            // Such a job stays as it was and would be sent again at once.
            if (slow_down) std::this_thread::sleep_for(std::chrono::seconds(1));
            if (!superseded.empty() || !dead.empty())
                scan_written = store_.transact("pwsyncd", [&](store::WriteTxn& w) -> Status {
                    PWSYNC_TRY(fenced(w));
                    return write_scan(w);
                }, kOutcomes);
        }
    }
    std::lock_guard lock(mutex_);
    // Recorded (or left as they were, to be sent again): the accounts are free.
    for (const auto& f : done) in_flight_.erase(target_key(f.work.job));
    if (!done.empty()) wake_scheduler();
    PWSYNC_TRY(scanned);
    PWSYNC_TRY(scan_written);
    for (const auto& key : claimed) in_flight_.insert(key);
    for (const auto& item : work) ++adapter_load_[ascii_lower(item.job.adapter)];
    return work;
}

void Dispatcher::release_slot(Work& work) {
    if (!work.slot_held) return;
    work.slot_held = false;
    std::lock_guard lock(mutex_);
    auto& load = adapter_load_[ascii_lower(work.job.adapter)];
    if (load > 0) --load;
    wake_scheduler();
}

void Dispatcher::unclaim(const Work& work) {
    in_flight_.erase(target_key(work.job));
    auto& load = adapter_load_[ascii_lower(work.job.adapter)];
    if (load > 0) --load;
}

void Dispatcher::finish(Work& work) {
    release_slot(work);
    std::lock_guard lock(mutex_);
    in_flight_.erase(target_key(work.job));
    wake_scheduler();
}

std::optional<Dispatcher::Finished> Dispatcher::execute(Work& work) {
    const store::Job& job = work.job;
    std::optional<Fence> right;
    if (options_.fence) {
        // A delivery starts only while this gateway is the active one, and
        // must be over when that right ends.
        right = options_.fence();
        if (!right) {
            finish(work);
            return std::nullopt;
        }
    }
    DeliveryResult result{Outcome::retry, {}};
    Secret password, old;
    bool have_old = false;
    {
        auto r = store_.read();
        auto pw = r ? r->job_password(job.id) : Result<Secret>(std::unexpected(r.error()));
        if (!pw) {
            // Dropped or delivered meanwhile (`pwsync queue drop`): nothing to do.
            finish(work);
            return std::nullopt;
        }
        password = std::move(*pw);
        if (job.has_old_password && work.settings->flags.send_old_password) {
            if (auto o = r->job_old_password(job.id)) {
                old = std::move(*o);
                have_old = true;
            }
        }
    }
    std::shared_ptr<Adapter> adapter = work.adapter;
    if (!adapter) {
        auto a = adapter_for(*work.settings);
        if (a) adapter = *a;
        else result = {a.error().code == Errc::invalid_argument ? Outcome::permanent : Outcome::retry, a.error().message};
    }
    if (adapter) {
        Delivery d{job.windows, job.external, &password, have_old ? &old : nullptr, job.origin, job.app, job.id, job.created,
                   right ? right->until : std::chrono::steady_clock::time_point{}};
        try {
            result = adapter->deliver(d);
        } catch (const std::exception& e) {
            result = {Outcome::retry, std::string("adapter failed: ") + e.what()};
        }
    }
    result.message = scrub_secrets(result.message, password, have_old ? &old : nullptr);
    // The adapter is free for the next account's delivery while this
    // outcome waits for its commit; this account stays claimed until then.
    release_slot(work);
    // The mapping's new credential, sealed here rather than in the writers'
    // turn (which seals it itself when this fails).
    std::optional<store::SealedCredential> credential;
    if (result.outcome == Outcome::done)
        if (auto sealed = store_.seal_credential({job.app, job.windows}, password)) credential = std::move(*sealed);
    password.clear();
    old.clear();
    return Finished{std::move(work), std::move(result), std::move(credential)};
}

Status Dispatcher::record(store::WriteTxn& w, const Finished& f) {
    const store::Job& job = f.work.job;
    const DeliveryResult& result = f.result;
    const std::string& msg = result.message;
    Status st;
    if (result.outcome == Outcome::done) {
        st = w.job_delivered(job.id, f.credential ? &*f.credential : nullptr);
    } else if (result.outcome == Outcome::permanent) {
        st = w.job_dead(job.id, msg);
    } else if (job.attempts + 1 > f.work.settings->retry_count) {
        st = w.job_dead(job.id, "gave up after " + std::to_string(job.attempts + 1) + " attempts: " + msg);
    } else {
        const auto delay = std::max<std::chrono::milliseconds>(
            retry_delay(job.attempts + 1, f.work.settings->retry_delay, jitter()), result.retry_after);
        st = w.job_retry(job.id, now() + delay, msg);
    }
    // not_found: the job was dropped by an admin while it was being sent.
    if (!st && st.error().code == Errc::not_found) return {};
    return st;
}

double Dispatcher::jitter() {
    if (options_.random) return options_.random();
    std::lock_guard lock(random_mutex_);
    prng_ ^= prng_ << 13, prng_ ^= prng_ >> 7, prng_ ^= prng_ << 17;  // xorshift64
    return static_cast<double>(prng_ >> 11) / static_cast<double>(std::uint64_t{1} << 53);
}

Result<std::size_t> Dispatcher::run_once() {
    std::vector<Finished> done;
    PWSYNC_ASSIGN(auto work, plan(done));
    for (auto& item : work)
        if (auto f = execute(item)) done.push_back(std::move(*f));
    PWSYNC_TRY(plan(done, false));
    return work.size();
}

void Dispatcher::start() {
    std::lock_guard lock(mutex_);
    if (scheduler_.joinable()) return;
    stopping_ = false;
    workers_gone_ = false;
    scheduler_ = std::thread([this] { scheduler_loop(); });
    for (std::size_t i = 0; i < std::max<std::size_t>(1, options_.workers); ++i)
        workers_.emplace_back([this] { worker_loop(); });
}

void Dispatcher::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_cv_.notify_all();
    work_cv_.notify_all();
    // The workers end the deliveries they started and hand back the
    // outcomes; then the scheduler records those and ends.
    for (auto& t : workers_)
        if (t.joinable()) t.join();
    workers_.clear();
    {
        std::lock_guard lock(mutex_);
        workers_gone_ = true;
    }
    wake_cv_.notify_all();
    if (scheduler_.joinable()) scheduler_.join();
}

void Dispatcher::wake() {
    std::lock_guard lock(mutex_);
    wake_scheduler();
}

void Dispatcher::notify_workers(std::size_t jobs) {
    // Called with the lock let go, so that a worker woken does not block on
    // it at once. One idle worker per job: waking all of them for one job
    // costs the others a wake-up and a sleep each; at least as many jobs as
    // workers wake them all in one call.
    if (jobs == 0) return;
    if (jobs >= std::max<std::size_t>(1, options_.workers)) {
        work_cv_.notify_all();
        return;
    }
    for (std::size_t i = 0; i < jobs; ++i) work_cv_.notify_one();
}

void Dispatcher::wake_scheduler() {
    // Set, the scheduler has not begun waiting since it was set: it sees it
    // before it sleeps. Every change and every delivery wakes it, so the
    // notify (a futex call) is made only once per pass.
    if (woken_) return;
    woken_ = true;
    wake_cv_.notify_one();
}

void Dispatcher::scheduler_loop() {
    while (true) {
        std::vector<Finished> done;
        bool planning = false, last = false;
        {
            std::lock_guard lock(mutex_);
            done.swap(finished_);
            planning = !stopping_;
            last = workers_gone_;  // then every outcome is in `done`
        }
        Result<std::vector<Work>> work = std::vector<Work>{};
        try {
            work = plan(done, planning, true);
        } catch (const std::exception& e) {
            work = fail(Errc::internal, e.what());
            // Not recorded: those jobs stay as they were, to be sent again.
            for (auto& f : done) finish(f.work);
        }
        if (!work) log("dispatcher: " + work.error().message);
        std::size_t handed = 0;
        {
            std::lock_guard lock(mutex_);
            if (work && !work->empty()) {
                if (stopping_) {
                    // No worker takes them any more.
                    for (const auto& w : *work) unclaim(w);
                } else {
                    for (auto& item : *work) queue_.push_back(std::move(item));
                    handed = work->size();
                }
            }
        }
        notify_workers(handed);
        {
            std::unique_lock lock(mutex_);
            if (last) return;
            // The next pass: when woken (a new job, an outcome handed back)
            // or after idle_poll, which also catches retries coming due.
            wake_cv_.wait_for(lock, options_.idle_poll, [this] { return woken_ || workers_gone_; });
            woken_ = false;
        }
    }
}

void Dispatcher::worker_loop() {
    while (true) {
        Work item;
        {
            std::unique_lock lock(mutex_);
            // Timed: each job wakes one worker, and a wake-up the C library
            // loses (glibc bug 25847) must delay that job by at most
            // idle_poll, not until the next job comes.
            while (!stopping_ && queue_.empty()) work_cv_.wait_for(lock, options_.idle_poll);
            if (stopping_) {
                // Not started: the jobs stay in the outbox for the next start.
                for (const auto& w : queue_) unclaim(w);
                queue_.clear();
                return;
            }
            item = std::move(queue_.front());
            queue_.pop_front();
        }
        std::optional<Finished> f;
        try {
            f = execute(item);
        } catch (const std::exception& e) {
            log("delivery of job " + std::to_string(item.job.id) + " failed: " + e.what());
            finish(item);
        }
        if (!f) continue;
        std::lock_guard lock(mutex_);
        finished_.push_back(std::move(*f));
        wake_scheduler();
    }
}

}  // namespace pwsync::gateway
