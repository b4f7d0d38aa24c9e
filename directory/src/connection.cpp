// Connections: failover over URIs, TLS (ldaps or StartTLS), timeouts, and
// the request/response plumbing every operation shares.
#include <sys/time.h>

#include <csignal>
#include <cstring>

#include "bind.h"
#include "connection_impl.h"
#include "tls_probe.h"

namespace pwsync::directory {
namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
    return tv;
}

int scope_of(Scope s) {
    switch (s) {
    case Scope::base: return LDAP_SCOPE_BASE;
    case Scope::one_level: return LDAP_SCOPE_ONELEVEL;
    case Scope::subtree: return LDAP_SCOPE_SUBTREE;
    }
    return LDAP_SCOPE_SUBTREE;
}

bool iequal(std::string_view a, std::string_view b) { return ascii_lower(a) == ascii_lower(b); }

// Sets one option, turning a refusal into an error naming it.
LdapStatus set_option(LDAP* ld, int option, const void* value, const char* name) {
    const int rc = ldap_set_option(ld, option, value);
    if (rc != LDAP_OPT_SUCCESS) return std::unexpected(decode_error(rc, {}, std::string("set ") + name));
    return {};
}

Entry read_entry(LDAP* ld, LDAPMessage* msg) {
    Entry e;
    if (MemPtr dn{ldap_get_dn(ld, msg)}) e.dn = dn.get();
    BerElement* raw_ber = nullptr;
    for (char* a = ldap_first_attribute(ld, msg, &raw_ber); a != nullptr; a = ldap_next_attribute(ld, msg, raw_ber)) {
        MemPtr name{a};
        Attribute attr{name.get(), {}};
        if (ValuesPtr vals{ldap_get_values_len(ld, msg, name.get())}) {
            for (berval** v = vals.get(); *v != nullptr; ++v) attr.values.emplace_back((*v)->bv_val, (*v)->bv_len);
        }
        e.attributes.push_back(std::move(attr));
    }
    BerPtr ber{raw_ber};
    return e;
}

// Builds the LDAPMod array for non-secret values; the views stay valid while
// `mods` lives.
struct ModArray {
    std::vector<std::vector<berval>> values;
    std::vector<std::vector<berval*>> ptrs;
    std::vector<LDAPMod> mods;
    std::vector<LDAPMod*> array;

    ModArray(const std::vector<Mod>& in, bool for_add) {
        values.resize(in.size());
        ptrs.resize(in.size());
        mods.resize(in.size());
        for (std::size_t i = 0; i < in.size(); ++i) {
            for (const auto& v : in[i].values)
                values[i].push_back(berval{static_cast<ber_len_t>(v.size()), const_cast<char*>(v.data())});
            for (auto& b : values[i]) ptrs[i].push_back(&b);
            ptrs[i].push_back(nullptr);
            int op = LDAP_MOD_REPLACE;
            if (for_add || in[i].op == Mod::add) op = LDAP_MOD_ADD;
            else if (in[i].op == Mod::remove) op = LDAP_MOD_DELETE;
            mods[i].mod_op = op | LDAP_MOD_BVALUES;
            mods[i].mod_type = const_cast<char*>(in[i].attribute.c_str());
            mods[i].mod_bvalues = ptrs[i].data();
        }
        for (auto& m : mods) array.push_back(&m);
        array.push_back(nullptr);
    }
};

}  // namespace

// ------------------------------------------------------------ small pieces

ConnectOptions ConnectOptions::clone() const {
    ConnectOptions o;
    o.uris = uris;
    o.protection = protection;
    o.ca_file = ca_file;
    o.insecure_skip_verify = insecure_skip_verify;
    o.connect_timeout = connect_timeout;
    o.op_timeout = op_timeout;
    o.credentials.method = credentials.method;
    o.credentials.name = credentials.name;
    o.credentials.password = credentials.password.clone();
    o.credentials.keytab = credentials.keytab;
    o.credentials.krb5_config = credentials.krb5_config;
    o.warn = warn;
    return o;
}

const std::vector<std::string>* Entry::values(std::string_view name) const {
    for (const auto& a : attributes)
        if (iequal(a.name, name)) return &a.values;
    return nullptr;
}

std::string Entry::first(std::string_view name) const {
    const auto* v = values(name);
    return v != nullptr && !v->empty() ? v->front() : std::string();
}

bool RootDse::supports_control(std::string_view oid) const {
    for (const auto& c : supported_controls)
        if (c == oid) return true;
    return false;
}

ControlPtr make_control(const char* oid, std::string_view value, bool critical) {
    LDAPControl* c = nullptr;
    berval bv{static_cast<ber_len_t>(value.size()), const_cast<char*>(value.data())};
    if (ldap_control_create(oid, critical ? 1 : 0, value.empty() ? nullptr : &bv, 1, &c) != LDAP_SUCCESS) return nullptr;
    return ControlPtr(c);
}

std::optional<std::string> Page::control(const char* oid) const {
    if (!controls) return std::nullopt;
    for (LDAPControl** c = controls.get(); *c != nullptr; ++c)
        if (std::strcmp((*c)->ldctl_oid, oid) == 0)
            return std::string((*c)->ldctl_value.bv_val != nullptr ? (*c)->ldctl_value.bv_val : "",
                               (*c)->ldctl_value.bv_len);
    return std::nullopt;
}

bool connection_lost(const LdapError& e) noexcept {
    return e.ldap_code == LDAP_SERVER_DOWN || e.ldap_code == LDAP_CONNECT_ERROR;
}

// ------------------------------------------------------------------- Impl

LdapError Connection::Impl::handle_error(int rc, std::string_view context) const {
    std::string text;
    if (ld) {
        char* diag = nullptr;
        if (ldap_get_option(ld.get(), LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag) == LDAP_OPT_SUCCESS && diag != nullptr) {
            text = diag;
            ldap_memfree(diag);
        }
    }
    return decode_error(rc, text, context);
}

LdapStatus Connection::Impl::ensure() {
    if (ld) return {};
    return connect_any();
}

namespace {

// Opens one URI: handle options, TCP connect, TLS; no bind.
LdapResult<LdapPtr> open_uri(const ConnectOptions& o, const std::string& uri) {
    if (!uri.starts_with("ldaps://") && !uri.starts_with("ldap://"))
        return std::unexpected(client_error(Reason::invalid_request, "unsupported URI " + uri + ": use ldaps:// or ldap://"));
    LDAP* raw = nullptr;
    int rc = ldap_initialize(&raw, uri.c_str());
    if (rc != LDAP_SUCCESS || raw == nullptr) return std::unexpected(decode_error(rc, {}, "connect " + uri));
    LdapPtr h(raw);
    const int v3 = LDAP_VERSION3;
    const timeval nt = to_timeval(o.connect_timeout), ot = to_timeval(o.op_timeout);
    const int require = o.insecure_skip_verify ? LDAP_OPT_X_TLS_NEVER : LDAP_OPT_X_TLS_DEMAND;
    const int tls_min = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2;
    const int new_ctx = 0;
    PWSYNC_TRY(set_option(h.get(), LDAP_OPT_PROTOCOL_VERSION, &v3, "protocol version"));
    PWSYNC_TRY(set_option(h.get(), LDAP_OPT_REFERRALS, LDAP_OPT_OFF, "referrals"));
    PWSYNC_TRY(set_option(h.get(), LDAP_OPT_NETWORK_TIMEOUT, &nt, "network timeout"));
    PWSYNC_TRY(set_option(h.get(), LDAP_OPT_TIMEOUT, &ot, "timeout"));
    if (!o.ca_file.empty()) PWSYNC_TRY(set_option(h.get(), LDAP_OPT_X_TLS_CACERTFILE, o.ca_file.c_str(), "TLS CA file"));
    PWSYNC_TRY(set_option(h.get(), LDAP_OPT_X_TLS_REQUIRE_CERT, &require, "TLS require cert"));
    PWSYNC_TRY(set_option(h.get(), LDAP_OPT_X_TLS_PROTOCOL_MIN, &tls_min, "TLS minimum protocol"));
    // A context of this handle's own, so its CA and verification settings
    // apply (and no other handle's leak in). Must come after the TLS options.
    PWSYNC_TRY(set_option(h.get(), LDAP_OPT_X_TLS_NEWCTX, &new_ctx, "TLS context"));

    auto fail_here = [&](int code, const char* what) {
        std::string text;
        char* diag = nullptr;
        if (ldap_get_option(h.get(), LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag) == LDAP_OPT_SUCCESS && diag != nullptr) {
            text = diag;
            ldap_memfree(diag);
        }
        auto e = decode_error(code, text, std::string(what) + " " + uri);
        // libldap says "can't contact" also when the certificate does not
        // verify: find out, so that it is reported as what it is.
        if ((code == LDAP_SERVER_DOWN || code == LDAP_CONNECT_ERROR) && !o.insecure_skip_verify) {
            const TlsProbe p = probe_tls(uri, o.ca_file, o.connect_timeout);
            if (p.reachable && p.rejected) {
                e.reason = Reason::tls;
                e.verdict = Verdict::permanent;
                e.code = Errc::crypto;
                e.message = std::string(what) + " " + uri + ": TLS failed [LDAP " + std::to_string(code) + ", permanent]: " + p.detail;
            }
        }
        return std::unexpected(std::move(e));
    };
    rc = ldap_connect(h.get());
    if (rc != LDAP_SUCCESS) return fail_here(rc, "connect");
    if (uri.starts_with("ldap://") && o.protection == Protection::tls) {
        rc = ldap_start_tls_s(h.get(), nullptr, nullptr);
        if (rc != LDAP_SUCCESS) {
            // A refused StartTLS is not a lost server: the next URI may work,
            // but it must not look like a transient outage of this one.
            auto e = fail_here(rc, "StartTLS on");
            if (e.error().reason != Reason::server_down && e.error().reason != Reason::timeout) e.error().reason = Reason::tls;
            return e;
        }
    }
    return h;
}

}  // namespace

LdapStatus Connection::Impl::connect_any() {
    drop();
    if (options.uris.empty()) return std::unexpected(client_error(Reason::invalid_request, "no directory URI configured"));
    std::vector<LdapError> failures;
    for (const auto& u : options.uris) {
        auto h = open_uri(options, u);
        if (!h) {
            failures.push_back(std::move(h).error());
            continue;
        }
        ld = std::move(*h);
        uri = u;
        tls = ldap_tls_inplace(ld.get()) != 0;
        if (options.protection == Protection::tls && !tls) {
            drop();
            failures.push_back(client_error(Reason::tls, "connect " + u + ": TLS is not in place"));
            continue;
        }
        auto b = bind_handle(*this, options.credentials);
        if (!b) {
            drop();
            // A refused bind stops here: trying every DC would only add
            // failed logons (and lockouts).
            if (!connection_lost(b.error()) && b.error().reason != Reason::timeout) return b;
            failures.push_back(std::move(b).error());
            continue;
        }
        return {};
    }
    // Report the first retryable failure (an outage), else the first one; the
    // message names every URI tried.
    std::size_t pick = 0;
    for (std::size_t i = 0; i < failures.size(); ++i)
        if (failures[i].retryable()) { pick = i; break; }
    LdapError e = failures[pick];
    if (failures.size() > 1) {
        std::string all = "no directory server reachable: ";
        for (std::size_t i = 0; i < failures.size(); ++i) all += (i ? "; " : "") + failures[i].message;
        e.message = std::move(all);
    }
    return std::unexpected(std::move(e));
}

LdapResult<MsgPtr> Connection::Impl::wait(int msgid, bool all, std::string_view context) {
    auto wait_for = options.op_timeout;
    if (until != std::chrono::steady_clock::time_point{}) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        wait_for = std::clamp(left, std::chrono::milliseconds(1), wait_for);
    }
    timeval tv = to_timeval(wait_for);
    LDAPMessage* res = nullptr;
    const int rc = ldap_result(ld.get(), msgid, all ? LDAP_MSG_ALL : LDAP_MSG_ONE, &tv, &res);
    if (rc == 0) {
        ldap_abandon_ext(ld.get(), msgid, nullptr, nullptr);
        return std::unexpected(decode_error(LDAP_TIMEOUT, {}, context));
    }
    if (rc < 0) {
        int code = LDAP_SERVER_DOWN;
        ldap_get_option(ld.get(), LDAP_OPT_RESULT_CODE, &code);
        if (code == LDAP_SUCCESS) code = LDAP_SERVER_DOWN;
        return std::unexpected(handle_error(code, context));
    }
    return MsgPtr(res);
}

LdapStatus Connection::Impl::check_result(LDAPMessage* res, std::string_view context, ControlsPtr* controls) {
    int code = LDAP_SUCCESS;
    char* matched = nullptr;
    char* diag = nullptr;
    LDAPControl** ctrls = nullptr;
    const int rc = ldap_parse_result(ld.get(), res, &code, &matched, &diag, nullptr, &ctrls, 0);
    MemPtr m{matched}, d{diag};
    ControlsPtr owned{ctrls};
    if (rc != LDAP_SUCCESS) return std::unexpected(decode_error(rc, {}, context));
    if (controls != nullptr) *controls = std::move(owned);
    if (code != LDAP_SUCCESS) return std::unexpected(decode_error(code, diag != nullptr ? diag : "", context));
    return {};
}

LdapResult<Page> Connection::Impl::search_once(const Search& s, LDAPControl** controls) {
    const std::string context = "search " + s.base;
    std::vector<char*> attrs;
    for (const auto& a : s.attributes) attrs.push_back(const_cast<char*>(a.c_str()));
    attrs.push_back(nullptr);
    std::vector<LDAPControl*> ctrls;
    for (LDAPControl** c = controls; c != nullptr && *c != nullptr; ++c) ctrls.push_back(*c);
    ControlPtr show_deleted;
    if (s.show_deleted) {
        show_deleted = make_control(LDAP_CONTROL_X_SHOW_DELETED, {}, true);
        ctrls.push_back(show_deleted.get());
    }
    ctrls.push_back(nullptr);
    int msgid = 0;
    const int rc = ldap_search_ext(ld.get(), s.base.c_str(), scope_of(s.scope), s.filter.c_str(),
                                   s.attributes.empty() ? nullptr : attrs.data(), 0, ctrls.data(), nullptr,
                                   nullptr, s.size_limit, &msgid);
    if (rc != LDAP_SUCCESS) return std::unexpected(handle_error(rc, context));
    PWSYNC_ASSIGN(MsgPtr res, wait(msgid, true, context));
    Page page;
    for (LDAPMessage* m = ldap_first_message(ld.get(), res.get()); m != nullptr; m = ldap_next_message(ld.get(), m)) {
        switch (ldap_msgtype(m)) {
        case LDAP_RES_SEARCH_ENTRY: page.entries.push_back(read_entry(ld.get(), m)); break;
        case LDAP_RES_SEARCH_RESULT: PWSYNC_TRY(check_result(m, context, &page.controls)); break;
        default: break;  // continuation references: referrals are off
        }
    }
    return page;
}

LdapStatus Connection::Impl::require_protection(std::string_view what) const {
    // Asked of the live handle every time, not remembered from the connect.
    if (ld) {
        if (ldap_tls_inplace(ld.get()) != 0) return {};
        ber_len_t live_ssf = 0;
        if (ldap_get_option(ld.get(), LDAP_OPT_X_SASL_SSF, &live_ssf) == LDAP_OPT_SUCCESS && live_ssf >= 56) return {};
    }
    return std::unexpected(client_error(
        Reason::confidentiality_required,
        std::string(what) + ": refused: the connection to " + (uri.empty() ? "the directory" : uri) +
            " is neither TLS nor SASL-sealed, and a password must not cross it"));
}

LdapStatus Connection::Impl::modify_raw(std::string_view dn, LDAPMod** mods, LDAPControl** controls,
                                        std::string_view context) {
    const std::string d(dn);
    int msgid = 0;
    const int rc = ldap_modify_ext(ld.get(), d.c_str(), mods, controls, nullptr, &msgid);
    if (rc != LDAP_SUCCESS) return std::unexpected(handle_error(rc, context));
    PWSYNC_ASSIGN(MsgPtr res, wait(msgid, true, context));
    return check_result(res.get(), context);
}

// ------------------------------------------------------------- Connection

Connection::Connection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&&) noexcept = default;
Connection::~Connection() = default;

LdapResult<Connection> Connection::open(ConnectOptions options) {
    // A server that closes the connection must make a write fail (EPIPE),
    // not kill the process: libldap and OpenSSL write without MSG_NOSIGNAL.
    static const bool sigpipe_ignored = [] {
        struct sigaction old {};
        if (::sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) ::signal(SIGPIPE, SIG_IGN);
        return true;
    }();
    (void)sigpipe_ignored;
    auto impl = std::make_unique<Impl>();
    impl->options = std::move(options);
    auto& o = impl->options;
    const auto warn = [&](std::string text) {
        if (o.warn) o.warn(text);
        impl->warnings.push_back(std::move(text));
    };
    if (o.insecure_skip_verify)
        warn("WARNING: TLS certificate verification is OFF (insecure-skip-verify): anyone between pwsync and the "
             "directory can impersonate it and read every password sent");
    if (o.protection == Protection::none)
        warn("WARNING: connection without TLS or SASL sealing: reads only, password operations will be refused");
    // Anonymous is allowed (it sends no secret; `pwsync check` binds later).
    if (o.protection == Protection::sasl_seal && o.credentials.method == BindMethod::simple)
        return std::unexpected(client_error(Reason::invalid_request,
                                            "a SASL-sealed connection needs bind = gssapi (ldap:// without StartTLS)"));
    PWSYNC_TRY(impl->connect_any());
    return Connection(std::move(impl));
}

LdapStatus Connection::bind(Credentials credentials) {
    impl_->options.credentials = std::move(credentials);
    PWSYNC_TRY(impl_->ensure());
    return bind_handle(*impl_, impl_->options.credentials);
}

const std::string& Connection::uri() const { return impl_->uri; }
void Connection::limit_until(std::chrono::steady_clock::time_point until) { impl_->until = until; }
bool Connection::tls() const { return impl_->tls; }
unsigned Connection::sasl_ssf() const { return impl_->ssf; }
bool Connection::protected_for_passwords() const { return impl_->tls || impl_->ssf >= 56; }
const std::vector<std::string>& Connection::warnings() const { return impl_->warnings; }

LdapResult<std::vector<Entry>> Connection::search(const Search& s) {
    return impl_->read([&]() -> LdapResult<std::vector<Entry>> {
        PWSYNC_ASSIGN(Page p, impl_->search_once(s, nullptr));
        return std::move(p.entries);
    });
}

LdapStatus Connection::search_paged(const Search& s, const std::function<Status(Entry&&)>& visit, int page_size) {
    std::string cookie;
    bool first = true;
    while (first || !cookie.empty()) {
        // Only the first page may be retried on a new connection: a paging
        // cookie belongs to the connection that issued it.
        auto page_op = [&]() -> LdapResult<Page> {
            berval c{static_cast<ber_len_t>(cookie.size()), cookie.data()};
            LDAPControl* raw = nullptr;
            const int rc = ldap_create_page_control(impl_->ld.get(), page_size, cookie.empty() ? nullptr : &c, 1, &raw);
            if (rc != LDAP_SUCCESS) return std::unexpected(decode_error(rc, {}, "paged search " + s.base));
            ControlPtr pc(raw);
            LDAPControl* list[] = {pc.get(), nullptr};
            return impl_->search_once(s, list);
        };
        LdapResult<Page> page = first ? impl_->read(page_op) : [&]() -> LdapResult<Page> {
            PWSYNC_TRY(impl_->ensure());
            return page_op();
        }();
        if (!page) {
            if (connection_lost(page.error())) impl_->drop();
            return std::unexpected(std::move(page).error());
        }
        first = false;
        for (auto& e : page->entries) {
            auto st = visit(std::move(e));
            if (!st) return std::unexpected(from_error(st.error()));
        }
        cookie.clear();
        if (page->controls) {
            ber_int_t estimate = 0;
            berval next{};
            LDAPControl* pr = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, page->controls.get(), nullptr);
            if (pr != nullptr && ldap_parse_pageresponse_control(impl_->ld.get(), pr, &estimate, &next) == LDAP_SUCCESS) {
                if (next.bv_val != nullptr) {
                    cookie.assign(next.bv_val, next.bv_len);
                    ber_memfree(next.bv_val);
                }
            }
        }
    }
    return {};
}

LdapResult<RootDse> Connection::root_dse() {
    Search s;
    s.base = "";
    s.scope = Scope::base;
    s.attributes = {"defaultNamingContext", "dnsHostName", "dsServiceName", "highestCommittedUSN", "supportedControl",
                    "supportedSASLMechanisms", "supportedExtension"};
    PWSYNC_ASSIGN(auto entries, search(s));
    if (entries.empty()) return std::unexpected(client_error(Reason::invalid_request, "the directory returned no rootDSE"));
    const Entry& e = entries.front();
    RootDse r;
    r.default_naming_context = e.first("defaultNamingContext");
    r.dns_host_name = e.first("dnsHostName");
    r.ds_service_name = e.first("dsServiceName");
    r.highest_committed_usn = std::strtoull(e.first("highestCommittedUSN").c_str(), nullptr, 10);
    if (const auto* v = e.values("supportedControl")) r.supported_controls = *v;
    if (const auto* v = e.values("supportedSASLMechanisms")) r.supported_sasl_mechanisms = *v;
    if (const auto* v = e.values("supportedExtension")) r.supported_extensions = *v;
    return r;
}

LdapStatus Connection::modify(std::string_view dn, const std::vector<Mod>& mods) {
    return impl_->write([&]() -> LdapStatus {
        ModArray m(mods, false);
        return impl_->modify_raw(dn, m.array.data(), nullptr, "modify " + std::string(dn));
    });
}

LdapStatus Connection::add(std::string_view dn, const std::vector<Mod>& attributes) {
    return impl_->write([&]() -> LdapStatus {
        ModArray m(attributes, true);
        const std::string d(dn), context = "add " + d;
        int msgid = 0;
        const int rc = ldap_add_ext(impl_->ld.get(), d.c_str(), m.array.data(), nullptr, nullptr, &msgid);
        if (rc != LDAP_SUCCESS) return std::unexpected(impl_->handle_error(rc, context));
        PWSYNC_ASSIGN(MsgPtr res, impl_->wait(msgid, true, context));
        return impl_->check_result(res.get(), context);
    });
}

LdapStatus Connection::remove(std::string_view dn) {
    return impl_->write([&]() -> LdapStatus {
        const std::string d(dn), context = "delete " + d;
        int msgid = 0;
        const int rc = ldap_delete_ext(impl_->ld.get(), d.c_str(), nullptr, nullptr, &msgid);
        if (rc != LDAP_SUCCESS) return std::unexpected(impl_->handle_error(rc, context));
        PWSYNC_ASSIGN(MsgPtr res, impl_->wait(msgid, true, context));
        return impl_->check_result(res.get(), context);
    });
}

LdapStatus Connection::rename(std::string_view dn, std::string_view new_rdn, std::string_view new_parent) {
    return impl_->write([&]() -> LdapStatus {
        const std::string d(dn), rdn(new_rdn), parent(new_parent), context = "rename " + d;
        int msgid = 0;
        const int rc = ldap_rename(impl_->ld.get(), d.c_str(), rdn.c_str(), parent.empty() ? nullptr : parent.c_str(), 1,
                                   nullptr, nullptr, &msgid);
        if (rc != LDAP_SUCCESS) return std::unexpected(impl_->handle_error(rc, context));
        PWSYNC_ASSIGN(MsgPtr res, impl_->wait(msgid, true, context));
        return impl_->check_result(res.get(), context);
    });
}

LdapStatus Connection::reconnect() { return impl_->connect_any(); }

}  // namespace pwsync::directory
