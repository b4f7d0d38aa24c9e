// Operations of the external `ldap` adapter: RFC 3062 Password Modify and a
// plain replace of userPassword.
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "ber.h"
#include "connection_impl.h"

#include <cstring>

namespace pwsync::directory {

LdapResult<std::optional<Secret>> password_modify(Connection& c, std::string_view user_identity,
                                                  const Secret* old_password, const Secret* new_password) {
    const std::string context = "password modify for " + std::string(user_identity);
    auto& impl = c.impl();
    std::optional<Secret> generated;
    auto r = impl.write([&]() -> LdapStatus {
        PWSYNC_TRY(impl.require_protection(context));
        Secret request = ber::password_modify_request(user_identity, old_password, new_password);
        berval data{static_cast<ber_len_t>(request.size()), request.data()};
        int msgid = 0;
        const int rc = ldap_extended_operation(impl.ld.get(), LDAP_EXOP_MODIFY_PASSWD, &data, nullptr, nullptr, &msgid);
        if (rc != LDAP_SUCCESS) return std::unexpected(impl.handle_error(rc, context));
        PWSYNC_ASSIGN(MsgPtr res, impl.wait(msgid, true, context));
        PWSYNC_TRY(impl.check_result(res.get(), context));
        char* oid = nullptr;
        berval* value = nullptr;
        if (ldap_parse_extended_result(impl.ld.get(), res.get(), &oid, &value, 0) == LDAP_SUCCESS) {
            MemPtr o{oid};
            if (value != nullptr) {
                bool ok = true;
                generated = ber::password_modify_response(std::string_view(value->bv_val, value->bv_len), ok);
                wipe(value->bv_val, value->bv_len);
                ber_bvfree(value);
                if (!ok) return std::unexpected(client_error(Reason::invalid_request, context + ": malformed response value"));
            }
        }
        return {};
    });
    if (!r) {
        auto e = scrubbed(std::move(r).error(), {old_password, new_password});
        return std::unexpected(std::move(e));
    }
    return generated;
}

Secret ssha_hash(const Secret& password) {
    unsigned char salt[8];
    RAND_bytes(salt, sizeof salt);
    Secret input = password.clone();
    input.append(std::string_view(reinterpret_cast<const char*>(salt), sizeof salt));
    unsigned char digest[SHA_DIGEST_LENGTH + sizeof salt];
    SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
    std::memcpy(digest + SHA_DIGEST_LENGTH, salt, sizeof salt);
    Secret out("{SSHA}");
    char b64[64];
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64), digest, sizeof digest);
    out.append(std::string_view(b64, static_cast<std::size_t>(n)));
    wipe(digest, sizeof digest);
    wipe(b64, sizeof b64);
    return out;
}

LdapStatus replace_user_password(Connection& c, std::string_view dn, const Secret& new_password, UserPasswordHash hash) {
    const std::string context = "replace userPassword of " + std::string(dn);
    if (new_password.empty()) return std::unexpected(client_error(Reason::invalid_request, context + ": empty password"));
    const Secret value = hash == UserPasswordHash::ssha ? ssha_hash(new_password) : new_password.clone();
    auto& impl = c.impl();
    return impl.write([&]() -> LdapStatus {
        PWSYNC_TRY(impl.require_protection(context));
        berval bv{static_cast<ber_len_t>(value.size()), const_cast<char*>(value.data())};
        berval* vals[] = {&bv, nullptr};
        LDAPMod mod{};
        mod.mod_op = LDAP_MOD_REPLACE | LDAP_MOD_BVALUES;
        mod.mod_type = const_cast<char*>("userPassword");
        mod.mod_bvalues = vals;
        LDAPMod* mods[] = {&mod, nullptr};
        return impl.modify_raw(dn, mods, nullptr, context);
    });
}

}  // namespace pwsync::directory
