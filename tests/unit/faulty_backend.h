// A store backend for tests that fails on demand: LMDB underneath, and the
// reads of one table answered with a chosen error (a database failing over:
// Errc::unavailable, timeout, busy) until the test clears it; or the lease
// lost (check_lease refuses, as PostgreSQL's does once another gateway took
// it). Stores named "faulty:FOLDER" use it (faulty_store_uri).
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "backend.h"

namespace pwsync::store::testing {

struct ReadFault {
    std::atomic<bool> on{false};
    std::atomic<unsigned> table{0};
    std::atomic<Errc> code{Errc::unavailable};
    std::atomic<bool> lease_lost{false};
    std::atomic<int> lease_busy{0};  // lease checks still to answer busy (a conflict)
};

inline ReadFault& read_fault() {
    static ReadFault f;
    return f;
}

// Reads of `t` fail with `code` from now on, in every faulty store.
inline void fail_reads(Table t, Errc code) {
    read_fault().table = static_cast<unsigned>(t);
    read_fault().code = code;
    read_fault().on = true;
}
// WriteTxn::require_lease fails from now on, in every faulty store.
inline void lose_lease() { read_fault().lease_lost = true; }
// The next `times` lease checks answer busy (a conflict the store retries).
inline void lease_busy(int times) { read_fault().lease_busy = times; }
inline void clear_fault() {
    read_fault().on = false;
    read_fault().lease_lost = false;
    read_fault().lease_busy = 0;
}

namespace faulty {

inline Status fault_of(Table t) {
    const auto& f = read_fault();
    if (f.on && f.table == static_cast<unsigned>(t))
        return fail(f.code.load(), std::string("injected: ") + errc_name(f.code.load()));
    return {};
}

class Txn final : public KvTxn {
public:
    explicit Txn(std::unique_ptr<KvTxn> inner) : in_(std::move(inner)) {}
    Result<std::optional<std::string_view>> get(Table t, std::string_view key) const override {
        PWSYNC_TRY(fault_of(t));
        return in_->get(t, key);
    }
    Status put(Table t, std::string_view key, std::string_view value) override { return in_->put(t, key, value); }
    Status del(Table t, std::string_view key) override { return in_->del(t, key); }
    Status rewrite(Table t, const Rewriter& each) override { return in_->rewrite(t, each); }
    Result<std::optional<std::string>> last_key(Table t) const override {
        PWSYNC_TRY(fault_of(t));
        return in_->last_key(t);
    }
    Result<std::size_t> entries(Table t) const override {
        PWSYNC_TRY(fault_of(t));
        return in_->entries(t);
    }
    Result<std::uint64_t> next_id(Sequence s) override { return in_->next_id(s); }
    Result<std::uint64_t> last_id(Sequence s) const override { return in_->last_id(s); }
    Status advance(Sequence s, std::uint64_t past) override { return in_->advance(s, past); }
    bool active() const override { return in_->active(); }
    Status check_lease(std::string_view instance, std::uint64_t epoch) const override {
        if (read_fault().lease_lost) return fail(Errc::refused, "injected: another gateway holds the lease");
        if (read_fault().lease_busy.fetch_sub(1) > 0) return fail(Errc::busy, "injected: could not serialize access");
        return in_->check_lease(instance, epoch);
    }

protected:
    Status scan_from(Table t, std::string_view prefix, const Visitor& visit, std::string_view from) const override {
        PWSYNC_TRY(fault_of(t));
        return in_->scan(t, prefix, visit, from);
    }
    Status do_commit(Durability d) override { return in_->commit(d); }

private:
    std::unique_ptr<KvTxn> in_;
};

class Wrapped final : public Backend {
public:
    explicit Wrapped(std::unique_ptr<Backend> inner) : in_(std::move(inner)) {}
    Result<std::unique_ptr<KvTxn>> begin(bool write) override {
        PWSYNC_ASSIGN(auto t, in_->begin(write));
        return std::unique_ptr<KvTxn>(std::make_unique<Txn>(std::move(t)));
    }
    Status backup(const std::string& dest) const override { return in_->backup(dest); }
    std::string location() const override { return in_->location(); }
    bool defers_commits() const override { return in_->defers_commits(); }

private:
    std::unique_ptr<Backend> in_;
};

inline Result<std::unique_ptr<Backend>> wrap(Result<std::unique_ptr<Backend>> inner) {
    if (!inner) return std::unexpected(inner.error());
    return std::unique_ptr<Backend>(std::make_unique<Wrapped>(std::move(*inner)));
}

inline const BackendType kType{
    "faulty",
    [](const std::string& location) { return kLmdbBackend.default_key_file(location); },
    [](const std::string& location) { return kLmdbBackend.check_vacant(location); },
    [](const std::string& location) { return wrap(kLmdbBackend.create(location)); },
    [](const std::string& location) { return wrap(kLmdbBackend.open(location)); },
    [](const std::string& location) { return kLmdbBackend.discard(location); },
};

}  // namespace faulty

// The URI of a store in `folder` that fails as told (registers the type).
inline std::string faulty_store_uri(const std::string& folder) {
    register_backend_type(faulty::kType);
    return "faulty:" + folder;
}

}  // namespace pwsync::store::testing
