// Principals: identities allowed to send changes to the gateway.
#include "impl.h"

namespace pwsync::store {

const char* principal_kind_name(PrincipalKind k) noexcept {
    switch (k) {
        case PrincipalKind::windows: return "windows";
        case PrincipalKind::adapter: return "adapter";
        case PrincipalKind::monitor: return "monitor";
    }
    return "unknown";
}

const char* capture_mode_name(CaptureMode m) noexcept {
    switch (m) {
        case CaptureMode::none: return "none";
        case CaptureMode::pre_commit: return "pre-commit";
        case CaptureMode::post_commit: return "post-commit";
    }
    return "?";
}

namespace {
Result<records::PrincipalRecord> load_principal(const TxnState& s, std::string_view name) {
    // A name no principal can have (empty, too long for a key) is not a
    // question for the backend: LMDB refuses an empty key as a storage error.
    if (!check_name("principal name", name)) return fail(Errc::not_found, "principal " + quote(name) + " does not exist");
    return load(s, s.db().principals, app_key(name), records::decode_principal,
                "principal " + quote(name) + " does not exist");
}
constexpr std::size_t kMinSecret = 12;
}  // namespace

Result<Principal> ReadTxn::principal(std::string_view name) const {
    PWSYNC_ASSIGN(auto rec, load_principal(*s_, name));
    return std::move(rec.principal);
}

Result<std::vector<Principal>> ReadTxn::principals() const {
    PWSYNC_ASSIGN(auto recs, load_all(*s_, s_->db().principals, records::decode_principal));
    std::vector<Principal> out;
    for (auto& r : recs) out.push_back(std::move(r.principal));
    return out;
}

Result<std::string> ReadTxn::principal_with_certificate(std::string_view subject) const {
    const std::string wanted = ascii_lower(subject);
    std::optional<std::string> found;
    std::optional<Error> unreadable;
    PWSYNC_TRY(s_->kv().scan(s_->db().principals, "", [&](std::string_view, std::string_view v) -> Result<bool> {
        auto rec = records::decode_principal(v);
        if (!rec) {
            if (!unreadable) unreadable = rec.error();
            return true;
        }
        const auto& p = rec->principal;
        if (p.certificate_subject.empty() || ascii_lower(p.certificate_subject) != wanted) return true;
        found = p.name;
        return false;
    }));
    if (found) return std::move(*found);
    if (unreadable) return std::unexpected(std::move(*unreadable));
    return fail(Errc::not_found, "no principal has this certificate");
}

Result<bool> ReadTxn::verify_principal_secret(std::string_view name, std::string_view secret) const {
    auto rec = load_principal(*s_, name);
    if (!rec) {
        // As slow for an unknown name as for a wrong secret: timing must not
        // tell which principals exist.
        static const auto dummy = crypto::hash_secret("pwsync: no such principal");
        if (dummy) (void)crypto::verify_secret(*dummy, secret);
        return std::unexpected(rec.error());
    }
    return crypto::verify_secret(rec->secret, secret);
}

Result<std::string> ReadTxn::principal_secret_version(std::string_view name) const {
    PWSYNC_ASSIGN(auto rec, load_principal(*s_, name));
    return rec.secret.salt;
}

Status WriteTxn::create_principal(Principal p, const Secret& secret) {
    PWSYNC_TRY(check_name("principal name", p.name));
    PWSYNC_ASSIGN(auto existing, s_->kv().get(s_->db().principals, app_key(p.name)));
    if (existing) return fail(Errc::already_exists, "principal " + quote(p.name) + " already exists");
    if (p.kind == PrincipalKind::adapter) {
        if (p.adapter.empty()) return fail(Errc::invalid_argument, "an adapter principal needs --adapter");
        if (p.capture != CaptureMode::none)
            return fail(Errc::invalid_argument, "--capture applies to windows principals only");
        PWSYNC_ASSIGN(Adapter a, adapter(p.adapter));
        p.adapter = a.name;
    } else if (p.kind == PrincipalKind::monitor) {
        if (!p.adapter.empty() || p.capture != CaptureMode::none)
            return fail(Errc::invalid_argument, "a monitor principal has neither --adapter nor --capture");
    } else {
        if (!p.adapter.empty()) return fail(Errc::invalid_argument, "a windows principal has no adapter");
        if (p.capture == CaptureMode::none)
            return fail(Errc::invalid_argument, "a windows principal needs --capture pre-commit or post-commit");
    }
    if (secret.size() < kMinSecret)
        return fail(Errc::invalid_argument,
                    "a principal secret must be at least " + std::to_string(kMinSecret) + " characters");
    PWSYNC_ASSIGN(auto hash, crypto::hash_secret(secret.view()));
    p.created = s_->now();
    PWSYNC_TRY(s_->kv().put(s_->db().principals, app_key(p.name), records::encode(records::PrincipalRecord{p, hash})));
    std::string detail = std::string("kind=") + principal_kind_name(p.kind);
    if (p.kind == PrincipalKind::adapter) detail += " adapter=" + p.adapter;
    else if (p.kind == PrincipalKind::windows) detail += std::string(" capture=") + capture_mode_name(p.capture);
    return audit("principal.create", p.name, detail);
}

Status WriteTxn::delete_principal(std::string_view name) {
    PWSYNC_ASSIGN(auto rec, load_principal(*s_, name));
    PWSYNC_TRY(s_->kv().del(s_->db().principals, app_key(name)));
    return audit("principal.delete", rec.principal.name);
}

}  // namespace pwsync::store
