// The pwsync administration CLI: command table, shared context and helpers.
#pragma once

#include <boost/program_options.hpp>
#include <functional>
#include <iosfwd>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "pwsync/directory.h"
#include "pwsync/dc_health.h"
#include "pwsync/store.h"
#include "pwsync/util.h"

namespace pwsync::cli {

namespace po = boost::program_options;
using json = nlohmann::ordered_json;

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// A usage error (exit 2): bad or missing arguments.
struct UsageError {
    std::string message;
};

class Context {
public:
    Context(const po::variables_map& vm, std::istream& in, std::ostream& out, std::ostream& err)
        : vm_(vm), in_(in), out_(out), err_(err) {}

    const po::variables_map& vm() const { return vm_; }
    std::ostream& out() { return out_; }
    std::ostream& err() { return err_; }
    bool want_json() const { return vm_.count("json") > 0; }

    // Options: --store, $PWSYNC_STORE, `store =` in the config file.
    Result<store::Options> store_options() const;
    Result<store::Store> open_store() const;
    // Who runs the command, for the audit: the OS user (and sudo's caller).
    std::string actor() const;

    // A password or secret: --password-file when given, else a prompt with
    // echo off when stdin is a terminal, else all of stdin (one trailing
    // newline removed). Never from argv.
    Result<Secret> read_secret(const std::string& what, bool confirm = false);
    // Several secrets from stdin, one per line (terminal: one prompt each).
    Result<std::vector<Secret>> read_secrets(const std::vector<std::string>& what);

    template <class T>
    std::optional<T> opt(const char* name) const {
        if (vm_.count(name) == 0) return std::nullopt;
        return vm_[name].as<T>();
    }
    std::string arg(const char* name) const;  // a required option or positional

    void print_json(const json& doc);
    // A failing command may choose its own exit code (pwsync notify does).
    void set_exit(int code) { exit_ = code; }
    int exit_code() const { return exit_; }

private:
    const po::variables_map& vm_;
    std::istream& in_;
    std::ostream& out_;
    std::ostream& err_;
    int exit_ = 0;
};

struct Command {
    std::string noun;     // "app"
    std::string verb;     // "create"; empty for single-word commands
    std::string args;     // "NAME [--description TEXT]"
    std::string summary;  // one line
    std::function<void(po::options_description&, po::positional_options_description&)> options;
    // Returns an exit code; returning an Error prints it and exits 1.
    std::function<Status(Context&)> run;
};

std::vector<Command> all_commands();
void add_settings_commands(std::vector<Command>& out);   // init, sync, key, store, audit
void add_app_commands(std::vector<Command>& out);
void add_adapter_commands(std::vector<Command>& out);    // adapters and groups
void add_mapping_commands(std::vector<Command>& out);
void add_principal_commands(std::vector<Command>& out);
void add_queue_commands(std::vector<Command>& out);     // status, queue, damping
void add_directory_commands(std::vector<Command>& out);  // check, mapping resolve
void add_notify_commands(std::vector<Command>& out);
void add_import_commands(std::vector<Command>& out);   // import esso
void add_rule_commands(std::vector<Command>& out);     // mapping rules

// The directory of the configuration file's [directory] section, connected
// and bound, and its domain. Several domains: the one the first of
// `dn_hints` that lies in one lies in (a rule's OU, then its group DN),
// else the first.
struct OpenDirectory {
    directory::Connection connection;
    directory::Domain domain;
};
Result<OpenDirectory> open_directory(Context& c, const std::vector<std::string>& dn_hints = {});
void add_stale_commands(std::vector<Command>& out);    // stale list|expire|clear

// Which DC is not capturing, for `pwsync status`.
json dc_health_json(const std::vector<store::DcHealth>& dcs, TimePoint now);
void print_dc_health(std::ostream& out, const std::vector<store::DcHealth>& dcs, TimePoint now);

// The Windows accounts of new mappings, looked up in the directory of the
// configuration file's [directory] section (when it has one), with no store
// transaction open. A name the directory does not know, or a directory that
// cannot be reached, is a warning on stderr: the mapping is created all the
// same, unresolved, and pwsyncd resolves it later (its privilege is then
// checked before each delivery instead). A name that fits accounts in
// several domains (a bare sam) is refused by record_account. Keyed by
// lower(name).
struct FoundAccount {
    store::AccountNames names;
    std::string privileged;  // why the account is privileged; empty: it is not
    std::string ambiguous;   // the name fits accounts of several domains: refused
    std::string qualified;   // several domains: the DOMAIN\sam a bare sam is mapped as
};
using FoundAccounts = std::map<std::string, FoundAccount>;
FoundAccounts look_up_accounts(Context& c, const std::vector<std::string>& names);
// Before create_mapping: records the account of `m` when it was found, and
// gives `m` its objectGUID. A privileged account is refused (Errc::conflict)
// unless the application allows privileged accounts; then it is audited.
Status record_account(store::WriteTxn& w, const FoundAccounts& found, store::Mapping& m);
// record_account, then create_mapping.
Status record_and_create(store::WriteTxn& w, const FoundAccounts& found, store::Mapping m);

// Runs the CLI; returns the exit code.
int run(int argc, const char* const argv[], std::istream& in, std::ostream& out, std::ostream& err);

// Runs `op` as one unit of work and prints `done` once it commits.
template <class F>
Status write_and_say(Context& c, F op, const std::string& done) {
    PWSYNC_ASSIGN(auto s, c.open_store());
    PWSYNC_TRY(s.transact(c.actor(), [&](store::WriteTxn& w) -> Status { return op(w); }));
    c.out() << done << "\n";
    return {};
}

// ------------------------------------------------------------ output helpers

json to_json(const store::App& a);
json to_json(const store::Adapter& a);
json to_json(const store::Group& g, const std::vector<std::string>& members);
json to_json(const store::Mapping& m);
json to_json(const store::Principal& p);
json to_json(const store::AuditRecord& r);
std::string time_text(TimePoint t);  // ISO 8601, or "-" when unset
const char* yes_no(bool b);

// Prints rows under a header, columns padded to their widest cell.
void print_table(std::ostream& out, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows);

}  // namespace pwsync::cli
