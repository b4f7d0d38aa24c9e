// The LMDB backend: one environment in a folder (data.mdb, lock.mdb), one
// named database per table. Several processes may open it at once; LMDB
// lets one write transaction run at a time across all of them, so a commit
// never fails with Errc::busy and the `next-id` row is a safe sequence.
//
// Location: "<folder>" or "<folder>?map_size=<bytes>" (the map is sparse;
// its size is the most the store can grow to).
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <vector>

#include "backend.h"
#include "codec.h"
#include "mdb.h"

namespace pwsync::store {
namespace {

constexpr std::size_t kDefaultMapSize = std::size_t{16} << 30;
constexpr std::string_view kSettingNextId = kLmdbNextIdSetting;  // the `ids` sequence

struct LmdbConfig {
    std::string dir;
    std::size_t map_size = kDefaultMapSize;
};

Result<LmdbConfig> parse_location(const std::string& location) {
    LmdbConfig c;
    c.dir = location;
    const auto q = location.rfind("?map_size=");
    if (q != std::string::npos) {
        c.dir = location.substr(0, q);
        const std::string_view n = std::string_view(location).substr(q + std::strlen("?map_size="));
        auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), c.map_size);
        if (ec != std::errc{} || end != n.data() + n.size() || c.map_size == 0)
            return fail(Errc::invalid_argument, "bad map_size in the store location " + location);
    }
    if (c.dir.empty()) return fail(Errc::invalid_argument, "no store folder given");
    return c;
}

class LmdbTxn final : public KvTxn {
public:
    LmdbTxn(lmdb::Txn txn, const std::vector<MDB_dbi>& dbis, bool write)
        : txn_(std::move(txn)), dbis_(dbis), write_(write) {}


    Result<std::optional<std::string_view>> get(Table t, std::string_view key) const override {
        return lmdb::get(txn_.get(), dbi(t), key);
    }
    Status put(Table t, std::string_view key, std::string_view value) override {
        return lmdb::put(txn_.get(), dbi(t), key, value);
    }
    Status del(Table t, std::string_view key) override { return lmdb::del(txn_.get(), dbi(t), key); }
    Status rewrite(Table t, const Rewriter& each) override {
        auto cur = lmdb::Cursor::open(txn_.get(), dbi(t));
        if (!cur) return std::unexpected(cur.error());
        MDB_val k{}, v{};
        int rc = mdb_cursor_get(cur->get(), &k, &v, MDB_FIRST);
        for (; rc == MDB_SUCCESS; rc = mdb_cursor_get(cur->get(), &k, &v, MDB_NEXT)) {
            PWSYNC_ASSIGN(auto changed, each(lmdb::view(k), lmdb::view(v)));
            if (!changed) continue;
            MDB_val nv = lmdb::val(*changed);
            PWSYNC_TRY(lmdb::check(mdb_cursor_put(cur->get(), &k, &nv, MDB_CURRENT), "cannot rewrite a record"));
        }
        if (rc != MDB_NOTFOUND) return lmdb::check(rc, "cannot iterate over the store");
        return {};
    }
    Result<std::optional<std::string>> last_key(Table t) const override { return lmdb::last_key(txn_.get(), dbi(t)); }
    Result<std::size_t> entries(Table t) const override { return lmdb::entries(txn_.get(), dbi(t)); }

    // One writer at a time: a counter row costs nothing here (same format
    // as every earlier release).
    Result<std::uint64_t> next_id(Sequence) override {
        if (!write_) return fail(Errc::internal, "an identifier was asked for in a read transaction");
        const MDB_dbi settings = dbi(tables().settings);
        PWSYNC_ASSIGN(auto v, lmdb::get(txn_.get(), settings, kSettingNextId));
        std::uint64_t id = 1;
        if (v) {
            PWSYNC_ASSIGN(id, codec::as_u64(*v));
        }
        std::string next;
        codec::put_varint(next, id + 1);
        PWSYNC_TRY(lmdb::put(txn_.get(), settings, kSettingNextId, next));
        return id;
    }
    Result<std::uint64_t> last_id(Sequence) const override {
        PWSYNC_ASSIGN(auto v, lmdb::get(txn_.get(), dbi(tables().settings), kSettingNextId));
        if (!v) return std::uint64_t{0};
        PWSYNC_ASSIGN(auto next, codec::as_u64(*v));
        return next == 0 ? 0 : next - 1;
    }
    Status advance(Sequence seq, std::uint64_t past) override {
        if (!write_) return fail(Errc::internal, "a sequence was moved in a read transaction");
        PWSYNC_ASSIGN(auto last, last_id(seq));
        if (last >= past) return {};
        std::string next;
        codec::put_varint(next, past + 1);
        return lmdb::put(txn_.get(), dbi(tables().settings), kSettingNextId, next);
    }
    bool active() const override { return txn_.get() != nullptr; }

protected:
    Status do_commit(Durability d) override { return txn_.commit(d == Durability::durable); }
    Status scan_from(Table t, std::string_view prefix, const Visitor& visit, std::string_view from) const override {
        return lmdb::scan(txn_.get(), dbi(t), prefix, visit, from);
    }

private:
    MDB_dbi dbi(Table t) const { return dbis_[static_cast<unsigned>(t)]; }

    lmdb::Txn txn_;
    const std::vector<MDB_dbi>& dbis_;
    bool write_;
};

class LmdbBackend final : public Backend {
public:
    LmdbBackend(LmdbConfig config, lmdb::Env env) : config_(std::move(config)), env_(std::move(env)) {}

    // Opens every table; `create` makes the missing ones (in one write transaction).
    Status open_tables(bool create) {
        auto txn = lmdb::Txn::begin(env_.get(), create);
        if (!txn) return std::unexpected(txn.error());
        dbis_.assign(kDatabaseCount, 0);
        for (std::size_t i = 0; i < kDatabaseCount; ++i) {
            const int rc = mdb_dbi_open(txn->get(), kDatabases[i].name, create ? MDB_CREATE : 0, &dbis_[i]);
            if (rc == MDB_NOTFOUND) return fail(Errc::not_found, std::string("no table ") + kDatabases[i].name);
            PWSYNC_TRY(lmdb::check(rc, std::string("cannot open database ") + kDatabases[i].name));
        }
        return txn->commit();
    }

    Result<std::unique_ptr<KvTxn>> begin(bool write) override {
        PWSYNC_ASSIGN(auto txn, lmdb::Txn::begin(env_.get(), write));
        return std::make_unique<LmdbTxn>(std::move(txn), dbis_, write);
    }
    Status backup(const std::string& dest) const override {
        if (::mkdir(dest.c_str(), 0700) != 0 && errno != EEXIST)
            return fail(Errc::io, "cannot create backup folder " + dest + ": " + std::strerror(errno));
        if (path_exists(dest + "/data.mdb"))
            return fail(Errc::already_exists, "backup folder " + dest + " already holds a store");
        return lmdb::check(mdb_env_copy2(env_.get(), dest.c_str(), MDB_CP_COMPACT),
                           "cannot back up the store to " + dest);
    }
    std::string location() const override { return config_.dir; }
    // In the process: a commit is lost only by a system crash, with pwsyncd.
    bool defers_commits() const override { return true; }

private:
    LmdbConfig config_;
    lmdb::Env env_;
    std::vector<MDB_dbi> dbis_;
};

// The plug-in's entry points, named apart from the other backends' (a
// unity build puts several backends in one translation unit).
namespace lmdb_plugin {

// Enough named databases for every table and some to spare.
constexpr unsigned kMaxDbs = 32;

// Creates the folder (0700) when it is missing.
Status check_vacant(const std::string& location) {
    PWSYNC_ASSIGN(auto config, parse_location(location));
    if (::mkdir(config.dir.c_str(), 0700) != 0 && errno != EEXIST)
        return fail(Errc::io, "cannot create store folder " + config.dir + ": " + std::strerror(errno));
    if (path_exists(config.dir + "/data.mdb")) return fail(Errc::already_exists, "a store already exists in " + config.dir);
    return {};
}

Result<std::unique_ptr<Backend>> create(const std::string& location) {
    PWSYNC_TRY(check_vacant(location));
    PWSYNC_ASSIGN(auto config, parse_location(location));
    PWSYNC_ASSIGN(auto env, lmdb::Env::open(config.dir, config.map_size, kMaxDbs));
    auto b = std::make_unique<LmdbBackend>(std::move(config), std::move(env));
    PWSYNC_TRY(b->open_tables(true));
    return b;
}

Result<std::unique_ptr<Backend>> open(const std::string& location) {
    PWSYNC_ASSIGN(auto config, parse_location(location));
    if (!path_exists(config.dir + "/data.mdb"))
        return fail(Errc::not_found, "no store in " + config.dir + " (create one with: pwsync init)");
    PWSYNC_ASSIGN(auto env, lmdb::Env::open(config.dir, config.map_size, kMaxDbs));
    auto b = std::make_unique<LmdbBackend>(std::move(config), std::move(env));
    // Read-only when every table is there; an older store gets the new ones.
    if (auto st = b->open_tables(false); !st) {
        if (st.error().code != Errc::not_found) return std::unexpected(st.error());
        PWSYNC_TRY(b->open_tables(true));
    }
    return b;
}

// The files create() made; the folder stays (it may hold the key).
Status discard(const std::string& location) {
    PWSYNC_ASSIGN(auto config, parse_location(location));
    for (const char* f : {"/data.mdb", "/lock.mdb"})
        if (::unlink((config.dir + f).c_str()) != 0 && errno != ENOENT)
            return fail(Errc::io, "cannot remove " + config.dir + f + ": " + std::strerror(errno));
    return {};
}

std::string default_key_file(const std::string& location) {
    auto config = parse_location(location);
    return (config ? config->dir : location) + "/master.key";
}

}  // namespace lmdb_plugin
}  // namespace

const BackendType kLmdbBackend{"lmdb", lmdb_plugin::default_key_file, lmdb_plugin::check_vacant,
                               lmdb_plugin::create, lmdb_plugin::open, lmdb_plugin::discard};

}  // namespace pwsync::store
