// What the library's parts share about a connection: the live handle, how
// operations wait for results, and how failures become LdapErrors.
#pragma once

#include <string>
#include <vector>

#include "handles.h"
#include "pwsync/directory.h"

namespace pwsync::directory {

// A request control built from an OID and an encoded value.
ControlPtr make_control(const char* oid, std::string_view value, bool critical);

// One search round trip: the entries and the response controls.
struct Page {
    std::vector<Entry> entries;
    ControlsPtr controls;
    // The value of a response control, if the server sent it.
    std::optional<std::string> control(const char* oid) const;
};

// The error with every occurrence of the given secrets replaced: a server
// could echo what it was sent, and no password may leave in an error.
LdapError scrubbed(LdapError e, std::initializer_list<const Secret*> secrets);

// An error of a callback (pwsync::Error) carried as an LdapError.
LdapError from_error(const Error& e);

// The Account an entry with the account attributes describes.
Account account_from_entry(const Entry& e);

// True when the failure means the connection is gone.
bool connection_lost(const LdapError& e) noexcept;

struct Connection::Impl {
    ConnectOptions options;
    LdapPtr ld;
    std::string uri;
    bool tls = false;
    unsigned ssf = 0;
    std::vector<std::string> warnings;
    std::chrono::steady_clock::time_point until{};  // Connection::limit_until

    // Connects (failover over options.uris) when there is no live handle.
    LdapStatus ensure();
    LdapStatus connect_any();
    void drop() { ld.reset(); tls = false; ssf = 0; }

    // The error libldap keeps on the handle for a failed call.
    LdapError handle_error(int rc, std::string_view context) const;
    // Waits for one result (or, with all, every message of a search) within
    // the operation timeout; abandons the request when time runs out.
    LdapResult<MsgPtr> wait(int msgid, bool all, std::string_view context);
    // Result code, text and controls of a final result message.
    LdapStatus check_result(LDAPMessage* res, std::string_view context, ControlsPtr* controls = nullptr);

    // One search request with the given controls (no retry).
    LdapResult<Page> search_once(const Search& s, LDAPControl** controls);
    // A write: ensure(), run, and on a lost connection drop the handle so the
    // next call reconnects; the caller sees a retryable error.
    template <class F>
    LdapStatus write(F&& op) {
        PWSYNC_TRY(ensure());
        auto r = op();
        if (!r && connection_lost(r.error())) drop();
        return r;
    }
    // A read: retried once on a fresh connection when the old one was lost.
    template <class F>
    auto read(F&& op) -> decltype(op()) {
        PWSYNC_TRY(ensure());
        auto r = op();
        if (!r && connection_lost(r.error())) {
            drop();
            PWSYNC_TRY(connect_any());
            r = op();
        }
        return r;
    }
    // Refuses to go on unless the connection is TLS or SASL-sealed.
    LdapStatus require_protection(std::string_view what) const;
    // Runs a modify request with request controls.
    LdapStatus modify_raw(std::string_view dn, LDAPMod** mods, LDAPControl** controls, std::string_view context);
};

}  // namespace pwsync::directory
