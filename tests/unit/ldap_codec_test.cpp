// LDAP message decoding and response encoding, including hostile input.
#include <gtest/gtest.h>

#include <random>

#include "ldap_codec.h"
#include "ldap_raw_client.h"

namespace pwsync::gateway::ldap {
namespace {

// Decodes with the spare byte liblber may peek at.
Result<Request> decode(std::string bytes) {
    bytes.push_back('\0');
    return decode_request(std::string_view(bytes.data(), bytes.size() - 1));
}

TEST(FrameHeader, ShortAndLongLengths) {
    auto h = parse_frame_header(std::string("\x30\x05", 2));
    ASSERT_TRUE(h && *h);
    EXPECT_EQ((*h)->header_size, 2U);
    EXPECT_EQ((*h)->body_size, 5U);
    h = parse_frame_header(std::string("\x30\x82\x01\x00", 4));
    ASSERT_TRUE(h && *h);
    EXPECT_EQ((*h)->header_size, 4U);
    EXPECT_EQ((*h)->body_size, 256U);
    h = parse_frame_header(std::string("\x30\x84\xff\xff\xff\xff", 6));
    ASSERT_TRUE(h && *h);
    EXPECT_EQ((*h)->body_size, 0xffffffffULL);
}

TEST(FrameHeader, NeedsMoreOrRefuses) {
    const auto needs_more = [](std::string_view b) {
        const auto h = parse_frame_header(b);
        return h && !h->has_value();
    };
    EXPECT_TRUE(needs_more(""));
    EXPECT_TRUE(needs_more("\x30"));
    EXPECT_TRUE(needs_more(std::string("\x30\x82\x01", 3)));
    EXPECT_EQ(parse_frame_header("G").error(), FrameError::not_a_message);
    EXPECT_EQ(parse_frame_header(std::string("\x30\x80", 2)).error(), FrameError::indefinite_length);
    EXPECT_EQ(parse_frame_header(std::string("\x30\x85", 2)).error(), FrameError::length_too_long);
}

TEST(DecodeRequest, SimpleBindKeepsEveryByteOfThePassword) {
    const std::string pw("p\0ss w\xc3\xb6rd", 11);
    const auto req = decode(test::bind_request(42, "cn=hook,o=x", pw));
    ASSERT_TRUE(req) << req.error().message;
    EXPECT_EQ(req->message_id, 42);
    EXPECT_EQ(req->op, tag::bind_request);
    EXPECT_FALSE(req->critical_control);
    const auto& bind = std::get<BindRequest>(req->body);
    EXPECT_EQ(bind.version, 3);
    const auto& simple = std::get<SimpleBind>(bind.auth);
    EXPECT_EQ(simple.dn, "cn=hook,o=x");
    EXPECT_EQ(simple.password.view(), pw);
}

TEST(DecodeRequest, SaslBind) {
    auto req = decode(test::sasl_bind_request(1, "EXTERNAL"));
    ASSERT_TRUE(req) << req.error().message;
    const auto& sasl = std::get<SaslBind>(std::get<BindRequest>(req->body).auth);
    EXPECT_EQ(sasl.mechanism, "EXTERNAL");
    EXPECT_FALSE(sasl.credentials);
    const auto with = decode(test::sasl_bind_request(1, "EXTERNAL", "dn:cn=x"));
    ASSERT_TRUE(with);
    const auto& sasl2 = std::get<SaslBind>(std::get<BindRequest>(with->body).auth);
    ASSERT_TRUE(sasl2.credentials);
    EXPECT_EQ(sasl2.credentials->view(), "dn:cn=x");
}

TEST(DecodeRequest, ExtendedWithAndWithoutValue) {
    auto req = decode(test::extended_request(7, oid::who_am_i));
    ASSERT_TRUE(req);
    EXPECT_EQ(std::get<ExtendedRequest>(req->body).oid, oid::who_am_i);
    EXPECT_FALSE(std::get<ExtendedRequest>(req->body).value);
    req = decode(test::extended_request(7, oid::password_modify, "abc"));
    ASSERT_TRUE(req);
    EXPECT_EQ(std::get<ExtendedRequest>(req->body).value->view(), "abc");
}

TEST(DecodeRequest, OtherOperationsAndControls) {
    auto req = decode(test::search_request(3));
    ASSERT_TRUE(req) << req.error().message;
    EXPECT_EQ(req->op, tag::search_request);
    EXPECT_TRUE(std::holds_alternative<SearchRequest>(req->body));
    req = decode(test::unbind_request(4));
    ASSERT_TRUE(req);
    EXPECT_EQ(req->op, tag::unbind_request);
    // Unbind with controls: one non-critical, then one critical.
    const std::string plain("\x30\x13\x02\x01\x05\x42\x00\xa0\x0c\x30\x04\x04\x02\x31\x32\x30\x04\x04\x02\x31\x33", 21);
    req = decode(plain);
    ASSERT_TRUE(req) << req.error().message;
    EXPECT_FALSE(req->critical_control);
    const std::string critical("\x30\x12\x02\x01\x05\x42\x00\xa0\x0b\x30\x09\x04\x04\x31\x2e\x32\x33\x01\x01\xff", 20);
    req = decode(critical);
    ASSERT_TRUE(req) << req.error().message;
    EXPECT_TRUE(req->critical_control);
}

TEST(DecodeRequest, RefusesMalformedMessages) {
    EXPECT_FALSE(decode(std::string("\x30\x05\x02\x01\x00\x42\x00", 7)));            // messageID 0
    EXPECT_FALSE(decode(std::string("\x30\x06\x02\x01\xff\x42\x00\x00", 8)));        // negative id (and junk)
    EXPECT_FALSE(decode(std::string("\x30\x05\x02\x01\x01\x61\x00", 7)));            // a response
    EXPECT_FALSE(decode(std::string("\x30\x03\x02\x01\x01", 5)));                    // no protocolOp
    EXPECT_FALSE(decode(std::string("\x30\x05\x02\x01\x01\x42\x00\x00\x00", 9)));    // trailing bytes
    EXPECT_FALSE(decode(std::string("\x30\x07\x02\x01\x01\x60\x02\x02\x01", 9)));    // bind without name
    EXPECT_FALSE(decode(std::string("\x31\x05\x02\x01\x01\x42\x00", 7)));            // not a SEQUENCE
    EXPECT_FALSE(decode(""));
}

// Every prefix and many random corruptions of valid messages decode or fail
// cleanly (run under ASan to mean something).
TEST(DecodeRequest, SurvivesTruncationAndCorruption) {
    const std::vector<std::string> samples = {
        test::bind_request(1, "cn=hook,o=x", "secret"),
        test::sasl_bind_request(2, "EXTERNAL", "dn:x"),
        test::extended_request(3, oid::password_modify, test::password_modify_value("alice", "old", "new")),
        test::search_request(4),
        std::string("\x30\x12\x02\x01\x05\x42\x00\xa0\x0b\x30\x09\x04\x04\x31\x2e\x32\x33\x01\x01\xff", 20),
    };
    std::mt19937 rng(20261124);
    for (const auto& s : samples) {
        for (std::size_t n = 0; n < s.size(); ++n) EXPECT_FALSE(decode(s.substr(0, n))) << n;
        for (int i = 0; i < 3000; ++i) {
            std::string m = s;
            const int flips = 1 + static_cast<int>(rng() % 3);
            for (int f = 0; f < flips; ++f) m[rng() % m.size()] = static_cast<char>(rng() & 0xff);
            if (auto req = decode(m); req)
                if (auto* ext = std::get_if<ExtendedRequest>(&req->body); ext && ext->value)
                    (void)decode_password_modify(ext->value->view());
        }
    }
}

TEST(DecodePasswordModify, Fields) {
    auto pm = decode_password_modify(test::password_modify_value("EXAMPLE\\alice", "old", "n\xc3\xa9w"));
    ASSERT_TRUE(pm) << pm.error().message;
    EXPECT_EQ(pm->user_identity, "EXAMPLE\\alice");
    EXPECT_EQ(pm->old_password->view(), "old");
    EXPECT_EQ(pm->new_password->view(), "n\xc3\xa9w");
    pm = decode_password_modify(test::password_modify_value({}, {}, "only"));
    ASSERT_TRUE(pm);
    EXPECT_FALSE(pm->user_identity);
    EXPECT_FALSE(pm->old_password);
    EXPECT_EQ(pm->new_password->view(), "only");
    pm = decode_password_modify(test::password_modify_value("bob", {}, {}));
    ASSERT_TRUE(pm);
    EXPECT_FALSE(pm->new_password);
}

TEST(DecodePasswordModify, RefusesMalformedValues) {
    EXPECT_FALSE(decode_password_modify(""));
    EXPECT_FALSE(decode_password_modify("abc"));
    EXPECT_FALSE(decode_password_modify(std::string("\x30\x06\x82\x01\x61\x80\x01\x62", 8)));  // out of order
    EXPECT_FALSE(decode_password_modify(std::string("\x30\x06\x82\x01\x61\x82\x01\x62", 8)));  // twice
    EXPECT_FALSE(decode_password_modify(std::string("\x30\x03\x83\x01\x61", 5)));              // unknown field
    EXPECT_FALSE(decode_password_modify(std::string("\x30\x03\x82\x05\x61", 5)));              // truncated
    EXPECT_FALSE(decode_password_modify(std::string("\x30\x03\x82\x01\x61\x00", 6)));          // trailing
}

// The encoder's output as a BER-reading client sees it.
TEST(EncodeResponse, ExtendedResponseWithNameAndValue) {
    const auto bytes = encode_response(77, tag::extended_response, {19, "AD said no"}, oid::start_tls, "v");
    ASSERT_TRUE(bytes);
    std::string copy = *bytes;
    copy.push_back('\0');
    auto top = BerReader::over(std::string_view(copy.data(), bytes->size()));
    auto msg = top->enter(tag::message);
    ASSERT_TRUE(msg);
    EXPECT_EQ(msg->integer(), 77);
    auto op = msg->enter(tag::extended_response);
    ASSERT_TRUE(op);
    EXPECT_EQ(op->integer(LBER_ENUMERATED), 19);
    EXPECT_EQ(op->element(LBER_OCTETSTRING), "");
    EXPECT_EQ(op->element(LBER_OCTETSTRING), "AD said no");
    EXPECT_EQ(op->element(0x8a), oid::start_tls);
    EXPECT_EQ(op->element(0x8b), "v");
    EXPECT_TRUE(op->at_end());
    EXPECT_TRUE(msg->at_end());
}

TEST(EncodeResponse, ResponseTags) {
    EXPECT_EQ(response_tag(tag::bind_request), tag::bind_response);
    EXPECT_EQ(response_tag(tag::search_request), tag::search_done);
    EXPECT_EQ(response_tag(tag::delete_request), tag::delete_response);
    EXPECT_EQ(response_tag(tag::extended_request), tag::extended_response);
    EXPECT_FALSE(response_tag(tag::unbind_request));
    EXPECT_FALSE(response_tag(tag::abandon_request));
    EXPECT_TRUE(is_known_request(tag::abandon_request));
    EXPECT_FALSE(is_known_request(0x61));
}

}  // namespace
}  // namespace pwsync::gateway::ldap
