// AD password writes through unicodePwd: admin reset and user change.
#include "ber.h"
#include "connection_impl.h"

namespace pwsync::directory {
namespace {

constexpr const char* kPolicyHintsOid = "1.2.840.113556.1.4.2239";

LdapResult<Secret> encoded(const Secret& password, const char* which) {
    auto v = encode_unicode_pwd(password.view());
    if (!v) return std::unexpected(client_error(Reason::invalid_request, std::string(which) + ": " + v.error().message));
    return std::move(*v);
}

}  // namespace

LdapStatus reset_password(Connection& c, std::string_view dn, const Secret& new_password, const ResetOptions& options) {
    const std::string context = "reset the password of " + std::string(dn);
    PWSYNC_ASSIGN(Secret value, encoded(new_password, context.c_str()));
    auto& impl = c.impl();
    auto r = impl.write([&]() -> LdapStatus {
        PWSYNC_TRY(impl.require_protection(context));
        berval bv{static_cast<ber_len_t>(value.size()), value.data()};
        berval* vals[] = {&bv, nullptr};
        LDAPMod mod{};
        mod.mod_op = LDAP_MOD_REPLACE | LDAP_MOD_BVALUES;
        mod.mod_type = const_cast<char*>("unicodePwd");
        mod.mod_bvalues = vals;
        LDAPMod* mods[] = {&mod, nullptr};
        ControlPtr hints;
        LDAPControl* ctrls[] = {nullptr, nullptr};
        if (options.policy_hints) {
            // Non-critical: a DC that does not know it still resets.
            hints = make_control(kPolicyHintsOid, ber::policy_hints_value(), false);
            ctrls[0] = hints.get();
        }
        return impl.modify_raw(dn, mods, ctrls, context);
    });
    if (!r) return std::unexpected(scrubbed(std::move(r).error(), {&new_password}));
    return {};
}

LdapStatus change_password(Connection& c, std::string_view dn, const Secret& old_password, const Secret& new_password) {
    const std::string context = "change the password of " + std::string(dn);
    PWSYNC_ASSIGN(Secret old_value, encoded(old_password, (context + " (old password)").c_str()));
    PWSYNC_ASSIGN(Secret new_value, encoded(new_password, (context + " (new password)").c_str()));
    auto& impl = c.impl();
    auto r = impl.write([&]() -> LdapStatus {
        PWSYNC_TRY(impl.require_protection(context));
        berval old_bv{static_cast<ber_len_t>(old_value.size()), old_value.data()};
        berval new_bv{static_cast<ber_len_t>(new_value.size()), new_value.data()};
        berval* old_vals[] = {&old_bv, nullptr};
        berval* new_vals[] = {&new_bv, nullptr};
        // One modify: delete the old value, add the new one. AD treats this
        // as a user change (old password checked, policy applied).
        LDAPMod del{}, add{};
        del.mod_op = LDAP_MOD_DELETE | LDAP_MOD_BVALUES;
        del.mod_type = const_cast<char*>("unicodePwd");
        del.mod_bvalues = old_vals;
        add.mod_op = LDAP_MOD_ADD | LDAP_MOD_BVALUES;
        add.mod_type = const_cast<char*>("unicodePwd");
        add.mod_bvalues = new_vals;
        LDAPMod* mods[] = {&del, &add, nullptr};
        return impl.modify_raw(dn, mods, nullptr, context);
    });
    if (!r) return std::unexpected(scrubbed(std::move(r).error(), {&old_password, &new_password}));
    return {};
}

}  // namespace pwsync::directory
