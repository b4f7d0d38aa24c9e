// libFuzzer target: store record decoding. The first byte picks the record
// type (or a sealed value), the rest is what LMDB would hand back. A record
// that decodes must survive encode -> decode -> encode unchanged.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "codec.h"
#include "crypto.h"
#include "records.h"

namespace records = pwsync::store::records;
namespace crypto = pwsync::store::crypto;

namespace {

template <class Decode>
void round_trip(std::string_view data, Decode decode) {
    auto first = decode(data);
    if (!first) return;
    const std::string once = records::encode(*first);
    auto second = decode(once);
    if (!second) std::abort();  // we wrote something we cannot read
    if (records::encode(*second) != once) std::abort();  // or read it back differently
}

const crypto::KeyRing& ring() {
    static const crypto::KeyRing r = [] {
        crypto::KeyRing k;
        auto key = crypto::Key::from_bytes(std::string(crypto::kKeySize, 'k'));
        if (!key) std::abort();
        k.current = key->id();
        k.keys.push_back(std::move(*key));
        return k;
    }();
    return r;
}

void fields(std::string_view data) {
    (void)pwsync::store::codec::decode(data, records::kFormat, "fuzz",
                                       [](std::uint32_t, std::string_view v) -> pwsync::Status {
                                           (void)pwsync::store::codec::as_i64(v);
                                           return {};
                                       });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    if (size == 0) return 0;
    // An exact-size copy, so ASan sees any read past the record.
    auto buffer = std::make_unique<char[]>(size - 1);
    if (size > 1) std::memcpy(buffer.get(), bytes + 1, size - 1);
    const std::string_view data(buffer.get(), size - 1);
    switch (bytes[0] % 12) {
        case 0: round_trip(data, records::decode_app); break;
        case 1: round_trip(data, records::decode_adapter); break;
        case 2: round_trip(data, records::decode_group); break;
        case 3: round_trip(data, records::decode_mapping); break;
        case 4: round_trip(data, records::decode_principal); break;
        case 5: round_trip(data, records::decode_audit); break;
        case 6: round_trip(data, records::decode_job); break;
        case 7: round_trip(data, records::decode_dead); break;
        case 8: round_trip(data, records::decode_pending); break;
        case 9: round_trip(data, records::decode_marker); break;
        case 10: fields(data); break;
        default: {
            (void)crypto::sealed_key_id(data);
            auto opened = crypto::open(ring(), data, crypto::seal_context("mappings", "app", "credential"));
            // Only the corpus's one genuine value opens; a changed one never does.
            if (opened && opened->view() != "fuzz-seed-password") std::abort();
            break;
        }
    }
    return 0;
}
