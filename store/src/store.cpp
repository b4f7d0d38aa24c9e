// Opening, creating, rotating, backing up and verifying a store.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "codec.h"
#include "impl.h"
#include "sealed_fields.h"

namespace pwsync::store {
namespace {

std::string key_path(const Options& o) { return o.key_file.empty() ? o.dir + "/master.key" : o.key_file; }

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// Serialises key rotation and the recovery of an interrupted one between
// processes; released when the file descriptor closes.
class KeyLock {
public:
    explicit KeyLock(const std::string& key_file) {
        fd_ = ::open((key_file + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd_ >= 0) ok_ = ::flock(fd_, LOCK_EX) == 0;
    }
    KeyLock(const KeyLock&) = delete;
    KeyLock& operator=(const KeyLock&) = delete;
    ~KeyLock() { if (fd_ >= 0) ::close(fd_); }
    bool ok() const { return ok_; }

private:
    int fd_ = -1;
    bool ok_ = false;
};

// Schema migrations: migrations[i] takes a store from version i+1 to i+2,
// inside the write transaction that also creates any new database.
// 1 -> 2 adds the gateway's databases and needs nothing else.
// 2 -> 3 adds the account names: every mapping goes into the objectGUID index
// (when it has one) and on the unresolved list, for pwsyncd to resolve.
using Migration = Status (*)(MDB_txn*, const Dbs&);
Status index_mappings(MDB_txn* txn, const Dbs& d) {
    std::vector<Mapping> all;
    PWSYNC_TRY(lmdb::scan(txn, d.mappings, "", [&](std::string_view, std::string_view v) -> Result<bool> {
        PWSYNC_ASSIGN(auto rec, records::decode_mapping(v));
        all.push_back(std::move(rec.mapping));
        return true;
    }));
    for (const auto& m : all) {
        if (!m.object_guid.empty())
            PWSYNC_TRY(lmdb::put(txn, d.map_by_guid, guid_index_key(m.object_guid, m.app, m.windows), ""));
        PWSYNC_TRY(lmdb::put(txn, d.map_unresolved, mapping_key(m.app, m.windows), ""));
    }
    return {};
}
constexpr Migration kMigrations[] = {nullptr, index_mappings};
static_assert(std::size(kMigrations) == kSchemaVersion - 1);

Status open_databases(MDB_txn* txn, Dbs& dbs, bool create) {
    for (std::size_t i = 0; i < kDatabaseCount; ++i) {
        const int rc = mdb_dbi_open(txn, kDatabases[i].name, create ? MDB_CREATE : 0, &(dbs.*kDatabases[i].member));
        if (rc == MDB_NOTFOUND)
            return fail(Errc::version, std::string("the store has no database '") + kDatabases[i].name + "'");
        if (auto st = lmdb::check(rc, std::string("cannot open database ") + kDatabases[i].name); !st) return st;
    }
    return {};
}

Result<std::uint32_t> read_schema(MDB_txn* txn, MDB_dbi settings) {
    auto v = lmdb::get(txn, settings, kSettingSchema);
    if (!v) return std::unexpected(v.error());
    if (!*v) return fail(Errc::corrupt, "the store has no schema version");
    auto n = codec::as_u64(**v);
    if (!n) return std::unexpected(n.error());
    return static_cast<std::uint32_t>(*n);
}

Status write_schema(MDB_txn* txn, MDB_dbi settings, std::uint32_t version) {
    std::string v;
    codec::put_varint(v, version);
    return lmdb::put(txn, settings, kSettingSchema, v);
}

Result<std::uint32_t> keycheck_id(MDB_txn* txn, MDB_dbi settings) {
    auto v = lmdb::get(txn, settings, kSettingKeyCheck);
    if (!v) return std::unexpected(v.error());
    if (!*v) return fail(Errc::corrupt, "the store has no key check value");
    return crypto::sealed_key_id(**v);
}

std::string keycheck_context() { return crypto::seal_context("settings", kSettingKeyCheck, "value"); }

// Finishes or undoes a rotation that stopped between its commit and the
// rename of the new key file: the key check value says which key the data uses.
Status recover_rotation(Store::Impl& s) {
    const std::string next = s.key_file + ".new";
    if (!exists(next)) return {};
    KeyLock lock(s.key_file);
    if (!lock.ok()) return fail(Errc::io, "cannot lock " + s.key_file + ".lock");
    if (!exists(next)) return {};
    auto ring = load_key_ring(s.key_file);
    if (!ring) return std::unexpected(ring.error());
    auto txn = lmdb::Txn::begin(s.env.get(), false);
    if (!txn) return std::unexpected(txn.error());
    auto id = keycheck_id(txn->get(), s.dbs.settings);
    if (!id) return std::unexpected(id.error());
    txn->abort();
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
    const crypto::Key* key = ring->find(ring->current);
    if (key == nullptr) return fail(Errc::internal, "the current key is missing from the key ring");
    return crypto::seal(*key, plaintext, context);
}

// --------------------------------------------------------------- lifecycle

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;
Store::~Store() = default;

Result<Store> Store::init(const Options& options) {
    if (options.dir.empty()) return fail(Errc::invalid_argument, "no store folder given");
    auto impl = std::make_unique<Impl>();
    impl->dir = options.dir;
    impl->key_file = key_path(options);
    impl->clock = options.clock != nullptr ? options.clock : &impl->system_clock;

    if (::mkdir(options.dir.c_str(), 0700) != 0 && errno != EEXIST)
        return fail(Errc::io, "cannot create store folder " + options.dir + ": " + std::strerror(errno));
    if (exists(options.dir + "/data.mdb")) return fail(Errc::already_exists, "a store already exists in " + options.dir);
    auto key = crypto::Key::generate();
    if (!key) return std::unexpected(key.error());
    if (auto st = write_key_file(impl->key_file, *key); !st) return std::unexpected(st.error());

    auto env = lmdb::Env::open(options.dir, options.map_size, 32);
    if (!env) return std::unexpected(env.error());
    impl->env = std::move(*env);
    auto ring = std::make_shared<crypto::KeyRing>();
    ring->current = key->id();
    ring->keys.push_back(std::move(*key));
    impl->ring = ring;

    auto txn = lmdb::Txn::begin(impl->env.get(), true);
    if (!txn) return std::unexpected(txn.error());
    if (auto st = open_databases(txn->get(), impl->dbs, true); !st) return std::unexpected(st.error());
    if (auto st = write_schema(txn->get(), impl->dbs.settings, kSchemaVersion); !st) return std::unexpected(st.error());
    auto check = crypto::seal(ring->keys.front(), kKeyCheckText, keycheck_context());
    if (!check) return std::unexpected(check.error());
    if (auto st = lmdb::put(txn->get(), impl->dbs.settings, kSettingKeyCheck, *check); !st)
        return std::unexpected(st.error());
    if (auto st = txn->commit(); !st) return std::unexpected(st.error());
    return Store(std::move(impl));
}

Result<Store> Store::open(const Options& options) {
    if (options.dir.empty()) return fail(Errc::invalid_argument, "no store folder given");
    auto impl = std::make_unique<Impl>();
    impl->dir = options.dir;
    impl->key_file = key_path(options);
    impl->clock = options.clock != nullptr ? options.clock : &impl->system_clock;

    if (!exists(options.dir + "/data.mdb"))
        return fail(Errc::not_found, "no store in " + options.dir + " (create one with: pwsync init)");
    if (auto st = check_key_file_mode(impl->key_file); !st) return std::unexpected(st.error());
    auto env = lmdb::Env::open(options.dir, options.map_size, 32);
    if (!env) return std::unexpected(env.error());
    impl->env = std::move(*env);

    // Schema: open the databases read-only when current, migrate when older.
    {
        auto txn = lmdb::Txn::begin(impl->env.get(), false);
        if (!txn) return std::unexpected(txn.error());
        if (auto st = lmdb::check(mdb_dbi_open(txn->get(), "settings", 0, &impl->dbs.settings),
                                  "cannot open the settings database");
            !st)
            return std::unexpected(st.error());
        auto version = read_schema(txn->get(), impl->dbs.settings);
        if (!version) return std::unexpected(version.error());
        if (*version > kSchemaVersion)
            return fail(Errc::version, "the store has schema version " + std::to_string(*version) +
                                           "; this release reads up to " + std::to_string(kSchemaVersion));
        if (*version == kSchemaVersion) {
            if (auto st = open_databases(txn->get(), impl->dbs, false); !st) return std::unexpected(st.error());
            if (auto st = txn->commit(); !st) return std::unexpected(st.error());
        } else {
            // Committed, not aborted: LMDB keeps the settings handle opened
            // in a read transaction only when it commits.
            if (auto st = txn->commit(); !st) return std::unexpected(st.error());
            auto w = lmdb::Txn::begin(impl->env.get(), true);
            if (!w) return std::unexpected(w.error());
            auto v = read_schema(w->get(), impl->dbs.settings);  // another process may have migrated meanwhile
            if (!v) return std::unexpected(v.error());
            if (auto st = open_databases(w->get(), impl->dbs, true); !st) return std::unexpected(st.error());
            for (std::uint32_t from = *v; from < kSchemaVersion; ++from) {
                const Migration m = kMigrations[from - 1];
                if (m != nullptr)
                    if (auto st = m(w->get(), impl->dbs); !st) return std::unexpected(st.error());
            }
            if (auto st = write_schema(w->get(), impl->dbs.settings, kSchemaVersion); !st)
                return std::unexpected(st.error());
            if (auto st = w->commit(); !st) return std::unexpected(st.error());
        }
    }

    if (auto st = recover_rotation(*impl); !st) return std::unexpected(st.error());

    // The key: the key check value must open with it.
    auto loaded = load_key_ring(impl->key_file);
    if (!loaded) return std::unexpected(loaded.error());
    auto txn = lmdb::Txn::begin(impl->env.get(), false);
    if (!txn) return std::unexpected(txn.error());
    auto check = lmdb::get(txn->get(), impl->dbs.settings, kSettingKeyCheck);
    if (!check) return std::unexpected(check.error());
    if (!*check) return fail(Errc::corrupt, "the store has no key check value");
    auto id = crypto::sealed_key_id(**check);
    if (!id) return std::unexpected(id.error());
    auto opened = crypto::open(*loaded, **check, keycheck_context());
    if (!opened || opened->view() != kKeyCheckText)
        return fail(Errc::crypto, "the master key " + impl->key_file + " does not open the store in " + options.dir);
    loaded->current = *id;
    impl->ring = std::make_shared<const crypto::KeyRing>(std::move(*loaded));
    return Store(std::move(impl));
}

StoreInfo Store::info() const {
    return StoreInfo{kSchemaVersion, impl_->keys()->current, impl_->dir, impl_->key_file};
}

// ------------------------------------------------------------ transactions

Result<ReadTxn> Store::read() const {
    auto txn = lmdb::Txn::begin(impl_->env.get(), false);
    if (!txn) return std::unexpected(txn.error());
    auto s = std::make_unique<TxnState>();
    s->store = impl_.get();
    s->txn = std::move(*txn);
    s->ring = impl_->keys();
    return ReadTxn(std::move(s));
}

Result<WriteTxn> Store::write(std::string_view actor) {
    auto txn = lmdb::Txn::begin(impl_->env.get(), true);
    if (!txn) return std::unexpected(txn.error());
    auto s = std::make_unique<TxnState>();
    s->store = impl_.get();
    s->txn = std::move(*txn);
    s->write = true;
    s->actor = actor;
    s->ring = impl_->keys();
    // Another process may have rotated the key since we loaded it: seal only
    // with the key the store is on now.
    auto id = keycheck_id(s->t(), impl_->dbs.settings);
    if (!id) return std::unexpected(id.error());
    if (*id != s->ring->current) {
        auto fresh = impl_->reload_keys(*id);
        if (!fresh) return std::unexpected(fresh.error());
        s->ring = *fresh;
    }
    return WriteTxn(std::move(s));
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
        if (auto r = lmdb::put(s.t(), s.db().settings, kSettingKeyCheck, *check); !r) return r;
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

Status Store::backup(const std::string& dest) const {
    if (::mkdir(dest.c_str(), 0700) != 0 && errno != EEXIST)
        return fail(Errc::io, "cannot create backup folder " + dest + ": " + std::strerror(errno));
    if (exists(dest + "/data.mdb")) return fail(Errc::already_exists, "backup folder " + dest + " already holds a store");
    return lmdb::check(mdb_env_copy2(impl_->env.get(), dest.c_str(), MDB_CP_COMPACT), "cannot back up the store to " + dest);
}

}  // namespace pwsync::store
