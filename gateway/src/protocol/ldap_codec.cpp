#include "ldap_codec.h"

namespace pwsync::gateway::ldap {
namespace {

constexpr ber_tag_t kSimple = 0x80;     // AuthenticationChoice simple [0]
constexpr ber_tag_t kSasl = 0xa3;       // AuthenticationChoice sasl [3]
constexpr ber_tag_t kExtName = 0x80;    // ExtendedRequest requestName [0]
constexpr ber_tag_t kExtValue = 0x81;   // ExtendedRequest requestValue [1]
constexpr ber_tag_t kRespName = 0x8a;   // ExtendedResponse responseName [10]
constexpr ber_tag_t kRespValue = 0x8b;  // ExtendedResponse responseValue [11]
constexpr ber_tag_t kPmUser = 0x80, kPmOld = 0x81, kPmNew = 0x82;

Result<BindRequest> decode_bind(std::string_view contents) {
    auto r = BerReader::over(contents);
    if (!r) return protocol_error("cannot read BindRequest");
    BindRequest req;
    const auto version = r->integer();
    if (!version) return protocol_error("BindRequest has no version");
    req.version = *version;
    const auto name = r->element(LBER_OCTETSTRING);
    if (!name) return protocol_error("BindRequest has no name");
    const auto tag = r->peek_tag();
    if (tag == kSimple) {
        const auto pw = r->element(kSimple);
        if (!pw) return protocol_error("BindRequest has a malformed simple password");
        req.auth = SimpleBind{std::string(*name), Secret(*pw)};
    } else if (tag == kSasl) {
        auto sasl = r->enter(kSasl);
        if (!sasl) return protocol_error("BindRequest has malformed SASL credentials");
        const auto mech = sasl->element(LBER_OCTETSTRING);
        if (!mech) return protocol_error("BindRequest has no SASL mechanism");
        SaslBind s{std::string(*name), std::string(*mech), std::nullopt};
        if (!sasl->at_end()) {
            const auto creds = sasl->element(LBER_OCTETSTRING);
            if (!creds) return protocol_error("BindRequest has malformed SASL credentials");
            s.credentials = Secret(*creds);
        }
        req.auth = std::move(s);
    } else {
        return protocol_error("BindRequest has an unknown authentication choice");
    }
    return req;
}

Result<ExtendedRequest> decode_extended(std::string_view contents) {
    auto r = BerReader::over(contents);
    if (!r) return protocol_error("cannot read ExtendedRequest");
    const auto name = r->element(kExtName);
    if (!name) return protocol_error("ExtendedRequest has no requestName");
    ExtendedRequest req{std::string(*name), std::nullopt};
    if (!r->at_end() && r->peek_tag() == kExtValue) {
        const auto value = r->element(kExtValue);
        if (!value) return protocol_error("ExtendedRequest has a malformed requestValue");
        req.value = Secret(*value);
    }
    return req;
}

// Any control marked critical: none is supported, so such a request must be
// refused (RFC 4511 4.1.11).
Result<bool> decode_controls(BerReader& controls) {
    bool critical = false;
    while (!controls.at_end()) {
        auto c = controls.enter(LBER_SEQUENCE);
        if (!c || !c->element(LBER_OCTETSTRING)) return protocol_error("malformed control");
        if (!c->at_end() && c->peek_tag() == LBER_BOOLEAN) {
            const auto flag = c->integer(LBER_BOOLEAN);
            if (!flag) return protocol_error("malformed control criticality");
            critical |= *flag != 0;
        }
    }
    return critical;
}

}  // namespace

std::expected<std::optional<FrameHeader>, FrameError> parse_frame_header(std::string_view first) {
    if (first.empty()) return std::optional<FrameHeader>{};
    if (static_cast<unsigned char>(first[0]) != tag::message) return std::unexpected(FrameError::not_a_message);
    if (first.size() < 2) return std::optional<FrameHeader>{};
    const auto l0 = static_cast<unsigned char>(first[1]);
    if (l0 < 0x80) return FrameHeader{2, l0};
    if (l0 == 0x80) return std::unexpected(FrameError::indefinite_length);
    const std::size_t n = l0 & 0x7fU;
    if (n > 4) return std::unexpected(FrameError::length_too_long);  // over 4 GiB: never acceptable
    if (first.size() < 2 + n) return std::optional<FrameHeader>{};
    std::uint64_t len = 0;
    for (std::size_t i = 0; i < n; ++i) len = (len << 8) | static_cast<unsigned char>(first[2 + i]);
    return FrameHeader{2 + n, len};
}

std::optional<BerReader> BerReader::over(std::string_view bytes) {
    BerReading ber(ber_alloc_t(0));
    if (!ber) return std::nullopt;
    berval bv{bytes.size(), const_cast<char*>(bytes.data())};
    ber_init2(ber.get(), &bv, 0);
    return BerReader(std::move(ber));
}

bool BerReader::at_end() const {
    ber_len_t left = 0;
    if (ber_get_option(ber_.get(), LBER_OPT_REMAINING_BYTES, &left) != LBER_OPT_SUCCESS) return true;
    return left == 0;
}

ber_tag_t BerReader::peek_tag() const {
    if (at_end()) return LBER_DEFAULT;
    ber_len_t len = 0;
    return ber_peek_tag(ber_.get(), &len);
}

std::optional<std::pair<ber_tag_t, std::string_view>> BerReader::any_element() {
    if (at_end()) return std::nullopt;
    berval bv{};
    const ber_tag_t t = ber_skip_element(ber_.get(), &bv);
    if (t == LBER_DEFAULT) return std::nullopt;
    return std::pair{t, std::string_view(bv.bv_val, bv.bv_len)};
}

std::optional<std::string_view> BerReader::element(ber_tag_t expected) {
    if (peek_tag() != expected) return std::nullopt;
    auto e = any_element();
    if (!e) return std::nullopt;
    return e->second;
}

std::optional<ber_int_t> BerReader::integer(ber_tag_t expected) {
    const auto contents = element(expected);
    if (!contents || contents->empty()) return std::nullopt;
    const berval bv{contents->size(), const_cast<char*>(contents->data())};
    ber_int_t n = 0;
    if (ber_decode_int(&bv, &n) != 0) return std::nullopt;
    return n;
}

std::optional<BerReader> BerReader::enter(ber_tag_t expected) {
    const auto contents = element(expected);
    if (!contents) return std::nullopt;
    return over(*contents);
}

Result<Request> decode_request(std::string_view message) {
    auto top = BerReader::over(message);
    if (!top) return protocol_error("cannot read the message");
    auto msg = top->enter(tag::message);
    if (!msg || !top->at_end()) return protocol_error("the message is not one LDAPMessage");
    Request req;
    const auto id = msg->integer();
    if (!id || *id <= 0) return protocol_error("the message has no valid messageID");
    req.message_id = *id;
    const auto op = msg->any_element();
    if (!op) return protocol_error("the message has no valid protocolOp");
    req.op = op->first;
    if (!msg->at_end()) {
        auto controls = msg->enter(tag::controls);
        if (!controls) return protocol_error("the message has malformed controls");
        PWSYNC_ASSIGN(req.critical_control, decode_controls(*controls));
    }
    if (req.op == tag::bind_request) {
        PWSYNC_ASSIGN(auto bind, decode_bind(op->second));
        req.body = std::move(bind);
    } else if (req.op == tag::extended_request) {
        PWSYNC_ASSIGN(auto ext, decode_extended(op->second));
        req.body = std::move(ext);
    } else if (req.op == tag::search_request) {
        PWSYNC_ASSIGN(auto search, decode_search(op->second));
        req.body = std::move(search);
    } else if (!is_known_request(req.op)) {
        return protocol_error("unknown protocolOp");
    }
    return req;
}

Result<PasswordModify> decode_password_modify(std::string_view value) {
    // A wiping copy with the spare byte liblber peeks at.
    Secret buffer(value);
    buffer.push_back('\0');
    auto top = BerReader::over(std::string_view(buffer.data(), value.size()));
    if (!top) return protocol_error("cannot read the Password Modify request");
    auto seq = top->enter(LBER_SEQUENCE);
    if (!seq || !top->at_end()) return protocol_error("the Password Modify request value is not a SEQUENCE");
    PasswordModify pm;
    ber_tag_t last = 0;
    while (!seq->at_end()) {
        const auto e = seq->any_element();
        if (!e) return protocol_error("the Password Modify request value is malformed");
        // Fields are optional but ordered and unique.
        if (e->first <= last) return protocol_error("the Password Modify request value has fields out of order");
        last = e->first;
        if (e->first == kPmUser) pm.user_identity = std::string(e->second);
        else if (e->first == kPmOld) pm.old_password = Secret(e->second);
        else if (e->first == kPmNew) pm.new_password = Secret(e->second);
        else return protocol_error("the Password Modify request value has an unknown field");
    }
    return pm;
}

std::optional<ber_tag_t> response_tag(ber_tag_t request_tag) {
    switch (request_tag) {
        case tag::bind_request: return tag::bind_response;
        case tag::search_request: return tag::search_done;
        case tag::modify_request: return tag::modify_response;
        case tag::add_request: return tag::add_response;
        case tag::delete_request: return tag::delete_response;
        case tag::moddn_request: return tag::moddn_response;
        case tag::compare_request: return tag::compare_response;
        case tag::extended_request: return tag::extended_response;
        default: return std::nullopt;
    }
}

bool is_known_request(ber_tag_t request_tag) {
    return response_tag(request_tag).has_value() || request_tag == tag::unbind_request ||
           request_tag == tag::abandon_request;
}

Result<std::string> encode_response(int message_id, ber_tag_t response_tag, const LdapResult& result,
                                    std::optional<std::string_view> response_name,
                                    std::optional<std::string_view> response_value) {
    BerWriting ber(ber_alloc_t(LBER_USE_DER));
    if (!ber) return fail(Errc::internal, "out of memory encoding a response");
    const std::string_view msg = result.message;
    int rc = ber_printf(ber.get(), "{it{eoo", static_cast<ber_int_t>(message_id), response_tag,
                        static_cast<ber_int_t>(result.code), "", static_cast<ber_len_t>(0), msg.data(),
                        static_cast<ber_len_t>(msg.size()));
    if (rc != -1 && response_name)
        rc = ber_printf(ber.get(), "to", kRespName, response_name->data(), static_cast<ber_len_t>(response_name->size()));
    if (rc != -1 && response_value)
        rc = ber_printf(ber.get(), "to", kRespValue, response_value->data(),
                        static_cast<ber_len_t>(response_value->size()));
    if (rc != -1) rc = ber_printf(ber.get(), "}}");
    berval bv{};
    if (rc == -1 || ber_flatten2(ber.get(), &bv, 0) != 0) return fail(Errc::internal, "cannot encode a response");
    return std::string(bv.bv_val, bv.bv_len);
}

Result<std::string> encode_notice_of_disconnection(const LdapResult& result) {
    return encode_response(0, tag::extended_response, result, oid::notice_of_disconnection);
}

}  // namespace pwsync::gateway::ldap
