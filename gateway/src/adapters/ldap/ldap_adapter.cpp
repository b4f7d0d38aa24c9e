// The `ldap` adapter: sets passwords in an external LDAP directory with the
// Password Modify extended operation (method = passwd-exop, the default) or
// by replacing userPassword (method = userPassword).
//
// Properties: uri (space-separated, failover order), bind-dn, bind-password
// (secret), ca, and either dn-template ("uid=%s,ou=people,dc=example,dc=com")
// or base + filter ("(uid=%s)") to find the entry of an external user.
#include <mutex>
#include <optional>
#include <sstream>
#include <vector>

#include "registry.h"
#include "pwsync/directory.h"

namespace pwsync::gateway {
namespace {

// RFC 4514: escapes a value placed into a DN.
std::string escape_dn_value(std::string_view v) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        const char c = v[i];
        const bool edge = (i == 0 && (c == ' ' || c == '#')) || (i + 1 == v.size() && c == ' ');
        if (edge || c == ',' || c == '+' || c == '"' || c == '\\' || c == '<' || c == '>' || c == ';' || c == '=') out.push_back('\\');
        if (c == '\0') { out += "\\00"; continue; }
        out.push_back(c);
    }
    return out;
}

std::string fill(const std::string& templ, const std::string& value) {
    std::string out = templ;
    for (auto at = out.find("%s"); at != std::string::npos; at = out.find("%s", at + value.size())) out.replace(at, 2, value);
    return out;
}

DeliveryResult failed(const directory::LdapError& e) {
    return {e.retryable() ? Outcome::retry : Outcome::permanent, e.message};
}

class LdapAdapter final : public Adapter {
public:
    LdapAdapter(directory::ConnectOptions options, std::string dn_template, std::string base, std::string filter,
                bool exop)
        : options_(std::move(options)), dn_template_(std::move(dn_template)), base_(std::move(base)),
          filter_(std::move(filter)), exop_(exop) {}

    // One connection per delivery in flight (the dispatcher bounds them by
    // the adapter's concurrency); idle ones are kept for the next delivery.
    DeliveryResult deliver(const Delivery& d) override {
        std::optional<directory::Connection> conn;
        {
            std::lock_guard lock(mutex_);
            if (!idle_.empty()) {
                conn.emplace(std::move(idle_.back()));
                idle_.pop_back();
            }
        }
        if (!conn) {
            auto c = directory::Connection::open(options_.clone());
            if (!c) return failed(c.error());
            conn.emplace(std::move(*c));
        }
        conn->limit_until(d.deadline);
        auto result = attempt(*conn, d);
        conn->limit_until({});
        if (result.outcome != Outcome::retry) {  // else reconnect next time
            std::lock_guard lock(mutex_);
            idle_.push_back(std::move(*conn));
        }
        return result;
    }

private:
    DeliveryResult attempt(directory::Connection& conn, const Delivery& d) const {
        std::string dn;
        if (!dn_template_.empty()) {
            dn = fill(dn_template_, escape_dn_value(d.external));
        } else {
            directory::Search s;
            s.base = base_;
            s.filter = fill(filter_, directory::escape_filter_value(d.external));
            s.attributes = {"1.1"};
            s.size_limit = 2;
            auto found = conn.search(s);
            if (!found) return failed(found.error());
            if (found->empty()) return {Outcome::permanent, "no entry matches " + s.filter + " under " + base_};
            if (found->size() > 1) return {Outcome::permanent, "several entries match " + s.filter + " under " + base_};
            dn = found->front().dn;
        }
        if (exop_) {
            auto r = directory::password_modify(conn, dn, d.old_password, d.password);
            if (!r) return failed(r.error());
        } else {
            auto r = directory::replace_user_password(conn, dn, *d.password);
            if (!r) return failed(r.error());
        }
        return {Outcome::done, "set on " + dn};
    }

    std::mutex mutex_;
    directory::ConnectOptions options_;
    std::string dn_template_, base_, filter_;
    bool exop_;
    std::vector<directory::Connection> idle_;
};

}  // namespace

Result<std::unique_ptr<Adapter>> make_ldap_adapter(const AdapterContext& c) {
    PWSYNC_TRY(ldap_adapter_type().validate(c.config));
    const auto& p = c.config.properties;
    auto get = [&](const char* k) { auto it = p.find(k); return it == p.end() ? std::string() : it->second; };
    const std::string name = "ldap adapter '" + c.config.name + "'";
    directory::ConnectOptions o;
    std::istringstream uris(get("uri"));
    for (std::string u; uris >> u;) o.uris.push_back(u);
    if (o.uris.empty()) return fail(Errc::invalid_argument, name + " needs property uri");
    o.ca_file = get("ca");
    o.connect_timeout = std::chrono::seconds(c.config.timeout);
    o.op_timeout = std::chrono::seconds(c.config.timeout);
    if (const auto dn = get("bind-dn"); !dn.empty()) {
        o.credentials.method = directory::BindMethod::simple;
        o.credentials.name = dn;
        PWSYNC_ASSIGN(o.credentials.password, c.secret("bind-password"));
    }
    const std::string templ = get("dn-template"), base = get("base"), filter = get("filter");
    if (templ.empty() && (base.empty() || filter.empty()))
        return fail(Errc::invalid_argument, name + " needs dn-template, or base and filter");
    const std::string method = get("method").empty() ? "passwd-exop" : get("method");
    if (method != "passwd-exop" && method != "userPassword")
        return fail(Errc::invalid_argument, name + ": method must be passwd-exop or userPassword");
    return std::make_unique<LdapAdapter>(std::move(o), templ, base, filter, method == "passwd-exop");
}

}  // namespace pwsync::gateway
