// Fuzz target: the state file decoder (lb/core/pin_snapshot, read by lb/net/state_file at
// start). Any file must decode or be refused with an error, never crash or over-allocate;
// what decodes must encode and decode again to the same pins and daily counts.
#include <cstdint>
#include <string_view>

#include "lb/core/pin_snapshot.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  lb::DecodeResult r = lb::decode_pins(bytes);
  if (!r.error.empty()) {
    FUZZ_CHECK(r.pins.empty() && r.quotas.empty(), "an error yields no pins and no counts");
    return 0;
  }
  FUZZ_CHECK(r.pins.size() * 36 <= size, "never more pins than the bytes hold");
  FUZZ_CHECK(r.quotas.size() * 20 <= size, "never more counts than the bytes hold");
  std::string again = lb::encode_pins(r.pins, r.quotas);
  lb::DecodeResult r2 = lb::decode_pins(again);
  FUZZ_CHECK(r2.error.empty() && r2.pins == r.pins && r2.quotas == r.quotas,
             "decode, encode, decode round trip");
  return 0;
}
