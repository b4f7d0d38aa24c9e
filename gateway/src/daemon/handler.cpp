#include "handler.h"

#include <algorithm>
#include <chrono>

#include "ldap_search.h"
#include "log.h"

namespace pwsync::gateway {
namespace {

// The one place where the engine's outcomes become RFC 4511 result codes.
int ldap_code_of(ChangeOutcome outcome) {
    switch (outcome) {
        case ChangeOutcome::stored: return ldap_code::success;
        case ChangeOutcome::incomplete:
        case ChangeOutcome::refused: return ldap_code::unwilling_to_perform;
        case ChangeOutcome::malformed: return ldap_code::protocol_error;
        case ChangeOutcome::bad_password:
        case ChangeOutcome::refused_by_ad: return ldap_code::constraint_violation;
        case ChangeOutcome::no_mapping: return ldap_code::no_such_object;
        case ChangeOutcome::denied: return ldap_code::insufficient_access_rights;
        case ChangeOutcome::wrong_old_password: return ldap_code::invalid_credentials;
        case ChangeOutcome::unavailable: return ldap_code::unavailable;
        case ChangeOutcome::failed: break;
    }
    return ldap_code::other;
}

// A bind the store could not check (a database failing over, a record that
// does not decode) is not a failed bind: no 49, which the bind throttle
// counts and pwsync-notify takes as final, but 52 when asking again may
// work (the sender tries another gateway or later) and 80 otherwise.
LdapResult store_cannot_tell(const Error& e, std::string_view what = "the store could not check this principal") {
    if (store_may_answer_later(e)) return {ldap_code::unavailable, "the store is unavailable: try again"};
    return {ldap_code::other, std::string(what)};
}

}  // namespace

LdapResult EngineHandler::unchecked(std::string_view what, const Peer& peer, const Error& e) {
    // While a database fails over this comes with every sender's attempt.
    if (auto line = unchecked_log_.admit(std::string(what) + " from " + peer.address + " not checked: " + e.message))
        log_error(*line);
    return store_cannot_tell(e);
}

std::expected<std::string, LdapResult> EngineHandler::bind_simple(std::string_view dn, const Secret& password,
                                                                  const Peer& peer) {
    auto name = engine_.authenticate(dn, password);
    if (name) return *name;
    if (name.error().code != Errc::permission)
        return std::unexpected(unchecked("bind as '" + std::string(dn) + "'", peer, name.error()));
    log_warning("failed bind as '" + std::string(dn) + "' from " + peer.address);
    return std::unexpected(LdapResult{ldap_code::invalid_credentials, "invalid credentials"});
}

std::expected<std::string, LdapResult> EngineHandler::bind_external(const Peer& peer) {
    auto name = engine_.authenticate_certificate(peer.client_cert_subject);
    if (name) return *name;
    if (name.error().code != Errc::permission)
        return std::unexpected(unchecked("certificate '" + peer.client_cert_subject + "'", peer, name.error()));
    log_warning("certificate '" + peer.client_cert_subject + "' from " + peer.address + " is no principal's");
    return std::unexpected(LdapResult{ldap_code::invalid_credentials, "no principal has this certificate"});
}

LdapResult EngineHandler::password_modify(const std::string& principal, std::string_view user_identity,
                                          const std::optional<Secret>& old_password, const Secret& new_password,
                                          const Peer& peer) {
    // Timed on the metrics' clock (injected: tests move it).
    const auto elapsed = [&] { return metrics_ ? metrics_->clock().elapsed() : std::chrono::nanoseconds{0}; };
    const auto from = elapsed();
    auto r = engine_.change(principal, user_identity, old_password ? &*old_password : nullptr, new_password);
    const auto took = elapsed() - from;
    const int code = ldap_code_of(r.outcome);
    const std::string line = "change for '" + std::string(user_identity) + "' from " + principal + " (" + peer.address +
                             "): " + std::to_string(code) + " " + r.message;
    if (r.outcome == ChangeOutcome::stored) log_info(line);
    else log_warning(line);
    if (metrics_) metrics_->change(r.mode, r.outcome, std::max(took, std::chrono::nanoseconds{0}), r.times);
    return {code, r.message};
}

std::expected<std::vector<SearchEntry>, LdapResult> EngineHandler::search_subtree(const std::string& principal,
                                                                                  std::string_view base) {
    if (!store_ || !figures_) return std::unexpected(LdapResult{ldap_code::unwilling_to_perform, "monitoring is off"});
    {
        auto r = store_->read();
        if (!r) return std::unexpected(store_cannot_tell(r.error()));
        auto p = r->principal(principal);
        if (!p && p.error().code != Errc::not_found) return std::unexpected(store_cannot_tell(p.error()));
        if (!p || p->kind != store::PrincipalKind::monitor)
            return std::unexpected(LdapResult{ldap_code::insufficient_access_rights,
                                              "only monitor principals may search (pwsync principal create NAME --kind monitor)"});
    }
    auto figures = figures_->collect();
    if (!figures) {
        log_error("monitor: " + figures.error().message);
        return std::unexpected(store_cannot_tell(figures.error(), "the figures could not be read"));
    }
    auto entries = monitor_entries(*figures);
    const std::string wanted = ldap::normalize_dn(base);
    for (const auto& e : entries)
        if (ldap::normalize_dn(e.dn) == wanted) return entries;
    return std::unexpected(LdapResult{ldap_code::no_such_object, "only cn=monitor can be searched"});
}

}  // namespace pwsync::gateway
