// pwsync/store.h — the encrypted configuration and state store of pwsync.
//
// A store lives in a backend named by a URI (see StoreOptions): today LMDB,
// one environment in a folder shared by pwsyncd and the pwsync CLI (several
// processes may open it at once). Every secret in it is sealed with
// AES-256-GCM under the master key; principal secrets are slow salted hashes.
// All access goes through transactions: ReadTxn for snapshots, and for
// changes units of work (Store::transact), which a backend may run more than
// once. Mutating calls check the ESSO rules and append an audit record in the
// same transaction, so a change and its audit commit or vanish together.
//
// The contract every backend keeps (docs/ARCHITECTURE.md, "The store seam"):
//  - a read transaction is a consistent snapshot;
//  - a unit of work commits atomically and durably, or not at all; it may
//    be run again after a serialization conflict (Errc::busy), so it must
//    have no effect outside the transaction; a unit marked deferrable
//    (Durability) may be undone by a system crash, but only with every
//    commit after it and with the process (a backend that could lose it
//    alone commits it durably);
//  - identifiers (job and capture ids) come from the backend's sequences
//    and increase; audit ids increase with the time;
//  - errors are pwsync::Errc codes: storage for a backend failure, busy for
//    a conflict that outlasted the retries, version/corrupt for the data.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pwsync/util.h"

namespace pwsync::store {

inline constexpr std::uint32_t kSchemaVersion = 4;  // 2: the gateway's queues and markers; 3: account names; 4: rules

struct StoreOptions {
    // Where the store is: "<backend>:<location>", or a folder (the LMDB
    // backend). Backend settings go in the location, e.g.
    // "lmdb:/var/lib/pwsync?map_size=1073741824".
    std::string uri;
    std::string key_file;                     // empty: the backend's default (LMDB: <folder>/master.key)
    const Clock* clock = nullptr;             // nullptr: the system clock
    // [0, 1) for the pause before a unit of work runs again after a
    // serialization conflict; nullptr: a PRNG seeded by the system.
    std::function<double()> random;
};
using Options = StoreOptions;

// ------------------------------------------------------------------ records

enum class SyncMode { windows, partial, full };
const char* sync_mode_name(SyncMode m) noexcept;
std::optional<SyncMode> parse_sync_mode(std::string_view s) noexcept;

// Global switches: everything starts disabled, as in ESSO.
struct SyncSettings {
    bool windows = false;   // Windows -> External
    bool partial = false;   // External -> Windows, store only
    bool full = false;      // External -> Windows, store and AD
};

struct App {
    std::string name;         // as created; matched case-insensitively
    std::string description;
    std::string contact;
    bool enabled = true;
    std::string adapter;      // empty: belongs to no adapter
    // Privileged accounts (adminCount=1, protected groups) may be mapped in
    // it and get their passwords: off unless an admin turns it on (audited).
    bool allow_privileged = false;
    TimePoint created{};
    TimePoint updated{};
};

struct AdapterFlags {
    bool enabled = false;                  // [enableApp]
    bool sync_to_adapter = false;          // [syncToAdapter]   Windows -> External
    bool sync_from_adapter = false;        // [syncFromAdapter] partial
    bool change_windows_password = false;  // [changeWindowsPassword] full
    bool verify_old_password = true;       // [verifyOldPassword]
    bool send_old_password = false;        // [sendOldPassword]
    bool allow_mapping_conflicts = false;  // [allowMappingConflicts]
};

struct Adapter {
    std::string name;
    std::string type;                      // registered adapter type: ldap, exec, ...
    std::string description;
    AdapterFlags flags;
    std::uint32_t retry_count = 5;
    std::uint32_t retry_delay = 60;        // seconds, first backoff step
    std::uint32_t max_age = 86400;         // seconds a change may wait before it dead-letters
    std::uint32_t concurrency = 1;
    std::uint32_t timeout = 30;            // seconds per delivery attempt
    std::map<std::string, std::string> properties;
    std::vector<std::string> secret_properties;  // names only; values are sealed
    std::string group;                     // empty: in no group
    TimePoint created{};
    TimePoint updated{};
};

// Partial update of an adapter: only the fields that are set change.
struct AdapterUpdate {
    std::optional<std::string> description;
    std::optional<bool> enabled, sync_to_adapter, sync_from_adapter, change_windows_password,
        verify_old_password, send_old_password, allow_mapping_conflicts;
    std::optional<std::uint32_t> retry_count, retry_delay, max_age, concurrency, timeout;
    std::map<std::string, std::string> set_properties;
    std::vector<std::string> unset_properties;   // plain or secret
    std::map<std::string, Secret> set_secrets;
};

struct Group {
    std::string name;
    std::string description;
    TimePoint created{};
};

// stale: the external system is known to be behind (a change not sent).
// awaiting_change: a temporary password was held back (adapter setting
// temporary-passwords = hold); the user's own next change clears it.
enum class MappingStatus { ok, stale, awaiting_change };
const char* mapping_status_name(MappingStatus s) noexcept;  // ok, stale, awaiting-change

struct Mapping {
    std::string app;
    std::string windows;        // as given: DOMAIN\sam, sam or UPN
    std::string external;       // the external user id
    bool enabled = true;
    bool has_credential = false;
    MappingStatus status = MappingStatus::ok;
    std::string object_guid;    // set once the directory resolved the account
    std::string rule;           // the mapping rule that made it; empty: made by hand
    TimePoint created{};
    TimePoint updated{};
    TimePoint credential_updated{};
};

// Which accounts a mapping rule covers: every part given must hold (AND).
// At least one part is required. Privileged and disabled accounts are never
// in a rule's scope, whatever these say (pwsync/rules.h).
struct RuleScope {
    std::string group;   // members of this group, nested membership included: DN or name
    std::string base;    // accounts under this OU / container (DN)
    std::string filter;  // an LDAP filter ANDed with the rest, e.g. (department=IT)
    bool empty() const { return group.empty() && base.empty() && filter.empty(); }
};

// A mapping rule: the accounts in `scope` get a mapping in `app` whose
// external user id is `external` (a template over the account's attributes,
// e.g. {sAMAccountName|lower}), kept current by pwsyncd.
struct Rule {
    std::string name;           // as created; matched case-insensitively
    std::string app;
    RuleScope scope;
    std::string external;       // the template (checked by pwsync/rules.h before it is stored)
    bool enabled = true;
    // A rename (or any change of the template's attributes) changes the
    // external user id of an existing mapping only when allowed: another id
    // may be another account on the other side.
    bool allow_external_updates = false;
    TimePoint created{};
    TimePoint updated{};
    // The last evaluation: when, and the conflicts it found (one line each).
    TimePoint evaluated{};
    std::vector<std::string> conflicts;
};

// A directory account as pwsync last saw it: its objectGUID and the names it
// is known by now, kept current by the watcher (renames, UPN changes,
// deletions). The store keeps the accounts its mappings name, so a capture
// names an account however it likes (sam, DOMAIN\sam, UPN, DN, {GUID}) and
// finds the same mappings, whatever the process saw since it started.
struct AccountNames {
    std::string guid;     // {xxxxxxxx-xxxx-...}, lower case
    std::string sam;
    std::string domain;   // NetBIOS name, for DOMAIN\sam (empty: none)
    std::string upn;      // may be empty
    std::string dn;
    bool deleted = false; // gone from the directory: its names find nothing
    TimePoint updated{};
    // Whether the bare sam is one of its names. Not kept: a gateway of
    // several domains notes accounts with false, as a bare sam then names
    // an account in each (note_account drops the account's claim on it).
    bool sam_alone = true;
    // Every name form of the account, lower case (none when deleted).
    std::vector<std::string> names() const;
};

struct MappingKey {
    std::string app;
    std::string windows;
};

// A mapping's credential sealed ahead of the write that stores it
// (Store::seal_credential, WriteTxn::job_delivered).
struct SealedCredential {
    MappingKey mapping;
    std::string sealed;
};

struct MappingFilter {
    std::optional<std::string> app;
    std::optional<std::string> windows;
    std::optional<std::string> external;
};

// monitor: may only read cn=monitor on the listener.
enum class PrincipalKind { windows, adapter, monitor };
enum class CaptureMode { none, pre_commit, post_commit };
const char* principal_kind_name(PrincipalKind k) noexcept;
const char* capture_mode_name(CaptureMode m) noexcept;

struct Principal {
    std::string name;
    PrincipalKind kind = PrincipalKind::adapter;
    std::string adapter;            // kind adapter: the one adapter it speaks for
    CaptureMode capture = CaptureMode::none;  // kind windows: pre- or post-commit
    std::string certificate_subject;  // optional, for SASL EXTERNAL
    TimePoint created{};
};

struct AuditRecord {
    std::uint64_t id = 0;       // increasing; derived from the time (unix microseconds)
    TimePoint time{};
    std::string actor;          // OS user or principal
    std::string action;         // e.g. "mapping.create"
    std::string object;         // what it acted on
    std::string detail;         // never a secret
};

// ------------------------------------------------------------ gateway state

// One delivery of a password to one external account through one adapter.
// Jobs for the same (adapter, external account) apply in id order; the
// dispatcher sends only the newest and drops the older ones (superseded).
struct Job {
    std::uint64_t id = 0;        // increasing across the store (the backend's id sequence)
    std::string adapter;
    std::string app;             // the mapping (app, windows) the job serves
    std::string windows;
    std::string external;        // the account in the external system
    std::string origin;          // the principal that sent the change
    bool has_old_password = false;
    std::uint32_t attempts = 0;  // failed attempts so far
    TimePoint created{};
    TimePoint next_attempt{};
    std::string last_error;
};

struct DeadLetter {
    Job job;
    std::string reason;
    TimePoint died{};
};

// A pre-commit capture waiting for the directory to confirm the change.
struct PendingCapture {
    std::uint64_t id = 0;
    std::string account;         // as the capture hook named it
    std::string principal;
    TimePoint created{};
    TimePoint expires{};
};

// Remembered (account, password) pairs, kept as keyed hashes only:
// damping (the same change again) and echo (a change pwsync wrote to AD).
enum class MarkerKind { damping, echo };
struct Marker {
    std::string origin;          // echo: the adapter the change came from
    TimePoint expires{};
};
// Where one (account, password) pair's markers of every kind are kept: its
// keyed hash, worked out once for all the markers a change reads and writes.
struct MarkerPlace {
    std::string mac;
};

struct StoreInfo {
    std::uint32_t schema_version = 0;
    std::uint32_t key_id = 0;
    std::string dir;             // the backend's location (LMDB: the folder)
    std::string key_file;
};

// One line of `pwsync store verify`.
struct VerifyReport {
    std::size_t records = 0;
    std::size_t secrets = 0;
    std::vector<std::string> problems;
};

// What `pwsync store migrate` copied and verified.
struct MigrateReport {
    std::string target;            // the target's location
    std::string target_key_file;   // where the target looks for the master key by default
    // Records per table, in kDatabases order, copied and compared one by one.
    std::vector<std::pair<std::string, std::size_t>> tables;
    std::uint64_t last_id = 0;     // the highest job/capture id; the target's ids go on after it
};

struct Counts {
    std::size_t apps = 0, adapters = 0, groups = 0, mappings = 0, principals = 0, audit = 0, rules = 0;
    std::size_t jobs = 0, dead_letters = 0, pending = 0, markers = 0;
};

// ------------------------------------------------------- several gateways
// A store that several gateways share (PostgreSQL) lets one of them at a
// time be the active one, the one that runs the directory watcher and the
// dispatcher, through a lease on the database's clock (docs/HA.md). The
// lease's epoch grows at every change of holder: a write made on the
// strength of a lease checks it in its own transaction
// (WriteTxn::require_lease), so a gateway that lost the lease cannot write
// as the active one after another took it. A store that one process holds
// (LMDB) grants the lease to whoever asks.

// One running gateway: `instance` is new at every start (the lease holder),
// `name` is the administrator's ([gateway] name).
struct GatewayIdentity {
    std::string instance, name, host;
    std::uint32_t pid = 0;
};

struct Lease {
    bool held = false;            // the asker holds it now
    std::uint64_t epoch = 0;      // the holder's term (when held)
    std::chrono::milliseconds valid_for{0};  // from when the database answered (when held)
    std::string holder;           // the holder's name, when another holds it
    // The term follows one that ended without giving the lease up (expired,
    // or taken from a dead instance): its deliveries may still be on the wire.
    bool settle = false;
};

// What `pwsync status` shows of each gateway (times: Unix seconds, by the
// database's clock).
struct GatewayStatus {
    std::string name, host, instance;
    std::uint32_t pid = 0;
    std::int64_t started = 0, last_contact = 0;
    std::int64_t contact_age_ms = 0;  // since its last contact
    bool active = false;              // holds an unexpired lease
    std::int64_t active_since = 0;
    std::uint64_t epoch = 0;
};

// ------------------------------------------------------------- transactions

// When a commit must be on the disk (docs/ARCHITECTURE.md, "Deferrable
// commits").
//  - durable: before the commit returns (every commit unless said otherwise);
//  - deferrable: later, where the backend allows it (LMDB; PostgreSQL
//    commits durably). A system crash (power, kernel; not a crash of the
//    process) may undo it, and then also every commit after it: what
//    survives is what a crash of the process at an earlier moment would
//    have left. For records whose loss only repeats work that may be repeated
//    (a delivery's outcome: the delivery is sent again, as after a crash
//    between sending and recording). A durable commit after it makes it
//    durable too.
enum class Durability { durable, deferrable };

class Store;
struct TxnState;

class ReadTxn {
public:
    ReadTxn(ReadTxn&&) noexcept;
    ReadTxn& operator=(ReadTxn&&) noexcept;
    virtual ~ReadTxn();

    Result<SyncSettings> sync_settings() const;

    Result<App> app(std::string_view name) const;
    Result<std::vector<App>> apps() const;

    Result<Adapter> adapter(std::string_view name) const;
    Result<std::vector<Adapter>> adapters() const;
    Result<Secret> adapter_secret(std::string_view adapter, std::string_view property) const;
    // Applications that belong to the adapter.
    Result<std::vector<std::string>> adapter_apps(std::string_view adapter) const;

    Result<Group> group(std::string_view name) const;
    Result<std::vector<Group>> groups() const;
    Result<std::vector<std::string>> group_members(std::string_view group) const;

    Result<Mapping> mapping(const MappingKey& key) const;
    Result<std::vector<Mapping>> mappings(const MappingFilter& filter = {}) const;
    // Visits mappings in key order without building a vector (large stores).
    Status for_each_mapping(const MappingFilter& filter,
                            const std::function<bool(const Mapping&)>& visit) const;
    // The mappings of an external user in one application (index lookup).
    Result<std::vector<Mapping>> mappings_by_external(std::string_view app,
                                                      std::string_view external) const;
    // The stored external credential; not_found when none was set.
    Result<Secret> mapping_credential(const MappingKey& key) const;

    // The account that any of its names (or its GUID) names now; nullopt
    // when the store does not know the name.
    Result<std::optional<AccountNames>> account(std::string_view name) const;
    // Every mapping of the account `name` names: those resolved to its GUID,
    // and those made with one of its names not resolved yet. When the name is
    // unknown, the mappings made with that very name whose account is not
    // known otherwise.
    Result<std::vector<Mapping>> account_mappings(std::string_view name) const;
    // Mappings whose account the store does not know yet (not resolved, or
    // resolved before the store kept names), at most `limit` (0: all).
    Result<std::vector<Mapping>> unresolved_mappings(std::size_t limit = 0) const;

    Result<Rule> rule(std::string_view name) const;
    Result<std::vector<Rule>> rules() const;
    // The mappings a rule made (those of its application that name it).
    Result<std::vector<Mapping>> rule_mappings(std::string_view rule) const;

    Result<Principal> principal(std::string_view name) const;
    // The name of the principal whose TLS client certificate has this
    // subject (compared case-insensitively). A record this release cannot
    // read does not hide the others: its error is returned only when no
    // readable principal has the subject (it may be the one); not_found
    // when none has it.
    Result<std::string> principal_with_certificate(std::string_view subject) const;
    Result<std::vector<Principal>> principals() const;
    // True when the secret matches (constant time, slow hash).
    Result<bool> verify_principal_secret(std::string_view name, std::string_view secret) const;
    // Names the principal's current secret (its hash's random salt, no
    // secret): it changes whenever a secret is set, so a cache of verified
    // binds keyed with it forgets a replaced or re-created principal.
    Result<std::string> principal_secret_version(std::string_view name) const;

    Result<std::vector<AuditRecord>> audit(TimePoint since = {}, std::size_t limit = 0) const;
    Result<Counts> counts() const;
    // Jobs in the outbox (counts().jobs without counting the other tables,
    // which on PostgreSQL means reading them).
    Result<std::size_t> queued_jobs() const;

    // Gateway state.
    Result<Job> job(std::uint64_t id) const;
    // Reads ahead what recording these jobs' outcomes reads (each job and
    // its mapping): one round trip on PostgreSQL instead of two per job,
    // nothing on LMDB. A hint; an error is a read's.
    Status prefetch_jobs(std::span<const Job> jobs) const;
    // All jobs in id order, or those of one adapter.
    Result<std::vector<Job>> jobs(std::string_view adapter = {}) const;
    // The jobs of one (adapter, external account), oldest first.
    Result<std::vector<Job>> jobs_for_target(std::string_view adapter, std::string_view external) const;
    // The outbox by target, from its index alone (no job is decoded):
    // lower(adapter), lower(external account) and the job ids oldest first,
    // in key order; only the targets of `adapter` (lower case) when given.
    // `visit` returns false to stop. It must not write.
    using TargetVisitor = std::function<Result<bool>(std::string_view adapter, std::string_view external,
                                                     const std::vector<std::uint64_t>& ids)>;
    Status for_each_target(const TargetVisitor& visit, std::string_view adapter = {}) const;
    // lower(adapter) of every adapter with a job in the outbox, in order: one
    // index lookup per adapter, however many jobs each has.
    Result<std::vector<std::string>> target_adapters() const;
    Result<Secret> job_password(std::uint64_t id) const;
    Result<Secret> job_old_password(std::uint64_t id) const;
    Result<std::vector<DeadLetter>> dead_letters() const;
    Result<std::vector<PendingCapture>> pending_captures(std::string_view account = {}) const;
    Result<Secret> pending_password(std::uint64_t id) const;
    // A live marker for (account, password) at `now`, if one exists.
    Result<std::optional<Marker>> marker(MarkerKind kind, std::string_view account, std::string_view password,
                                         TimePoint now) const;
    Result<MarkerPlace> marker_place(std::string_view account, std::string_view password) const;
    Result<std::optional<Marker>> marker(MarkerKind kind, const MarkerPlace& place, TimePoint now) const;
    Result<std::optional<std::string>> cursor(std::string_view name) const;

protected:
    friend class Store;
    explicit ReadTxn(std::unique_ptr<TxnState> state);
    std::unique_ptr<TxnState> s_;
};

class WriteTxn final : public ReadTxn {
public:
    WriteTxn(WriteTxn&&) noexcept;
    WriteTxn& operator=(WriteTxn&&) noexcept;
    ~WriteTxn() override;  // aborts unless committed

    // Commits every change of this transaction; durable: on the disk
    // (fsync) before it returns. Inside Store::transact the store commits:
    // `fn` must not.
    Status commit(Durability d = Durability::durable);

    // Fencing: fails (Errc::refused) unless `instance` still holds the lease
    // in term `epoch` at this moment of the transaction, so that what the
    // transaction writes is ordered before any other gateway's takeover.
    Status require_lease(std::string_view instance, std::uint64_t epoch);

    Status set_sync(SyncMode mode, bool enabled);

    Status create_app(App app);
    Status update_app(const App& app);   // description, contact, enabled
    Status delete_app(std::string_view name);

    Status create_adapter(Adapter adapter, std::map<std::string, Secret> secrets = {});
    Status update_adapter(std::string_view name, AdapterUpdate update);
    Status delete_adapter(std::string_view name);
    Status add_app_to_adapter(std::string_view adapter, std::string_view app);
    Status remove_app_from_adapter(std::string_view app);

    Status create_group(Group group);
    Status delete_group(std::string_view name);
    Status add_to_group(std::string_view group, std::string_view adapter);
    Status remove_from_group(std::string_view group, std::string_view adapter);

    Status create_mapping(Mapping mapping);
    Status delete_mapping(const MappingKey& key);
    Status set_mapping_enabled(const MappingKey& key, bool enabled);
    Status set_mapping_credential(const MappingKey& key, const Secret& credential);
    Status set_mapping_status(const MappingKey& key, MappingStatus status);
    Status set_mapping_guid(const MappingKey& key, std::string_view object_guid);
    // A new external user id (a rule's template gave another one); the
    // mapping-conflict rule applies as in create_mapping.
    Status set_mapping_external(const MappingKey& key, std::string_view external);

    // Mapping rules. The template is not parsed here (pwsync/rules.h does).
    Status create_rule(Rule rule);
    // app, scope, external, enabled, allow_external_updates.
    Status update_rule(const Rule& rule);
    // `keep_mappings`: the rule's mappings stay, as hand-made ones; else
    // they are deleted with it. Each is audited.
    Status delete_rule(std::string_view name, bool keep_mappings);
    // Records an evaluation's conflicts; audits those not reported by the
    // previous evaluation ("rule.conflict"), so a standing conflict is
    // audited once, not at every watcher cycle.
    Status note_rule_evaluation(std::string_view name, std::vector<std::string> conflicts);
    // Records what the directory calls an account now. Empty fields keep
    // what was stored (incremental watcher results carry only what changed).
    // Names it no longer has stop naming it; mappings made with one of its
    // names that were not resolved get its GUID. Returns how many did.
    Result<std::size_t> note_account(const AccountNames& account);
    // The account was deleted in the directory: its names find nothing any
    // more; its mappings keep the GUID (and are not given to a namesake).
    Status forget_account(std::string_view guid);
    // A lookup's answer for a mapping's account, asked at `asked` (the
    // clock of the store's writers, which the hosts keep in step as the
    // audit's times need): the account's names recorded (note_account)
    // unless the store heard of the account at or after `asked` (a watcher's
    // rename or deletion is newer than the answer, and stays), and the
    // mapping given its GUID. `guid_before`: the mapping's objectGUID when
    // it was read for the lookup. False when the mapping is gone or was
    // resolved to another account meanwhile (its GUID neither `guid_before`
    // nor the answer's): nothing is written.
    Result<bool> record_resolution(const MappingKey& key, std::string_view guid_before, const AccountNames& account,
                                   TimePoint asked);
    // Reads the credential and records in the audit that it was revealed.
    Result<Secret> reveal_mapping_credential(const MappingKey& key);

    Status create_principal(Principal principal, const Secret& secret);
    Status delete_principal(std::string_view name);

    // Gateway state. Passwords are sealed; the audit never holds them.
    Result<std::uint64_t> enqueue_job(Job job, const Secret& password, const Secret* old_password = nullptr);
    // Delivered: the job goes, and its mapping's credential becomes the
    // password. `ahead`: that password sealed by Store::seal_credential,
    // stored as it is when it is the job's mapping's and sealed under the
    // current key (otherwise, or when null, sealed here from the job).
    Status job_delivered(std::uint64_t id, const SealedCredential* ahead = nullptr);
    Status job_retry(std::uint64_t id, TimePoint next_attempt, std::string_view error);
    Status job_superseded(std::uint64_t id, std::uint64_t by);
    Status job_dead(std::uint64_t id, std::string_view reason);
    // `pwsync queue retry|drop` on a dead letter.
    Status dead_letter_retry(std::uint64_t id);
    Status dead_letter_drop(std::uint64_t id);
    Result<std::uint64_t> add_pending_capture(PendingCapture capture, const Secret& password);
    // Audited as "capture.<why>"; `note` is added to the audit's detail.
    Status remove_pending_capture(std::uint64_t id, std::string_view why, std::string_view note = {});
    Status set_marker(MarkerKind kind, std::string_view account, std::string_view password, const Marker& marker);
    Status set_marker(MarkerKind kind, const MarkerPlace& place, const Marker& marker);
    // Removes expired markers (all when `all`); returns how many went.
    Result<std::size_t> purge_markers(TimePoint now, bool all = false);
    Status set_cursor(std::string_view name, std::string_view value);

    // Appends an audit record (the store adds time and id).
    Status audit(std::string_view action, std::string_view object, std::string_view detail = {});

private:
    friend class Store;
    using ReadTxn::ReadTxn;
};

// ------------------------------------------------------------------- store

class Store {
public:
    // Creates the store in its backend (LMDB: the folder, 0700), the master
    // key (0600) and the tables. Fails when a store already exists there.
    static Result<Store> init(const StoreOptions& options);
    // Opens an existing store in the backend `options.uri` names: checks the
    // key file's mode, the key, and the schema version (running migrations
    // when the store is older).
    static Result<Store> open(const StoreOptions& options);

    Store(Store&&) noexcept;
    Store& operator=(Store&&) noexcept;
    ~Store();

    Result<ReadTxn> read() const;
    // A mapping's credential sealed ahead of the write that stores it
    // (WriteTxn::job_delivered): the cipher's work done by the caller,
    // outside the writers' turn.
    Result<SealedCredential> seal_credential(const MappingKey& key, const Secret& credential) const;

    // A unit of work: runs `fn` in a write transaction and commits it.
    // `actor` is written into every audit record `fn` makes.
    //  - Retryable: when the commit loses a serialization conflict
    //    (Errc::busy) the store runs `fn` again on a fresh transaction, up to
    //    a few times. So `fn` must have no effect outside the transaction:
    //    no network calls, no deliveries, no counters or logs that claim the
    //    change happened; values it computes go out through captures that
    //    it assigns (not appends to) on every run.
    //  - `fn` must not commit. When it fails, its writes are rolled back and
    //    its error returned.
    //  - Group commit: units arriving at the same moment share one write
    //    transaction, none nested (when one `fn` fails the transaction is
    //    dropped and the others run again without it), so one commit (one
    //    fsync) makes them all durable. Returns once the commit holding this
    //    unit's writes is durable.
    //  - Durability::deferrable: returns once committed, without waiting
    //    for the disk, unless a durable unit shares its commit.
    Status transact(std::string_view actor, const std::function<Status(WriteTxn&)>& fn,
                    Durability durability = Durability::durable);
    // A dry run: runs `fn` in a write transaction and rolls it back, so a
    // tool can show what a change would do (`import esso --dry-run`).
    Status rehearse(std::string_view actor, const std::function<Status(WriteTxn&)>& fn);
    // A write transaction the caller commits itself. It is not retried (a
    // backend with concurrent writers may fail its commit with Errc::busy),
    // so pwsync's own code writes through transact(); this is for tests
    // that set up a store step by step.
    Result<WriteTxn> write(std::string_view actor);

    // New master key; every secret re-sealed in one transaction.
    Result<std::uint32_t> rotate_key(std::string_view actor);
    // A compact, consistent copy of the store into `dest`, a location of
    // the same backend (LMDB: a folder); the key is not copied.
    Status backup(const std::string& dest) const;
    // Decodes every record, opens every secret, checks every index.
    Result<VerifyReport> verify() const;
    // How the store is backed up when backup() does not copy it (PostgreSQL:
    // by the database's own backups), for the administrator; else empty.
    std::string backed_up_by() const;
    // Reads what a restored copy of the store needs to be opened (the
    // schema version and the key check value) afresh from the store; a
    // clear error when either is missing or does not match the key.
    Result<StoreInfo> check_restorable() const;
    // Copies the whole store into `target_uri`, a location of any backend
    // that holds no store yet (already_exists otherwise, nothing written):
    // one snapshot of this store, one write transaction of the target
    // (sealed secrets copied as they are: the target uses this store's
    // master key), then every record compared with the source and the
    // target opened with the key; a "store.migrate" audit record in the
    // target. On any failure the target is removed again.
    Result<MigrateReport> migrate(const std::string& target_uri, std::string_view actor) const;
    // Several gateways on this store (see "several gateways" above). A
    // store that allows one process only answers shared() false and grants
    // every heartbeat the lease.
    bool shared() const;
    // Records that `me` is alive, and takes or keeps the lease for `ttl` when
    // `want` (a gateway that is stopping asks for nothing).
    // `predecessor`: a previous instance of this gateway known to be gone
    // (same host, its process ended): its lease is taken at once instead
    // of after it expires.
    Result<Lease> heartbeat(const GatewayIdentity& me, std::chrono::milliseconds ttl, bool want,
                            std::string_view predecessor = {});
    // Gives the lease up at once (a clean stop), if `me` holds it in `epoch`.
    Status release_lease(const GatewayIdentity& me, std::uint64_t epoch);
    // The gateways that reported in the last `within`, newest contact first.
    Result<std::vector<GatewayStatus>> gateways(std::chrono::seconds within) const;
    // Locks that every gateway on this store respects, one per key (an
    // account), held until the handle ends: full sync's write of an account
    // into AD and its store update do not interleave with another
    // gateway's. Taken in key order (no deadlock between takers of several).
    // A store of one process: nothing to take (in-process locks suffice).
    class KeyLocks {
    public:
        KeyLocks() = default;
        KeyLocks(KeyLocks&&) noexcept = default;
        KeyLocks& operator=(KeyLocks&&) noexcept = default;
        ~KeyLocks();
        struct Held {
            virtual ~Held() = default;
        };
        explicit KeyLocks(std::unique_ptr<Held> held) : held_(std::move(held)) {}

    private:
        std::unique_ptr<Held> held_;
    };
    Result<KeyLocks> lock_keys(std::vector<std::string> keys);
    StoreInfo info() const;
    // Write transactions this handle has committed (a group commit counts
    // once): what a path costs in fsyncs, for tests.
    std::uint64_t commits() const;
    // Of those, the ones made durable before they returned.
    std::uint64_t durable_commits() const;
    // Writers of transact() queued for a batch: the running batch takes them
    // in before its commit, or the next one does (tests use it to form a
    // batch).
    std::size_t queued_writers() const;
    // Where the writer's turn of transact() went since the store was
    // opened: running the units of work once the write lock is granted
    // (PostgreSQL: with each statement's round trip), and committing them
    // (LMDB: writing the pages and flushing them; PostgreSQL: the COMMIT
    // and its synchronous_commit wait). batches and units count commits
    // that succeeded. The turn is serial, so this says whether the writer
    // is the limit and how much of it is the commit (steady clock, read
    // three times per batch). gathering: the batch's leader waiting, with
    // the write transaction open, for more writers to join its commit
    // (after a commit of many units); the turn is held but idle.
    struct WriterTime {
        std::uint64_t batches = 0, units = 0;
        std::chrono::nanoseconds running{0}, committing{0}, gathering{0};
    };
    WriterTime writer_time() const;

    struct Impl;  // opaque

private:
    explicit Store(std::unique_ptr<Impl> impl);
    // One attempt of transact(): the group commit.
    Status commit_group(std::string_view actor, const std::function<Status(WriteTxn&)>& body, Durability durability);
    std::unique_ptr<Impl> impl_;
};

// Checks that a key file exists, is a regular file and is not readable or
// writable by group or others. Every command calls this before using a key.
Status check_key_file_mode(const std::string& path);

// Whether a mapping may hold `id` as its external user (what create_mapping
// checks): not empty, at most 256 bytes, UTF-8, no control character, no
// leading or trailing space.
Status check_external_user(std::string_view id);

}  // namespace pwsync::store
