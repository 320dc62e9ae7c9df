// Fuzz target: CIP-19 / bech32 (lb/core/cip19), which reads addresses out of client
// paths. Checks: a decoded string re-encodes to itself (lower case) in both encoders;
// stake key material is 30 bytes (network, script flag, 28-byte credential) and the same
// from the address alone and from a path holding it.
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lb/core/cip19.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view s(reinterpret_cast<const char*>(data), size);
  if (auto b = lb::bech32_decode(s)) {
    std::string lower(s);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string again = lb::bech32_encode(b->hrp, b->data);
    // Decoding drops padding bits, so only inputs without stray padding round-trip.
    if (again.size() == lower.size()) FUZZ_CHECK(again == lower, "bech32 round trip");
    std::vector<char> buf(lb::bech32_encoded_size(b->hrp.size(), b->data.size()));
    size_t n = lb::bech32_encode(b->hrp, b->data, buf.data());
    FUZZ_CHECK(n == buf.size() && std::string_view(buf.data(), n) == again, "both encoders agree");
    auto back = lb::bech32_decode(again);
    FUZZ_CHECK(back && back->hrp == b->hrp && back->data == b->data, "encode then decode");
  }
  auto stake = lb::stake_key_material(s);
  if (stake) FUZZ_CHECK(stake->size() == 30, "stake key material is 30 bytes");
  auto in_path = lb::stake_key_in_path(s);
  if (in_path) FUZZ_CHECK(in_path->size() == 30, "stake key material is 30 bytes");
  if (stake && s.find('/') == std::string_view::npos) {
    auto wrapped = lb::stake_key_in_path("/matches/" + std::string(s) + "?unspent");
    if (wrapped) FUZZ_CHECK(*wrapped == *stake, "the same address gives the same key in a path");
  }
  return 0;
}
