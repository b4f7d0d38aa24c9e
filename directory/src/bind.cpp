// Binds. GSSAPI: a kinit-equivalent per bind: krb5_get_init_creds_keytab
// into a fresh MEMORY ccache that only this thread's GSS-API sees
// (gss_krb5_ccache_name is per thread), then Cyrus SASL's GSSAPI mechanism,
// then the ccache is destroyed (the established security context does not
// need it). No ticket lands on disk and no other process's ccache is used.
// The only process-wide setting is KRB5_CONFIG, when
// Credentials::krb5_config names a file: MIT krb5 reads it for every context.
#include <gssapi/gssapi.h>
#include <gssapi/gssapi_krb5.h>
#include <krb5.h>
#include <sasl/sasl.h>

#include <cstdlib>
#include <mutex>

#include "bind.h"

namespace pwsync::directory {
namespace {

std::mutex& env_mutex() {
    static std::mutex m;
    return m;
}

// RAII over the krb5 objects of one kinit.
struct Krb5 {
    krb5_context ctx = nullptr;
    krb5_keytab kt = nullptr;
    krb5_principal client = nullptr;
    krb5_ccache cc = nullptr;
    krb5_creds creds{};
    bool have_creds = false;
    Krb5() = default;
    Krb5(const Krb5&) = delete;
    Krb5& operator=(const Krb5&) = delete;
    ~Krb5() {
        if (ctx == nullptr) return;
        if (have_creds) krb5_free_cred_contents(ctx, &creds);
        if (cc != nullptr) krb5_cc_destroy(ctx, cc);
        if (client != nullptr) krb5_free_principal(ctx, client);
        if (kt != nullptr) krb5_kt_close(ctx, kt);
        krb5_free_context(ctx);
    }
    std::string text(krb5_error_code code) const {
        const char* m = krb5_get_error_message(ctx, code);
        std::string s = m != nullptr ? m : "Kerberos error " + std::to_string(code);
        krb5_free_error_message(ctx, m);
        return s;
    }
};

// Gets a TGT for the keytab's principal into a new MEMORY ccache.
LdapResult<std::unique_ptr<Krb5>> kinit(const Credentials& c) {
    if (c.keytab.empty()) return std::unexpected(client_error(Reason::invalid_request, "bind = gssapi needs a keytab"));
    if (!c.krb5_config.empty()) {
        std::lock_guard lock(env_mutex());
        ::setenv("KRB5_CONFIG", c.krb5_config.c_str(), 1);
    }
    auto k = std::make_unique<Krb5>();
    const std::string who = c.name.empty() ? "the keytab's first principal" : c.name;
    const auto failed = [&](Reason r, const std::string& what, krb5_error_code code) {
        std::string m = "Kerberos: " + what + " (" + who + ", keytab " + c.keytab + "): " + (k->ctx ? k->text(code) : "no context");
        auto e = client_error(r, std::move(m));
        return std::unexpected(std::move(e));
    };
    if (krb5_error_code rc = krb5_init_context(&k->ctx)) {
        k->ctx = nullptr;
        return failed(Reason::invalid_request, "cannot initialise", rc);
    }
    const std::string ktname = "FILE:" + c.keytab;
    if (krb5_error_code rc = krb5_kt_resolve(k->ctx, ktname.c_str(), &k->kt)) return failed(Reason::invalid_request, "cannot open the keytab", rc);
    if (!c.name.empty()) {
        if (krb5_error_code rc = krb5_parse_name(k->ctx, c.name.c_str(), &k->client))
            return failed(Reason::invalid_request, "bad principal", rc);
    } else {
        krb5_kt_cursor cur{};
        krb5_keytab_entry entry{};
        if (krb5_error_code rc = krb5_kt_start_seq_get(k->ctx, k->kt, &cur)) return failed(Reason::invalid_request, "cannot read the keytab", rc);
        krb5_error_code rc = krb5_kt_next_entry(k->ctx, k->kt, &entry, &cur);
        if (rc == 0) {
            rc = krb5_copy_principal(k->ctx, entry.principal, &k->client);
            krb5_free_keytab_entry_contents(k->ctx, &entry);
        }
        krb5_kt_end_seq_get(k->ctx, k->kt, &cur);
        if (rc != 0) return failed(Reason::invalid_request, "the keytab has no usable entry", rc);
    }
    if (krb5_error_code rc = krb5_get_init_creds_keytab(k->ctx, &k->creds, k->client, k->kt, 0, nullptr, nullptr)) {
        // An unreachable KDC is an outage; anything else (bad key, unknown
        // principal, disabled account) will not fix itself.
        const bool outage = rc == KRB5_KDC_UNREACH || rc == KRB5_REALM_CANT_RESOLVE || rc == KRB5KRB_ERR_RESPONSE_TOO_BIG;
        return failed(outage ? Reason::server_down : Reason::invalid_credentials, "cannot get a ticket", rc);
    }
    k->have_creds = true;
    if (krb5_error_code rc = krb5_cc_new_unique(k->ctx, "MEMORY", nullptr, &k->cc)) return failed(Reason::invalid_request, "cannot create a ccache", rc);
    if (krb5_error_code rc = krb5_cc_initialize(k->ctx, k->cc, k->client)) return failed(Reason::invalid_request, "cannot initialise the ccache", rc);
    if (krb5_error_code rc = krb5_cc_store_cred(k->ctx, k->cc, &k->creds)) return failed(Reason::invalid_request, "cannot store the ticket", rc);
    return k;
}

// Points this thread's GSS-API at a ccache for the lifetime of the object.
class ThreadCcache {
public:
    explicit ThreadCcache(const std::string& name) {
        OM_uint32 minor = 0;
        const char* old = nullptr;
        ok_ = gss_krb5_ccache_name(&minor, name.c_str(), &old) == GSS_S_COMPLETE;
        if (ok_ && old != nullptr) old_ = old;
    }
    ~ThreadCcache() {
        OM_uint32 minor = 0;
        if (ok_) gss_krb5_ccache_name(&minor, old_.empty() ? nullptr : old_.c_str(), nullptr);
    }
    ThreadCcache(const ThreadCcache&) = delete;
    ThreadCcache& operator=(const ThreadCcache&) = delete;
    bool ok() const { return ok_; }

private:
    bool ok_ = false;
    std::string old_;
};

// Cyrus SASL may ask for an authorization identity: none (act as ourselves).
int interact(LDAP*, unsigned, void*, void* in) {
    for (auto* i = static_cast<sasl_interact_t*>(in); i->id != SASL_CB_LIST_END; ++i) {
        i->result = "";
        i->len = 0;
    }
    return LDAP_SUCCESS;
}

LdapStatus bind_gssapi(Connection::Impl& impl, const Credentials& c) {
    const std::string context = "GSSAPI bind to " + impl.uri + (c.name.empty() ? "" : " as " + c.name);
    PWSYNC_ASSIGN(auto krb, kinit(c));
    const std::string ccname = std::string("MEMORY:") + krb5_cc_get_name(krb->ctx, krb->cc);
    ThreadCcache use(ccname);
    if (!use.ok()) return std::unexpected(client_error(Reason::invalid_request, context + ": cannot select the ccache"));
    LDAP* ld = impl.ld.get();
    // Samba refuses a SASL security layer on top of TLS; without TLS the
    // layer is what protects the connection, so it must seal (SSF >= 56).
    const char* secprops = impl.tls ? "maxssf=0"
                           : impl.options.protection == Protection::sasl_seal ? "minssf=56"
                                                                              : "minssf=1,maxssf=1";  // sign only
    if (ldap_set_option(ld, LDAP_OPT_X_SASL_SECPROPS, secprops) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld, LDAP_OPT_X_SASL_NOCANON, LDAP_OPT_ON) != LDAP_OPT_SUCCESS)
        return std::unexpected(client_error(Reason::invalid_request, context + ": cannot set SASL options"));
    const int rc = ldap_sasl_interactive_bind_s(ld, nullptr, "GSSAPI", nullptr, nullptr, LDAP_SASL_QUIET, interact, nullptr);
    if (rc != LDAP_SUCCESS) return std::unexpected(impl.handle_error(rc, context));
    ber_len_t ssf = 0;
    if (ldap_get_option(ld, LDAP_OPT_X_SASL_SSF, &ssf) == LDAP_OPT_SUCCESS) impl.ssf = static_cast<unsigned>(ssf);
    if (impl.options.protection == Protection::sasl_seal && !impl.tls && impl.ssf < 56)
        return std::unexpected(client_error(Reason::confidentiality_required,
                                            context + ": the SASL layer does not seal (SSF " + std::to_string(impl.ssf) + ")"));
    return {};
}

LdapStatus bind_simple(Connection::Impl& impl, const Credentials& c) {
    const std::string context = "simple bind to " + impl.uri + " as " + c.name;
    // A simple bind sends the password itself: only inside TLS.
    if (!impl.tls)
        return std::unexpected(client_error(Reason::confidentiality_required,
                                            context + ": refused: a simple bind needs TLS (ldaps:// or StartTLS)"));
    berval cred{static_cast<ber_len_t>(c.password.size()), const_cast<char*>(c.password.data())};
    int msgid = 0;
    const int rc = ldap_sasl_bind(impl.ld.get(), c.name.c_str(), LDAP_SASL_SIMPLE, &cred, nullptr, nullptr, &msgid);
    if (rc != LDAP_SUCCESS) return std::unexpected(impl.handle_error(rc, context));
    PWSYNC_ASSIGN(MsgPtr res, impl.wait(msgid, true, context));
    return impl.check_result(res.get(), context);
}

}  // namespace

LdapStatus bind_handle(Connection::Impl& impl, const Credentials& c) {
    impl.ssf = 0;
    switch (c.method) {
    case BindMethod::anonymous: return {};
    case BindMethod::simple:
        if (c.name.empty() || c.password.empty())
            return std::unexpected(client_error(Reason::invalid_request, "simple bind needs a bind DN (or UPN) and a password"));
        return bind_simple(impl, c);
    case BindMethod::gssapi: return bind_gssapi(impl, c);
    }
    return {};
}

}  // namespace pwsync::directory
