// pwsync/directory.h — the LDAP client of pwsync: connections to Active
// Directory / Samba AD (and to external LDAP directories), binds, AD password
// writes, error decoding, account resolution and change watching.
//
// Everything returns LdapResult / LdapStatus: an LdapError carries the LDAP
// result code, the AD code parsed from the server's text, that text, and a
// verdict (permanent or retryable). It converts to pwsync::Error, so
// PWSYNC_TRY / PWSYNC_ASSIGN work across both.
//
// Passwords are pwsync::Secret. None ever appears in an error message.
// The first Connection::open sets SIGPIPE to SIG_IGN when it is SIG_DFL, so
// that a server closing the connection fails a write instead of killing the
// process.
// libldap builds its own copies of a request while sending it; those buffers
// are freed by libldap without being wiped (a limit of the library).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pwsync/ini.h"
#include "pwsync/util.h"

namespace pwsync::directory {

// ------------------------------------------------------------------ errors

enum class Verdict { permanent, retryable };

// Why an operation failed, in words the gateway can act on.
enum class Reason {
    policy,                   // AD refused the password (length, complexity, history, age)
    wrong_old_password,       // user change: the old password did not match
    invalid_credentials,      // bind refused (wrong password, disabled, expired, locked)
    insufficient_rights,      // the bound identity may not do this
    no_such_object,           // no such entry / account
    confidentiality_required, // needs TLS or sealing (server said so, or we refused)
    unwilling,                // the server will not perform it
    tls,                      // TLS setup or certificate verification failed
    invalid_request,          // bad input, bad syntax, protocol or client-side error
    ambiguous,                // a name matched several accounts
    server_down,              // connection lost or refused
    timeout,                  // no answer in time
    busy,                     // server busy / unavailable
    other,
};

struct LdapError {
    Errc code = Errc::internal;          // pwsync's code: unavailable/timeout when retryable
    Verdict verdict = Verdict::permanent;
    Reason reason = Reason::other;
    int ldap_code = 0;                   // RFC 4511 result code, or libldap's negative API code
    std::uint32_t ad_code = 0;           // leading hex code of an AD diagnostic (0x52D), 0: none
    std::optional<std::uint32_t> ad_data;  // "data 52e" of an AD bind failure
    std::string server_text;             // the server's diagnostic text (never holds a password)
    std::string message;                 // for an admin: what failed, why, and the server's text

    bool retryable() const noexcept { return verdict == Verdict::retryable; }
    operator Error() const { return Error{code, message}; }  // NOLINT: implicit on purpose
};

template <class T>
using LdapResult = std::expected<T, LdapError>;
using LdapStatus = LdapResult<void>;

const char* verdict_name(Verdict v) noexcept;
const char* reason_name(Reason r) noexcept;

// Decodes a failed LDAP operation: `context` says what was attempted
// ("modify CN=x"), `server_text` is the diagnostic message.
LdapError decode_error(int ldap_code, std::string_view server_text, std::string_view context);
// A failure found on this side (bad input, refusal) with its verdict.
LdapError client_error(Reason reason, std::string message);

// ----------------------------------------------------------- connections

enum class Protection {
    tls,        // ldaps://, or ldap:// with StartTLS (the default)
    sasl_seal,  // ldap:// without TLS: only with GSSAPI, which must seal (SSF >= 56)
    none,       // ldap:// with neither: reads only, password operations are refused
};

enum class BindMethod { anonymous, simple, gssapi };

struct Credentials {
    BindMethod method = BindMethod::anonymous;
    std::string name;           // simple: DN or UPN; gssapi: principal (empty: first in keytab)
    Secret password;            // simple
    std::string keytab;         // gssapi: client keytab
    std::string krb5_config;    // gssapi: sets KRB5_CONFIG for the whole process when not empty
};

struct ConnectOptions {
    std::vector<std::string> uris;       // tried in order; the first that answers wins
    Protection protection = Protection::tls;
    std::string ca_file;                 // CA certificates (PEM); empty: the system's
    bool insecure_skip_verify = false;   // accept any certificate: loud warning
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds op_timeout{30000};
    Credentials credentials;
    // Receives loud warnings (verification off, unprotected connection).
    std::function<void(std::string_view)> warn;

    ConnectOptions clone() const;        // Credentials hold a Secret: copies are explicit
};

// One attribute's values (binary-safe).
struct Attribute {
    std::string name;
    std::vector<std::string> values;
};

struct Entry {
    std::string dn;
    std::vector<Attribute> attributes;
    // Case-insensitive attribute lookup; nullptr / "" when absent.
    const std::vector<std::string>* values(std::string_view name) const;
    std::string first(std::string_view name) const;
    bool has(std::string_view name) const { return values(name) != nullptr; }
};

enum class Scope { base, one_level, subtree };

struct Search {
    std::string base;
    Scope scope = Scope::subtree;
    std::string filter = "(objectClass=*)";
    std::vector<std::string> attributes;  // empty: all user attributes
    int size_limit = 0;                   // 0: no limit
    bool show_deleted = false;            // 1.2.840.113556.1.4.417
};

struct Mod {
    enum Op { add, remove, replace };
    Op op = replace;
    std::string attribute;
    std::vector<std::string> values;   // never a password: those go through the password calls
};

struct RootDse {
    std::string default_naming_context;
    std::string dns_host_name;
    std::string ds_service_name;          // DN of the DC's NTDS Settings object
    std::uint64_t highest_committed_usn = 0;
    std::vector<std::string> supported_controls;
    std::vector<std::string> supported_sasl_mechanisms;
    std::vector<std::string> supported_extensions;
    bool supports_control(std::string_view oid) const;
};

// One connection (with failover and reconnect). Not thread-safe: use one per
// thread, or serialise calls.
class Connection {
public:
    // Connects to the first URI that answers (failover in order) and binds
    // with options.credentials. A bind refusal stops at once (no lockouts by
    // trying every DC); a connection failure moves on to the next URI.
    static LdapResult<Connection> open(ConnectOptions options);

    Connection(Connection&&) noexcept;
    Connection& operator=(Connection&&) noexcept;
    ~Connection();

    // Binds again with other credentials; they are used on reconnects too.
    LdapStatus bind(Credentials credentials);

    const std::string& uri() const;       // the URI in use
    bool tls() const;                     // TLS is in place
    unsigned sasl_ssf() const;            // SASL security strength (56+: sealed)
    // TLS, or a SASL layer that seals: the only connections that may carry a password.
    bool protected_for_passwords() const;
    const std::vector<std::string>& warnings() const;

    // Reads: after a lost connection they reconnect and retry once.
    LdapResult<std::vector<Entry>> search(const Search& s);
    // Paged (1.2.840.113556.1.4.319): `visit` sees each entry; an error from
    // it stops the search.
    LdapStatus search_paged(const Search& s, const std::function<Status(Entry&&)>& visit,
                            int page_size = 500);
    LdapResult<RootDse> root_dse();

    // Writes: never retried; a lost connection is reported retryable and the
    // next operation reconnects.
    LdapStatus modify(std::string_view dn, const std::vector<Mod>& mods);
    LdapStatus add(std::string_view dn, const std::vector<Mod>& attributes);
    LdapStatus remove(std::string_view dn);
    LdapStatus rename(std::string_view dn, std::string_view new_rdn, std::string_view new_parent = {});

    // Drops the connection and connects again (failover from the first URI).
    LdapStatus reconnect();

    // No operation waits for its answer past `until` (op_timeout still
    // applies when sooner): a gateway's right to deliver ends then. A
    // default time point lifts the limit.
    void limit_until(std::chrono::steady_clock::time_point until);

    struct Impl;  // opaque; the library's other parts reach it through impl()
    Impl& impl() { return *impl_; }

private:
    explicit Connection(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// ------------------------------------------------------- AD password writes

// UTF-8 in, the value of unicodePwd out: the password in double quotes,
// UTF-16LE (surrogate pairs beyond the BMP). Invalid UTF-8 or NUL: error.
Result<Secret> encode_unicode_pwd(std::string_view utf8_password);

struct ResetOptions {
    // LDAP_SERVER_POLICY_HINTS (1.2.840.113556.1.4.2239, non-critical): asks
    // the DC to apply password history and age to an admin reset. On by
    // default; a DC that does not know the control ignores it.
    bool policy_hints = true;
};

// Admin reset: replace unicodePwd. Refused on an unprotected connection.
LdapStatus reset_password(Connection& c, std::string_view dn, const Secret& new_password,
                          const ResetOptions& options = {});
// User change: one modify, delete the old unicodePwd and add the new one
// (the connection is usually bound as that user). Refused when unprotected.
LdapStatus change_password(Connection& c, std::string_view dn, const Secret& old_password,
                           const Secret& new_password);

// ------------------------------------------------------ account resolution

enum class NameKind { sam, domain_sam, upn, dn, guid };

struct AccountName {
    NameKind kind = NameKind::sam;
    std::string domain;   // domain_sam: DOMAIN; upn: the realm part
    std::string value;    // sam, the UPN, the DN, or the 16 GUID bytes
};

// sam | DOMAIN\sam | user@realm | CN=...,DC=... | {GUID} or a bare GUID.
Result<AccountName> parse_account_name(std::string_view name);
// A bare sAMAccountName: no domain, and not a UPN, DN or GUID. With several
// domains such a name names no one account.
bool is_bare_sam(std::string_view name);

struct Domain {
    std::string base;         // naming context, DC=example,DC=com
    std::string netbios;      // EXAMPLE; DOMAIN\sam must name it (empty: any)
    std::string dns_domain;   // example.com; empty: derived from base
};

struct Account {
    std::string guid;         // {xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}
    std::string dn;
    std::string sam;
    std::string upn;          // may be empty
    bool enabled = false;     // userAccountControl bit 2 clear
    std::uint32_t user_account_control = 0;
    std::int64_t pwd_last_set = 0;  // 100 ns since 1601, as AD keeps it
    bool admin_count = false; // adminCount=1: AdminSDHolder protects (or protected) it
    std::string sid;          // objectSid as S-1-5-21-...; empty when not read
};

LdapResult<Account> resolve_account(Connection& c, const Domain& domain, std::string_view name);
// The account whose objectGUID is `guid` ("{...}") and why it is privileged
// (privileged_reason below), in one round trip: a base search of
// <GUID=...> (AD's extended DN form), so neither a rename nor a move
// matters. Reason::no_such_object when no such account exists.
LdapResult<std::pair<Account, std::string>> read_account_by_guid(Connection& c, std::string_view guid);

// ------------------------------------------------------- privileged accounts

// A binary SID as text (S-1-5-21-1-2-3-512); empty when malformed.
std::string sid_text(std::string_view bytes);
// The protected account or group (AdminSDHolder's list) a SID names, by its
// well-known RID or SID, so a renamed or localized group still counts:
// "Domain Admins", "Administrators", ...; nullopt when the SID is not one.
std::optional<std::string> protected_sid_name(std::string_view sid);
// Why the account is privileged: adminCount=1, it is a protected account
// (Administrator, krbtgt), or a member (nested, through tokenGroups) of a
// protected group. Empty: not privileged. One base search of the account.
LdapResult<std::string> privileged_reason(Connection& c, const Account& a);
// The same from that base search's entry (tokenGroups, adminCount,
// objectSid). No tokenGroups (every account has at least its primary
// group) means the bound identity may not read them: an error, never "not
// privileged".
LdapResult<std::string> privileged_reason(const Entry& account);
// The same from what was read: adminCount, own SID and token group SIDs.
std::string privileged_reason(bool admin_count, std::string_view own_sid, const std::vector<std::string>& group_sids);

// RFC 4515: escapes * ( ) \ NUL in a filter value.
std::string escape_filter_value(std::string_view value);
// Every byte as \xx (binary values such as objectGUID).
std::string escape_filter_bytes(std::string_view bytes);
// 16 bytes (AD order: first three fields little-endian) <-> "{...}" lower case.
std::string format_guid(std::string_view bytes);
std::optional<std::string> parse_guid(std::string_view text);
// The DN AD takes for the object with that GUID ("<GUID=...>"), in a search
// base or a modify, wherever the object was renamed or moved; nullopt: not
// a GUID.
std::optional<std::string> guid_dn(std::string_view guid);

// ---------------------------------------------------------- change watching

enum class WatchMode { dirsync, usn };

struct WatchOptions {
    WatchMode mode = WatchMode::dirsync;
    std::string base;     // the naming context (DirSync requires it)
    std::string filter = "(&(objectClass=user)(!(objectClass=computer)))";
    // DirSync flags: 0 for an account with "Replicating Directory Changes",
    // 1 (object security) for an ordinary account.
    std::uint32_t dirsync_flags = 0;
    bool notifications = true;   // 1.2.840.113556.1.4.528 where the DC offers it
    std::chrono::milliseconds poll_interval{10000};  // the floor between polls
    const Clock* clock = nullptr;  // nullptr: the system clock
    // When the caller began to watch the domain (100 ns units since 1601;
    // 0: unknown). A first read (no cookie) reports the passwords written
    // since then as changes, not only as the accounts' state. After a move
    // to another DC the watcher reports passwords written since its last
    // poll (less a margin), never those written before this time.
    std::int64_t catch_up_not_before = 0;
};

enum class EventKind {
    present,           // full sync: the account as it is now (no earlier state known)
    created,
    password_changed,  // the password itself changed (replication metadata of unicodePwd & co.),
                       // or, without readable metadata, pwdLastSet moved to a non-zero value
    renamed,           // name, sAMAccountName or userPrincipalName changed
    disabled,          // userAccountControl changed and has bit 2 set
    enabled,           // userAccountControl changed and has bit 2 clear
    deleted,
};

const char* event_kind_name(EventKind k) noexcept;

// What the watcher knows of the account after the change. On incremental
// DirSync results only the changed attributes arrive: fields that did not
// change may be empty (guid and dn are always set).
struct Event {
    EventKind kind = EventKind::present;
    std::string guid;
    std::string dn;
    std::string sam;
    std::string upn;
    std::optional<bool> enabled;
    std::int64_t pwd_last_set = 0;
    // password_changed only: when the DC committed it (100 ns units since
    // 1601, from the metadata; 0: unknown), and whether it was set with
    // "user must change password at next logon" (pwdLastSet 0).
    std::int64_t password_changed_at = 0;
    bool temporary_password = false;
    // password_changed only: the DC where the password was set (the
    // originating DC of its replication metadata): its DNS host name, or its
    // invocationId "{...}" when no DC of the forest has it now; empty when
    // the metadata could not be read.
    std::string origin_dc{};
};

struct Batch {
    std::vector<Event> events;
    std::string cookie;      // persist it after handling the events; opaque text
    bool full_sync = false;  // events are `present` snapshots (no cookie, or the DC changed)
    TimePoint observed{};
};

// Not thread-safe: one thread drives it (wait, then poll).
class Watcher {
public:
    // `cookie`: what the last delivered Batch carried, or empty for a full sync.
    static LdapResult<Watcher> open(ConnectOptions connect, WatchOptions options, std::string cookie);

    Watcher(Watcher&&) noexcept;
    Watcher& operator=(Watcher&&) noexcept;
    ~Watcher();

    // Fetches every change since the cookie, in batches (one per DirSync or
    // search page). The watcher adopts a batch's cookie only when `deliver`
    // returns OK, so a caller that persists the cookie in `deliver` resumes
    // exactly after a restart. An error from `deliver` stops the poll.
    LdapStatus poll(const std::function<Status(Batch&)>& deliver);

    enum class Wake { notified, timeout };
    // Blocks up to `max`; returns early when the DC notifies a change (the
    // notification search is re-armed as needed). Without notifications it
    // simply sleeps: the periodic poll is the floor.
    LdapResult<Wake> wait(std::chrono::milliseconds max);
    // How long until the next poll is due (poll_interval after the last one).
    std::chrono::milliseconds until_next_poll() const;

    bool notifications_active() const;
    const std::string& cookie() const;
    // The DC it reads (the URI of its connection; with several, the first
    // that answered).
    std::string uri() const;

    struct Impl;

private:
    explicit Watcher(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// The forest's domain controllers: invocationId ("{...}", lower case) ->
// the DC's DNS host name (its server object's name when it has none), from
// the nTDSDSA objects under the Sites container of the configuration
// partition.
LdapResult<std::map<std::string, std::string>> domain_controllers(Connection& c);

// DirSync with the given flags on `base`, matching nothing: succeeds only
// when the bound identity may use DirSync there.
LdapStatus check_dirsync_rights(Connection& c, std::string_view base, std::uint32_t flags);

// ------------------------------------------------- the [directory] section

// The [directory] section of pwsyncd.conf, keys as written there.
struct Settings {
    std::vector<std::string> uris;     // uri = (space-separated, in failover order)
    std::string base;                  // base =
    std::string domain;                // domain = NetBIOS name
    BindMethod bind = BindMethod::simple;  // bind = simple | gssapi
    std::string bind_dn;               // bind-dn = DN or UPN
    std::string bind_password_file;    // bind-password-file = (mode 0600)
    std::string keytab;                // keytab =
    std::string principal;             // principal =
    std::string krb5_config;           // krb5-config =
    std::string ca;                    // ca =
    bool insecure_skip_verify = false; // insecure-skip-verify = yes (loud)
    bool sasl_seal = false;            // sasl-seal = yes: ldap:// without StartTLS, GSSAPI sealing
    std::chrono::seconds timeout{30};  // timeout = seconds per operation
    WatchMode watch = WatchMode::dirsync;  // watch = dirsync | usn
    std::chrono::seconds poll_interval{10};  // poll-interval =
    std::uint32_t dirsync_flags = 0;   // dirsync-flags =
    // Several domains, one [directory NAME] section each:
    std::string name;                  // NAME (empty: a plain [directory])
    std::vector<std::string> upn_suffixes;       // upn-suffixes = (besides the DNS domain)
    std::vector<std::string> capture_principals; // capture-principals = the DCs' capture principals
};

// Parses the section's key/value pairs; unknown keys and bad values fail.
// `label` names the section in errors.
Result<Settings> parse_settings(const std::vector<std::pair<std::string, std::string>>& section,
                                std::string_view label = "[directory]");
// Every [directory] and [directory NAME] section of a configuration file's
// entries, in file order (none: empty). Several sections are several
// domains: each must be named and say its `base` and `domain`, and no two
// may share a domain, a UPN suffix or a capture principal.
inline constexpr std::size_t kMaxDirectories = 32;  // domains per gateway
Result<std::vector<Settings>> parse_directories(const std::vector<IniEntry>& entries);
// The section's name in messages: "[directory]" or "[directory NAME]".
std::string section_label(const Settings& s);
// DC=example,DC=com -> example.com
std::string dns_of_base(std::string_view base);
// Of several directories, the one an account name says it belongs to:
// DOMAIN\sam by NetBIOS or DNS domain, name@suffix by the DNS domain or one
// of upn-suffixes, a DN by its naming context. nullopt: the name does not
// say (a bare sam, a {GUID}) or names none of them.
std::optional<std::size_t> directory_of(const std::vector<Settings>& dirs, std::string_view account);
// Connection options from settings; reads the bind password file, which
// must be a regular file not readable or writable by group or others.
Result<ConnectOptions> connect_options(const Settings& s);
Domain domain_of(const Settings& s);
// Reads a secret from a file (one trailing newline dropped), refusing a
// file that group or others may read or write.
Result<Secret> read_secret_file(const std::string& path);

// --------------------------------------------- external LDAP (ldap adapter)

// RFC 3062 Password Modify. `old_password` may be null (admin change);
// `new_password` null asks the server to generate one, which is returned.
LdapResult<std::optional<Secret>> password_modify(Connection& c, std::string_view user_identity,
                                                  const Secret* old_password, const Secret* new_password);
// How replace_user_password sends the value. A plain modify of userPassword
// is stored as sent unless the server hashes it (slapd only does with
// ppolicy's hash-cleartext; its password-hash applies to Password Modify).
enum class UserPasswordHash {
    none,  // as is: for servers that hash themselves
    ssha,  // {SSHA}: salted SHA-1, which every OpenLDAP understands
};

// Replaces userPassword, hashed here first when asked.
LdapStatus replace_user_password(Connection& c, std::string_view dn, const Secret& new_password,
                                 UserPasswordHash hash = UserPasswordHash::none);
// "{SSHA}" + base64(SHA1(password + salt) + salt) with a random 8-byte salt.
Secret ssha_hash(const Secret& password);

}  // namespace pwsync::directory
