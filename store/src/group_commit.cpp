// Units of work and group commit: writers that arrive while a batch runs
// join it, and those that arrive while it is being committed go together
// into the next one, so a burst of N changes costs one fsync instead of N.
// A caller is answered only after the commit (fsync) that holds its writes.
#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "impl.h"

namespace pwsync::store {

namespace {

// How often a unit of work runs before a conflict is reported, and the
// pause before each new run: random in [0.5, 1.5) x kFirstPause x 2^(run-1),
// at most kLongestPause, so that writers that collided (PostgreSQL: a
// serialization failure) do not collide again at once.
constexpr int kMaxAttempts = 8;
constexpr auto kFirstPause = std::chrono::microseconds(2000);
constexpr auto kLongestPause = std::chrono::microseconds(100'000);

// Writers that queue while a batch's units run join it before its commit.
// Without that, writers that came back together (answered by one commit)
// split in two halves that take turns: each commit carried half of them.
// When the last commit carried at least kGatherFrom units, a leader holding
// fewer also waits, with its transaction open, until it holds as many with
// those queued, or half that commit's time (half a flush on a disk,
// microseconds on tmpfs), at most kLongestGather. Below kGatherFrom the
// writers come one by one (a gateway's captures, spread out behind the DC's
// answers) and a wait would only delay them. Late writers join until the
// batch holds kMostUnitsPerCommit units (it starts with every writer that
// queued during the last commit, at most one per writing thread).
constexpr std::size_t kGatherFrom = 8;
constexpr auto kLongestGather = std::chrono::microseconds(1000);
constexpr std::size_t kMostUnitsPerCommit = 1024;

// A request's result as its writer gets it: one never answered (its default,
// an error without a message: set without allocating) says so.
Status answer(Status result) {
    if (!result && result.error().code == Errc::internal && result.error().message.empty())
        result.error().message = "the grouped write did not run";
    return result;
}

// What the exception being handled says; allocates nothing.
const char* current_exception_text() noexcept {
    try {
        throw;
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "an exception that is not a std::exception";
    }
}
}  // namespace

Status Store::transact(std::string_view actor, const std::function<Status(WriteTxn&)>& fn, Durability durability) {
    for (int attempt = 1;; ++attempt) {
        Status st = commit_group(actor, fn, durability);
        if (st || st.error().code != Errc::busy || attempt == kMaxAttempts) return st;
        const auto pause = std::min<std::chrono::microseconds>(kFirstPause * (1 << (attempt - 1)), kLongestPause);
        std::this_thread::sleep_for(std::chrono::duration_cast<std::chrono::microseconds>(pause * (0.5 + impl_->jitter())));
    }
}

double Store::Impl::jitter() {
    if (random) return random();
    std::lock_guard lock(random_mutex);
    prng ^= prng << 13, prng ^= prng >> 7, prng ^= prng << 17;  // xorshift64
    return static_cast<double>(prng >> 11) / static_cast<double>(std::uint64_t{1} << 53);
}

Status Store::commit_group(std::string_view actor, const std::function<Status(WriteTxn&)>& body,
                           Durability durability) {
    GroupCommit& g = impl_->group;
    GroupCommit::Request req;
    req.actor = actor;
    req.body = &body;
    req.durability = durability;
    std::unique_lock lock(g.mutex);
    g.queue.push_back(&req);
    if (g.want != 0 && g.queue.size() >= g.want) g.gathered.notify_one();
    if (g.leader) {
        lock.unlock();
        {
            std::unique_lock mine(req.m);
            req.wake.wait(mine, [&] { return req.done || req.lead; });
            if (req.done) return answer(std::move(req.result));
        }
        lock.lock();
    }
    g.leader = true;
    // Every writer queued (this one among them), without allocating: nothing
    // may throw before `finish` below exists.
    std::vector<GroupCommit::Request*> batch;
    batch.swap(g.queue);
    lock.unlock();

    // Whatever happens below, the batch finishes: every writer is answered
    // and the next one leads. An exception that escaped here once left
    // `leader` set and every later writer waiting for ever.
    struct Finish {
        GroupCommit& g;
        GroupCommit::Request& own;
        std::vector<GroupCommit::Request*>& batch;
        static void signal(GroupCommit::Request& r, bool GroupCommit::Request::*flag) {
            std::lock_guard l(r.m);
            r.*flag = true;
            r.wake.notify_one();
        }
        ~Finish() {
            GroupCommit::Request* next = nullptr;
            {
                std::lock_guard l(g.mutex);
                g.leader = !g.queue.empty();
                if (g.leader) next = g.queue.front();
            }
            // The next batch starts first: waking this one's writers (a
            // system call each) runs beside it, not before it. Only this
            // thread sets `next`'s flags, so it waits for them.
            if (next != nullptr) signal(*next, &GroupCommit::Request::lead);
            for (auto* r : batch)
                if (r != &own) signal(*r, &GroupCommit::Request::done);
        }
    } finish{g, req, batch};
    // Nothing counts as written until the commit says so: every request's
    // result starts as "not answered" (GroupCommit::Request).
    // A lambda, not a free function: it needs the store's private parts.
    //
    // Every body of the batch runs in the one write transaction, none nested:
    // a nested LMDB transaction allocates and clears megabytes of page lists
    // (and pwsyncd's allocator overwrites every block, for secrets' sake),
    // which cost more than the rest of a change. When a body fails, its
    // writes are mixed with the others': the transaction is dropped and the
    // others run again without it on a fresh one (units of work may run
    // again; that is their contract).
    auto lead = [&] {
        std::vector<GroupCommit::Request*> live(batch.begin(), batch.end());
        const auto since = [](std::chrono::steady_clock::time_point t) {
            return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::steady_clock::now() - t).count());
        };
        // Takes in the writers that queued since; false when there are none.
        // The wait for them (once per batch) counts as gathering, not running.
        bool waited = false;
        std::chrono::nanoseconds waiting{0};
        const auto join_late = [&] {
            std::unique_lock glock(g.mutex);
            if (live.size() >= kMostUnitsPerCommit) return false;
            const std::size_t last_units = g.last_units;
            if (g.queue.empty() && !waited && last_units >= kGatherFrom && live.size() < last_units) {
                waited = true;
                const auto from = std::chrono::steady_clock::now();
                const auto longest = std::min<std::chrono::nanoseconds>(std::chrono::nanoseconds(g.last_commit / 2), kLongestGather);
                g.want = last_units - live.size();
                g.gathered.wait_for(glock, longest, [&] { return g.queue.size() >= g.want; });
                g.want = 0;
                waiting += std::chrono::steady_clock::now() - from;
            }
            if (g.queue.empty()) return false;
            const auto n = std::min(g.queue.size(), kMostUnitsPerCommit - live.size());
            // Room first: a request is either still queued or in `batch`
            // (answered by Finish), never both, even if allocating throws.
            batch.reserve(batch.size() + n);
            live.reserve(live.size() + n);
            const auto taken = g.queue.begin() + static_cast<std::ptrdiff_t>(n);
            batch.insert(batch.end(), g.queue.begin(), taken);
            live.insert(live.end(), g.queue.begin(), taken);
            g.queue.erase(g.queue.begin(), taken);
            return true;
        };
        while (!live.empty()) {
            auto parent = write(live.front()->actor);
            if (!parent) {
                for (auto* r : live) r->result = std::unexpected(parent.error());
                return;
            }
            // Timed from here: waiting for the write lock (another process,
            // another gateway) is not the writer's work. A run that a failed
            // body cuts short counts too: the writer spent it.
            const auto started = std::chrono::steady_clock::now();
            waiting = {};
            parent->s_->in_unit = true;
            GroupCommit::Request* failed = nullptr;
            for (std::size_t i = 0; failed == nullptr; ++i) {
                if (i == live.size() && !join_late()) break;
                auto* r = live[i];
                parent->s_->actor = r->actor;  // its audit records carry its own actor
                Status st;
                try {
                    st = (*r->body)(*parent);
                } catch (...) {
                    st = fail(Errc::internal, current_exception_text());
                }
                if (!st) {
                    r->result = std::move(st);
                    failed = r;
                    break;
                }
            }
            // the bodies catch what they throw
            impl_->writer_running += since(started) - static_cast<std::uint64_t>(waiting.count());
            impl_->writer_gathering += static_cast<std::uint64_t>(waiting.count());
            if (failed != nullptr) {
                std::erase(live, failed);
                continue;  // `parent` rolls back as it goes out of scope
            }
            parent->s_->in_unit = false;
            const auto committing = std::chrono::steady_clock::now();
            // One durable writer makes the whole commit durable (and
            // WriteTxn::commit makes every commit durable where the backend
            // does not defer).
            const bool durable = std::ranges::any_of(live, [](const auto* r) { return r->durability == Durability::durable; });
            const Status committed = parent->commit(durable ? Durability::durable : Durability::deferrable);
            const auto took = since(committing);
            impl_->writer_committing += took;
            if (committed) {  // a commit that failed (and may run again) is not a batch
                ++impl_->writer_batches;
                impl_->writer_units += live.size();
                g.last_units = live.size();
                g.last_commit = static_cast<std::int64_t>(took);
            }
            for (auto* r : live) r->result = committed;
            return;
        }
    };
    try {
        lead();
    } catch (...) {
        // Only what committed stays a success; nothing after the commit throws.
        for (auto* r : batch) r->result = fail(Errc::internal, std::string("the grouped write failed: ") + current_exception_text());
    }
    return answer(std::move(req.result));
}

}  // namespace pwsync::store
