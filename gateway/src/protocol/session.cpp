#include "session.h"

#include <poll.h>
#include <signal.h>

#include <cstring>
#include <optional>
#include <variant>

#include "ldap_codec.h"

namespace pwsync::gateway {
namespace {

namespace code = ldap_code;
using ldap::Request;

// How a read of one message ended when it did not yield one.
enum class Close { quietly, protocol_error, too_large, stopped };

// An OID for a message: only when it looks like one (it came from the client).
std::string printable_oid(std::string_view oid) {
    if (oid.empty() || oid.size() > 64) return "(unprintable)";
    for (char c : oid)
        if (!((c >= '0' && c <= '9') || c == '.')) return "(unprintable)";
    return std::string(oid);
}

// Client-supplied text (a bind DN) for the log: no control characters that
// could forge log lines, and not too long.
std::string for_log(std::string_view text) {
    std::string out;
    for (const char c : text.substr(0, 200)) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) out += "\\x" + hex_encode(std::string_view(&c, 1));
        else out.push_back(c);
    }
    if (text.size() > 200) out += "...";
    return out;
}

class Session {
public:
    Session(const SessionContext& ctx, Fd fd, bool ldaps, Peer peer, TimePoint accepted_at)
        : ctx_(ctx),
          stream_(std::move(fd), ctx.stop_fd, ctx.clock),
          ldaps_(ldaps),
          peer_(std::move(peer)),
          last_activity_(accepted_at) {}

    void run();

private:
    // The next whole message in a wiping buffer (with one spare byte after
    // it for liblber), or why the connection must close.
    std::variant<Secret, Close> read_message();
    // False when the connection must close.
    bool handle(Request& req);
    bool bind(const Request& req, ldap::BindRequest& bind);
    bool extended(const Request& req, ldap::ExtendedRequest& ext);
    bool password_modify(const Request& req, ldap::ExtendedRequest& ext);
    bool search(const Request& req, const ldap::SearchRequest& s);
    bool start_tls();

    bool respond(int message_id, ber_tag_t tag, const LdapResult& result,
                 std::optional<std::string_view> name = std::nullopt,
                 std::optional<std::string_view> value = std::nullopt);
    void notice(const LdapResult& result);
    // Waits real time (a throttled bind); false when the listener stops.
    bool pause(std::chrono::milliseconds how_long);
    TimePoint deadline() const { return ctx_.clock.now() + ctx_.options.idle_timeout; }
    void log(std::string_view what) const {
        if (ctx_.options.log) ctx_.options.log("listener: " + peer_.address + ": " + std::string(what));
    }

    const SessionContext& ctx_;
    Stream stream_;
    bool ldaps_;
    Peer peer_;
    std::optional<std::string> principal_;  // set by a successful bind
    TimePoint last_activity_{};
};

void Session::run() {
    if (ldaps_) {
        if (!start_tls()) return;
    }
    for (;;) {
        auto got = read_message();
        if (auto* why = std::get_if<Close>(&got)) {
            if (*why == Close::protocol_error) notice({code::protocol_error, "malformed LDAP message"});
            if (*why == Close::too_large)
                notice({code::protocol_error, "message larger than " + std::to_string(ctx_.options.max_message_size) +
                                                  " bytes"});
            if (*why == Close::stopped) notice({code::unavailable, "the gateway is shutting down"});
            break;
        }
        Secret& frame = std::get<Secret>(got);
        auto req = ldap::decode_request(std::string_view(frame.data(), frame.size() - 1));
        frame.clear();  // the only copy of any password is now in a Secret
        if (!req) {
            log("closing: " + req.error().message);
            notice({code::protocol_error, req.error().message});
            break;
        }
        if (!handle(*req)) break;
    }
    stream_.shutdown();
}

std::variant<Secret, Close> Session::read_message() {
    char head[6];
    std::size_t have = 0;
    std::optional<ldap::FrameHeader> header;
    TimePoint until = last_activity_ + ctx_.options.idle_timeout;
    while (!header) {
        if (const Io io = stream_.read_exact(head + have, 1, until); io != Io::ok) {
            if (io == Io::timeout && have == 0) log("closing an idle connection");
            if (io == Io::error) log("closing: " + stream_.last_error());
            return io == Io::stopped && have == 0 ? Close::stopped : Close::quietly;
        }
        // After the first byte the whole message must arrive within the idle time.
        if (have++ == 0) until = deadline();
        const auto parsed = ldap::parse_frame_header(std::string_view(head, have));
        if (!parsed) {
            log("closing: the client does not speak LDAP");
            return parsed.error() == ldap::FrameError::length_too_long ? Close::too_large : Close::protocol_error;
        }
        header = *parsed;
    }
    const std::uint64_t total = header->header_size + header->body_size;
    if (total > ctx_.options.max_message_size) {
        log("closing: a message of " + std::to_string(total) + " bytes exceeds the limit");
        return Close::too_large;
    }
    Secret frame;
    frame.resize(static_cast<std::size_t>(total) + 1);
    std::memcpy(frame.data(), head, header->header_size);
    const Io io =
        stream_.read_exact(frame.data() + header->header_size, static_cast<std::size_t>(header->body_size), until);
    if (io != Io::ok) {
        if (io == Io::timeout) log("closing: a message did not arrive in time");
        return Close::quietly;
    }
    return frame;
}

bool Session::respond(int message_id, ber_tag_t tag, const LdapResult& result, std::optional<std::string_view> name,
                      std::optional<std::string_view> value) {
    // Idle time counts from the answer (set before the client can see it).
    last_activity_ = ctx_.clock.now();
    const auto bytes = ldap::encode_response(message_id, tag, result, name, value);
    if (!bytes) {
        log(bytes.error().message);
        return false;
    }
    const Io io = stream_.write_all(*bytes, deadline());
    if (io == Io::error) log("closing: " + stream_.last_error());
    return io == Io::ok;
}

void Session::notice(const LdapResult& result) {
    // Best effort: the client may be gone, or not reading.
    if (const auto bytes = ldap::encode_notice_of_disconnection(result))
        (void)stream_.write_all(*bytes, deadline());
}

bool Session::pause(std::chrono::milliseconds how_long) {
    const auto until = std::chrono::steady_clock::now() + how_long;
    for (;;) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        if (left.count() <= 0) return true;
        pollfd pfd{ctx_.stop_fd, POLLIN, 0};
        const int n = ::poll(&pfd, 1, static_cast<int>(left.count()));
        if (n > 0) return false;
        if (n < 0 && errno != EINTR) return false;
    }
}

bool Session::handle(Request& req) {
    using namespace ldap;
    if (req.op == tag::unbind_request) return false;
    if (req.op == tag::abandon_request) {  // nothing runs long enough to abandon
        last_activity_ = ctx_.clock.now();
        return true;
    }
    const ber_tag_t reply = *response_tag(req.op);
    auto* ext = std::get_if<ExtendedRequest>(&req.body);
    const bool is_start_tls = ext != nullptr && ext->oid == oid::start_tls;
    if (!stream_.tls() && !is_start_tls)
        return respond(req.message_id, reply,
                       {code::confidentiality_required, "TLS is required: use ldaps:// or StartTLS first"});
    if (req.critical_control)
        return respond(req.message_id, reply,
                       {code::unavailable_critical_extension, "a critical control is not supported"});
    if (auto* b = std::get_if<BindRequest>(&req.body)) return bind(req, *b);
    if (ext != nullptr) return extended(req, *ext);
    if (auto* s = std::get_if<SearchRequest>(&req.body)) return search(req, *s);
    return respond(req.message_id, reply,
                   {code::unwilling_to_perform,
                    "the pwsync gateway only accepts Bind, Password Modify, WhoAmI, StartTLS, Search of cn=monitor "
                    "and Unbind"});
}

bool Session::bind(const Request& req, ldap::BindRequest& b) {
    const ber_tag_t reply = ldap::tag::bind_response;
    principal_.reset();  // a bind, even a failed one, starts from anonymous
    if (b.version != 3)
        return respond(req.message_id, reply, {code::protocol_error, "only LDAP version 3 is supported"});

    std::expected<std::string, LdapResult> outcome;
    if (auto* simple = std::get_if<ldap::SimpleBind>(&b.auth)) {
        if (simple->dn.empty() && simple->password.empty())
            return respond(req.message_id, reply, {code::success, ""});  // anonymous
        if (simple->password.empty())
            return respond(req.message_id, reply,
                           {code::unwilling_to_perform, "unauthenticated bind (a name without a password) is not allowed"});
        const auto wait = ctx_.throttle.admit(simple->dn, peer_.address);
        if (!wait) {
            log("bind refused for now: too many failed binds for " + for_log(simple->dn));
            return respond(req.message_id, reply, {code::busy, "too many failed binds: try again later"});
        }
        if (wait->count() > 0) {
            log("bind for " + for_log(simple->dn) + " slowed down by " + std::to_string(wait->count()) + " ms after failed binds");
            if (!pause(*wait)) return false;
        }
        outcome = ctx_.handler.bind_simple(simple->dn, simple->password, peer_);
        simple->password.clear();
        if (outcome) ctx_.throttle.succeeded(simple->dn);
        else if (outcome.error().code == code::invalid_credentials) ctx_.throttle.failed(simple->dn, peer_.address);
    } else {
        auto& sasl = std::get<ldap::SaslBind>(b.auth);
        if (sasl.mechanism != "EXTERNAL")
            return respond(req.message_id, reply,
                           {code::auth_method_not_supported, "only simple binds and SASL EXTERNAL are supported"});
        if (!ctx_.tls.requests_client_certs())
            return respond(req.message_id, reply,
                           {code::auth_method_not_supported, "SASL EXTERNAL is not enabled: no client CA is configured"});
        if (peer_.client_cert_subject.empty())
            return respond(req.message_id, reply,
                           {code::inappropriate_authentication, "SASL EXTERNAL needs a verified client certificate"});
        if (sasl.credentials && !sasl.credentials->empty())
            return respond(req.message_id, reply,
                           {code::insufficient_access_rights, "an authorization identity is not supported"});
        outcome = ctx_.handler.bind_external(peer_);
    }
    if (!outcome) {
        LdapResult r = std::move(outcome).error();
        if (r.code == code::success) r = {code::other, "bind refused"};  // a handler must not fail with success
        return respond(req.message_id, reply, r);
    }
    if (outcome->empty()) return respond(req.message_id, reply, {code::other, "bind refused: no principal"});
    principal_ = std::move(*outcome);
    return respond(req.message_id, reply, {code::success, ""});
}

bool Session::extended(const Request& req, ldap::ExtendedRequest& ext) {
    const ber_tag_t reply = ldap::tag::extended_response;
    if (ext.oid == ldap::oid::start_tls) {
        if (stream_.tls())
            return respond(req.message_id, reply, {code::operations_error, "TLS is already established"},
                           ldap::oid::start_tls);
        if (ext.value)
            return respond(req.message_id, reply, {code::protocol_error, "StartTLS takes no value"}, ldap::oid::start_tls);
        if (!respond(req.message_id, reply, {code::success, ""}, ldap::oid::start_tls)) return false;
        return start_tls();
    }
    if (ext.oid == ldap::oid::who_am_i) {
        if (ext.value) return respond(req.message_id, reply, {code::protocol_error, "WhoAmI takes no value"});
        std::string authz;
        if (principal_) authz = (principal_->find('=') != std::string::npos ? "dn:" : "u:") + *principal_;
        return respond(req.message_id, reply, {code::success, ""}, std::nullopt, authz);
    }
    if (ext.oid == ldap::oid::password_modify) return password_modify(req, ext);
    return respond(req.message_id, reply,
                   {code::protocol_error, "unsupported extended operation " + printable_oid(ext.oid)});
}

bool Session::password_modify(const Request& req, ldap::ExtendedRequest& ext) {
    const ber_tag_t reply = ldap::tag::extended_response;
    if (!principal_)
        return respond(req.message_id, reply,
                       {code::insufficient_access_rights, "bind first: Password Modify needs an authenticated principal"});
    const LdapResult no_new{code::unwilling_to_perform,
                            "newPasswd is required: the gateway does not generate passwords"};
    if (!ext.value) return respond(req.message_id, reply, no_new);
    auto pm = ldap::decode_password_modify(ext.value->view());
    ext.value.reset();  // wiped: the passwords live on only in pm
    if (!pm) return respond(req.message_id, reply, {code::protocol_error, pm.error().message});
    if (!pm->new_password) return respond(req.message_id, reply, no_new);
    const std::string identity = pm->user_identity.value_or("");
    const LdapResult result =
        ctx_.handler.password_modify(*principal_, identity, pm->old_password, *pm->new_password, peer_);
    pm->old_password.reset();
    pm->new_password.reset();
    return respond(req.message_id, reply, result);
}

bool Session::search(const Request& req, const ldap::SearchRequest& s) {
    const ber_tag_t reply = ldap::tag::search_done;
    if (!principal_)
        return respond(req.message_id, reply, {code::insufficient_access_rights, "bind first: search needs a monitor principal"});
    if (!s.unsupported.empty()) return respond(req.message_id, reply, {code::unwilling_to_perform, s.unsupported});
    auto entries = ctx_.handler.search_subtree(*principal_, s.base);
    if (!entries) {
        LdapResult r = std::move(entries).error();
        if (r.code == code::success) r = {code::other, "search refused"};
        return respond(req.message_id, reply, r);
    }
    int sent = 0;
    for (const auto& e : *entries) {
        if (!ldap::in_scope(e.dn, s.base, s.scope) || !ldap::matches(s.filter, e)) continue;
        if (s.size_limit > 0 && sent == s.size_limit)
            return respond(req.message_id, reply, {code::size_limit_exceeded, ""});
        const auto bytes = ldap::encode_entry(req.message_id, e, s);
        if (!bytes) {
            log(bytes.error().message);
            return false;
        }
        if (stream_.write_all(*bytes, deadline()) != Io::ok) return false;
        ++sent;
    }
    return respond(req.message_id, reply, {code::success, ""});
}

bool Session::start_tls() {
    const Io io = stream_.start_tls(ctx_.tls.get(), last_activity_ + ctx_.options.idle_timeout);
    if (io != Io::ok) {
        if (io != Io::stopped) log("TLS handshake failed: " + stream_.last_error());
        return false;
    }
    peer_.tls = true;
    peer_.client_cert_subject = verified_peer_subject(stream_.ssl());
    last_activity_ = ctx_.clock.now();
    return true;
}

}  // namespace

void serve_session(const SessionContext& ctx, Fd fd, bool ldaps, Peer peer, TimePoint accepted_at) noexcept {
    // OpenSSL writes to the socket with write(2): a peer that went away must
    // give EPIPE here, not a SIGPIPE that ends the daemon.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    try {
        Session session(ctx, std::move(fd), ldaps, std::move(peer), accepted_at);
        session.run();
    } catch (...) {
        // Out of memory or the like: drop this connection, keep the listener.
        if (ctx.options.log) ctx.options.log("listener: a connection ended on an internal error");
    }
}

}  // namespace pwsync::gateway
