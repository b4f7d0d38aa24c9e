// Opening, creating, rotating, backing up and verifying a store.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>  // ::rename
#include <cstring>
#include <random>

#include "pwsync/handles.h"
#include "codec.h"
#include "impl.h"
#include "sealed_fields.h"

namespace pwsync::store {
namespace {

// The backend named by the options and the store's parts that do not
// depend on it.
Result<std::unique_ptr<Store::Impl>> prepare(const StoreOptions& options, BackendUri& uri) {
    PWSYNC_ASSIGN(uri, resolve_backend(options.uri));
    auto impl = std::make_unique<Store::Impl>();
    impl->key_file = options.key_file.empty() ? uri.type->default_key_file(uri.location) : options.key_file;
    impl->clock = options.clock != nullptr ? options.clock : &impl->system_clock;
    impl->random = options.random;
    // Two processes that collided must not draw the same pauses.
    impl->prng = (std::uint64_t{std::random_device{}()} << 32 | std::random_device{}()) | 1;
    return impl;
}

// Serialises key rotation and the recovery of an interrupted one between
// processes; released when the file descriptor closes.
class KeyLock {
public:
    explicit KeyLock(const std::string& key_file) {
        fd_.reset(::open((key_file + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
        if (fd_) ok_ = ::flock(fd_.get(), LOCK_EX) == 0;
    }
    bool ok() const { return ok_; }

private:
    UniqueFd fd_;
    bool ok_ = false;
};

// Schema migrations: migrations[i] takes a store from version i+1 to i+2,
// inside the write transaction that also records the new version (the
// backend has created any new table by then).
// 1 -> 2 adds the gateway's tables and needs nothing else.
// 2 -> 3 adds the account names: every mapping goes into the objectGUID index
// (when it has one) and on the unresolved list, for pwsyncd to resolve.
// 3 -> 4 adds the rules table; a mapping without a rule is a hand-made one.
using Migration = Status (*)(KvTxn&, const Dbs&);
Status index_mappings(KvTxn& txn, const Dbs& d) {
    std::vector<Mapping> all;
    PWSYNC_TRY(txn.scan(d.mappings, "", [&](std::string_view, std::string_view v) -> Result<bool> {
        PWSYNC_ASSIGN(auto rec, records::decode_mapping(v));
        all.push_back(std::move(rec.mapping));
        return true;
    }));
    for (const auto& m : all) {
        if (!m.object_guid.empty())
            PWSYNC_TRY(txn.put(d.map_by_guid, guid_index_key(m.object_guid, m.app, m.windows), ""));
        PWSYNC_TRY(txn.put(d.map_unresolved, mapping_key(m.app, m.windows), ""));
    }
    return {};
}
constexpr Migration kMigrations[] = {nullptr, index_mappings, nullptr};
static_assert(std::size(kMigrations) == kSchemaVersion - 1);

Result<std::uint32_t> read_schema(const KvTxn& txn, Table settings) {
    auto v = txn.get(settings, kSettingSchema);
    if (!v) return std::unexpected(v.error());
    if (!*v) return fail(Errc::corrupt, "the store has no schema version");
    auto n = codec::as_u64(**v);
    if (!n) return std::unexpected(n.error());
    return static_cast<std::uint32_t>(*n);
}

Status write_schema(KvTxn& txn, Table settings, std::uint32_t version) {
    std::string v;
    codec::put_varint(v, version);
    return txn.put(settings, kSettingSchema, v);
}

Result<std::uint32_t> keycheck_id(const KvTxn& txn, Table settings) {
    auto v = txn.get(settings, kSettingKeyCheck);
    if (!v) return std::unexpected(v.error());
    if (!*v) return fail(Errc::corrupt, "the store has no key check value");
    return crypto::sealed_key_id(**v);
}

std::string keycheck_context() { return crypto::seal_context("settings", kSettingKeyCheck, "value"); }

// Finishes or undoes a rotation that stopped between its commit and the
// rename of the new key file: the key check value says which key the data uses.
Status recover_rotation(Store::Impl& s) {
    const std::string next = s.key_file + ".new";
    if (!path_exists(next)) return {};
    KeyLock lock(s.key_file);
    if (!lock.ok()) return fail(Errc::io, "cannot lock " + s.key_file + ".lock");
    if (!path_exists(next)) return {};
    auto ring = load_key_ring(s.key_file);
    if (!ring) return std::unexpected(ring.error());
    auto txn = s.backend->begin(false);
    if (!txn) return std::unexpected(txn.error());
    auto id = keycheck_id(**txn, s.dbs.settings);
    if (!id) return std::unexpected(id.error());
    txn->reset();
    const bool store_uses_new = ring->keys.size() > 1 && ring->keys[1].id() == *id;
    if (store_uses_new) {
        if (::rename(next.c_str(), s.key_file.c_str()) != 0)
            return fail(Errc::io, "cannot finish the key rotation (rename " + next + "): " + std::strerror(errno));
    } else if (::unlink(next.c_str()) != 0) {
        return fail(Errc::io, "cannot remove the unused key " + next + ": " + std::strerror(errno));
    }
    return fsync_dir_of(s.key_file);
}

}  // namespace

// ------------------------------------------------------------ key handling

std::shared_ptr<const crypto::KeyRing> Store::Impl::keys() const {
    std::lock_guard lock(key_mutex);
    return ring;
}

Result<std::shared_ptr<const crypto::KeyRing>> Store::Impl::reload_keys(std::uint32_t current) const {
    auto loaded = load_key_ring(key_file);
    if (!loaded) return std::unexpected(loaded.error());
    if (loaded->find(current) == nullptr)
        return fail(Errc::crypto, "the store is sealed with key " + crypto::key_id_hex(current) +
                                      ", which is not in " + key_file + " (wrong master key?)");
    loaded->current = current;
    auto fresh = std::make_shared<const crypto::KeyRing>(std::move(*loaded));
    std::lock_guard lock(key_mutex);
    ring = fresh;
    return fresh;
}

namespace {
Result<std::string> seal_under_current(const crypto::KeyRing& ring, std::string_view plaintext, std::string_view context) {
    const crypto::Key* key = ring.find(ring.current);
    if (key == nullptr) return fail(Errc::internal, "the current key is missing from the key ring");
    return crypto::seal(*key, plaintext, context);
}
}  // namespace

Result<SealedCredential> Store::seal_credential(const MappingKey& key, const Secret& credential) const {
    PWSYNC_ASSIGN(std::string sealed, seal_under_current(*impl_->keys(), credential.view(), credential_context(key)));
    return SealedCredential{key, std::move(sealed)};
}

Result<Secret> TxnState::open_sealed(std::string_view sealed, std::string_view context) {
    auto id = crypto::sealed_key_id(sealed);
    if (!id) return std::unexpected(id.error());
    if (ring->find(*id) == nullptr) {
        auto fresh = store->reload_keys(ring->current);
        if (!fresh) return std::unexpected(fresh.error());
        ring = *fresh;
    }
    return crypto::open(*ring, sealed, context);
}

Result<std::string> TxnState::seal(std::string_view plaintext, std::string_view context) const {
    return seal_under_current(*ring, plaintext, context);
}

// --------------------------------------------------------------- lifecycle

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;
Store::~Store() = default;

Result<Store> Store::init(const StoreOptions& options) {
    BackendUri uri;
    PWSYNC_ASSIGN(auto impl, prepare(options, uri));
    PWSYNC_TRY(uri.type->check_vacant(uri.location));
    auto key = crypto::Key::generate();
    if (!key) return std::unexpected(key.error());
    if (auto st = write_key_file(impl->key_file, *key); !st) return std::unexpected(st.error());
    PWSYNC_ASSIGN(impl->backend, uri.type->create(uri.location));
    impl->dir = impl->backend->location();
    auto ring = std::make_shared<crypto::KeyRing>();
    ring->current = key->id();
    ring->keys.push_back(std::move(*key));
    impl->ring = ring;

    PWSYNC_ASSIGN(auto txn, impl->backend->begin(true));
    if (auto st = write_schema(*txn, impl->dbs.settings, kSchemaVersion); !st) return std::unexpected(st.error());
    auto check = crypto::seal(ring->keys.front(), kKeyCheckText, keycheck_context());
    if (!check) return std::unexpected(check.error());
    if (auto st = txn->put(impl->dbs.settings, kSettingKeyCheck, *check); !st) return std::unexpected(st.error());
    if (auto st = txn->commit(); !st) return std::unexpected(st.error());
    return Store(std::move(impl));
}

Result<Store> Store::open(const StoreOptions& options) {
    BackendUri uri;
    PWSYNC_ASSIGN(auto impl, prepare(options, uri));
    PWSYNC_ASSIGN(impl->backend, uri.type->open(uri.location));
    impl->dir = impl->backend->location();
    if (auto st = check_key_file_mode(impl->key_file); !st) return std::unexpected(st.error());

    // Schema: migrate when older, refuse when newer.
    {
        PWSYNC_ASSIGN(auto txn, impl->backend->begin(false));
        auto version = read_schema(*txn, impl->dbs.settings);
        if (!version) return std::unexpected(version.error());
        if (*version > kSchemaVersion)
            return fail(Errc::version, "the store has schema version " + std::to_string(*version) +
                                           "; this release reads up to " + std::to_string(kSchemaVersion));
        if (*version < kSchemaVersion) {
            txn.reset();
            PWSYNC_ASSIGN(auto w, impl->backend->begin(true));
            auto v = read_schema(*w, impl->dbs.settings);  // another process may have migrated meanwhile
            if (!v) return std::unexpected(v.error());
            for (std::uint32_t from = *v; from < kSchemaVersion; ++from) {
                const Migration m = kMigrations[from - 1];
                if (m != nullptr)
                    if (auto st = m(*w, impl->dbs); !st) return std::unexpected(st.error());
            }
            if (*v < kSchemaVersion)
                if (auto st = write_schema(*w, impl->dbs.settings, kSchemaVersion); !st)
                    return std::unexpected(st.error());
            if (auto st = w->commit(); !st) return std::unexpected(st.error());
        }
    }

    if (auto st = recover_rotation(*impl); !st) return std::unexpected(st.error());

    // The key: the key check value must open with it.
    auto loaded = load_key_ring(impl->key_file);
    if (!loaded) return std::unexpected(loaded.error());
    PWSYNC_ASSIGN(auto txn, impl->backend->begin(false));
    auto check = txn->get(impl->dbs.settings, kSettingKeyCheck);
    if (!check) return std::unexpected(check.error());
    if (!*check) return fail(Errc::corrupt, "the store has no key check value");
    auto id = crypto::sealed_key_id(**check);
    if (!id) return std::unexpected(id.error());
    auto opened = crypto::open(*loaded, **check, keycheck_context());
    if (!opened || opened->view() != kKeyCheckText)
        return fail(Errc::crypto, "the master key " + impl->key_file + " does not open the store in " + impl->dir);
    loaded->current = *id;
    impl->ring = std::make_shared<const crypto::KeyRing>(std::move(*loaded));
    txn.reset();
    return Store(std::move(impl));
}

StoreInfo Store::info() const {
    return StoreInfo{kSchemaVersion, impl_->keys()->current, impl_->dir, impl_->key_file};
}

std::uint64_t Store::commits() const { return impl_->commits.load(); }
std::uint64_t Store::durable_commits() const { return impl_->durable_commits.load(); }
Store::WriterTime Store::writer_time() const {
    return {impl_->writer_batches.load(), impl_->writer_units.load(),
            std::chrono::nanoseconds(impl_->writer_running.load()), std::chrono::nanoseconds(impl_->writer_committing.load()),
            std::chrono::nanoseconds(impl_->writer_gathering.load())};
}
std::size_t Store::queued_writers() const {
    std::lock_guard lock(impl_->group.mutex);
    return impl_->group.queue.size();
}

bool Store::shared() const { return impl_->backend->shared(); }

Result<Lease> Store::heartbeat(const GatewayIdentity& me, std::chrono::milliseconds ttl, bool want,
                               std::string_view predecessor) {
    return impl_->backend->heartbeat(me, ttl, want, predecessor);
}

Status Store::release_lease(const GatewayIdentity& me, std::uint64_t epoch) {
    return impl_->backend->release_lease(me, epoch);
}

Result<std::vector<GatewayStatus>> Store::gateways(std::chrono::seconds within) const {
    return impl_->backend->gateways(within);
}

Store::KeyLocks::~KeyLocks() = default;

Result<Store::KeyLocks> Store::lock_keys(std::vector<std::string> keys) {
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    PWSYNC_ASSIGN(auto held, impl_->backend->lock_keys(keys));
    return KeyLocks(std::move(held));
}

// ------------------------------------------------------------ transactions

Result<ReadTxn> Store::read() const {
    auto txn = impl_->backend->begin(false);
    if (!txn) return std::unexpected(txn.error());
    auto s = std::make_unique<TxnState>();
    s->store = impl_.get();
    s->txn = std::move(*txn);
    s->ring = impl_->keys();
    return ReadTxn(std::move(s));
}

Result<WriteTxn> Store::write(std::string_view actor) {
    auto txn = impl_->backend->begin(true);
    if (!txn) return std::unexpected(txn.error());
    auto s = std::make_unique<TxnState>();
    s->store = impl_.get();
    s->txn = std::move(*txn);
    s->write = true;
    s->actor = actor;
    s->ring = impl_->keys();
    // Another process may have rotated the key since we loaded it: seal only
    // with the key the store is on now.
    auto id = keycheck_id(s->kv(), impl_->dbs.settings);
    if (!id) return std::unexpected(id.error());
    if (*id != s->ring->current) {
        auto fresh = impl_->reload_keys(*id);
        if (!fresh) return std::unexpected(fresh.error());
        s->ring = *fresh;
    }
    return WriteTxn(std::move(s));
}

Status Store::rehearse(std::string_view actor, const std::function<Status(WriteTxn&)>& fn) {
    PWSYNC_ASSIGN(auto w, write(actor));
    w.s_->in_unit = true;  // a body's commit() must not make the rehearsal real
    return fn(w);          // the destructor rolls back
}

// ----------------------------------------------------------- key rotation

Result<std::uint32_t> Store::rotate_key(std::string_view actor) {
    if (auto st = recover_rotation(*impl_); !st) return std::unexpected(st.error());
    KeyLock lock(impl_->key_file);
    if (!lock.ok()) return fail(Errc::io, "cannot lock " + impl_->key_file + ".lock");

    auto next = crypto::Key::generate();
    if (!next) return std::unexpected(next.error());
    const std::uint32_t next_id = next->id();
    const std::string next_file = impl_->key_file + ".new";
    if (auto st = write_key_file(next_file, *next); !st) return std::unexpected(st.error());
    auto remove_next = [&] { ::unlink(next_file.c_str()); };

    auto w = write(actor);
    if (!w) { remove_next(); return std::unexpected(w.error()); }
    const std::uint32_t old_id = w->s_->ring->current;
    auto ring = std::make_shared<crypto::KeyRing>();
    for (const auto& k : w->s_->ring->keys) {
        auto copy = crypto::Key::from_bytes(k.view());
        if (!copy) { remove_next(); return std::unexpected(copy.error()); }
        ring->keys.push_back(std::move(*copy));
    }
    ring->keys.push_back(std::move(*next));
    ring->current = next_id;
    w->s_->ring = ring;

    auto st = [&]() -> Status {
        TxnState& s = *w->s_;
        auto reseal = [&](auto& rec, const std::string& key) -> Result<bool> {
            bool changed = false;
            for (auto& f : sealed::fields(rec, key)) {
                if (f.value->empty()) continue;
                PWSYNC_ASSIGN(Secret plain, s.open_sealed(*f.value, f.context));
                PWSYNC_ASSIGN(*f.value, s.seal(plain.view(), f.context));
                changed = true;
            }
            return changed;
        };
        const Dbs& d = s.db();
        PWSYNC_TRY(sealed::rewrite_all(s, d.adapters, records::decode_adapter, reseal));
        PWSYNC_TRY(sealed::rewrite_all(s, d.mappings, records::decode_mapping, reseal));
        PWSYNC_TRY(sealed::rewrite_all(s, d.outbox, records::decode_job, reseal));
        PWSYNC_TRY(sealed::rewrite_all(s, d.dead, records::decode_dead, reseal));
        PWSYNC_TRY(sealed::rewrite_all(s, d.pending, records::decode_pending, reseal));
        // Markers are keyed by a hash under the old key: they cannot be
        // carried over, and at worst a damping or echo window is forgotten.
        PWSYNC_TRY(w->purge_markers({}, true));
        auto check = crypto::seal(ring->keys.back(), kKeyCheckText, keycheck_context());
        if (!check) return std::unexpected(check.error());
        if (auto r = s.kv().put(s.db().settings, kSettingKeyCheck, *check); !r) return r;
        return w->audit("key.rotate", impl_->key_file,
                        "from key " + crypto::key_id_hex(old_id) + " to " + crypto::key_id_hex(next_id));
    }();
    if (!st) { remove_next(); return std::unexpected(st.error()); }
    if (auto c = w->commit(); !c) { remove_next(); return std::unexpected(c.error()); }

    // Committed: the data is on the new key. Put it in place of the old one.
    if (::rename(next_file.c_str(), impl_->key_file.c_str()) != 0)
        return fail(Errc::io, "the store was re-sealed but " + next_file + " could not replace " + impl_->key_file + ": " +
                                  std::strerror(errno) + " (the next command finishes the rotation)");
    if (auto d = fsync_dir_of(impl_->key_file); !d) return std::unexpected(d.error());
    auto fresh = impl_->reload_keys(next_id);
    if (!fresh) return std::unexpected(fresh.error());
    return next_id;
}

// ------------------------------------------------------- backup and verify

Status Store::backup(const std::string& dest) const { return impl_->backend->backup(dest); }

std::string Store::backed_up_by() const { return impl_->backend->backed_up_by(); }

Result<StoreInfo> Store::check_restorable() const {
    PWSYNC_ASSIGN(auto txn, impl_->backend->begin(false));
    auto version = read_schema(*txn, impl_->dbs.settings);
    if (!version)
        return fail(version.error().code, "a restore could not be opened: " + version.error().message);
    if (*version != kSchemaVersion)
        return fail(Errc::version, "a restore could not be opened: the store's schema version is " +
                                       std::to_string(*version) + ", this release's " + std::to_string(kSchemaVersion));
    PWSYNC_ASSIGN(auto check, txn->get(impl_->dbs.settings, kSettingKeyCheck));
    if (!check) return fail(Errc::corrupt, "a restore could not be opened: the store has no key check value");
    auto id = crypto::sealed_key_id(*check);
    if (!id) return fail(id.error().code, "a restore could not be opened: " + id.error().message);
    auto opened = crypto::open(*impl_->keys(), *check, keycheck_context());
    if (!opened || opened->view() != kKeyCheckText)
        return fail(Errc::crypto, "a restore could not be opened: the key check value does not open with " +
                                      impl_->key_file);
    return StoreInfo{*version, *id, impl_->dir, impl_->key_file};
}

}  // namespace pwsync::store
