// Units of work and group commit: writers that arrive while a batch is
// being written wait and go together into the next one, so a burst of N
// changes costs one fsync instead of N. A caller is answered only after the
// commit (fsync) that holds its writes.
#include "impl.h"

namespace pwsync::store {
namespace {

// How often a unit of work runs before a conflict is reported.
constexpr int kMaxAttempts = 5;

}  // namespace

Status Store::transact(std::string_view actor, const std::function<Status(WriteTxn&)>& fn) {
    for (int attempt = 1;; ++attempt) {
        Status st = commit_group(actor, fn);
        if (st || st.error().code != Errc::busy || attempt == kMaxAttempts) return st;
    }
}

Status Store::commit_group(std::string_view actor, const std::function<Status(WriteTxn&)>& body) {
    GroupCommit& g = impl_->group;
    GroupCommit::Request req{actor, &body, {}, false};
    std::unique_lock lock(g.mutex);
    g.queue.push_back(&req);
    // Wait until a leader has written this request, or there is no leader:
    // then this thread leads and takes every request queued so far.
    g.cv.wait(lock, [&] { return req.done || !g.leader; });
    if (req.done) return std::move(req.result);
    g.leader = true;
    std::vector<GroupCommit::Request*> batch;
    batch.swap(g.queue);
    lock.unlock();

    auto parent = write(batch.front()->actor);
    std::vector<GroupCommit::Request*> written;
    if (!parent) {
        for (auto* r : batch) r->result = std::unexpected(parent.error());
    } else {
        for (auto* r : batch) {
            auto child = impl_->backend->begin_nested(parent->s_->kv());
            if (!child) {
                r->result = std::unexpected(child.error());
                continue;
            }
            auto s = std::make_unique<TxnState>();
            s->store = impl_.get();
            s->txn = std::move(*child);
            s->write = true;
            s->actor = r->actor;
            s->ring = parent->s_->ring;
            WriteTxn w(std::move(s));
            Status st;
            try {
                st = (*r->body)(w);
            } catch (const std::exception& e) {
                st = fail(Errc::internal, e.what());
            }
            // A body that committed anyway has merged into the parent already.
            if (st && w.s_->kv().active()) st = w.commit();
            r->result = std::move(st);  // on error, w's destructor rolls the child back
            if (r->result) written.push_back(r);
        }
        Status committed = written.empty() ? Status{} : parent->commit();
        if (!committed)
            for (auto* r : written) r->result = committed;
    }

    lock.lock();
    for (auto* r : batch) r->done = true;
    g.leader = false;
    g.cv.notify_all();
    return std::move(req.result);
}

}  // namespace pwsync::store
