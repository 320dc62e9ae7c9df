#include <doctest.h>

#include <string>

#include "config/text.h"
#include "lb/core/pin_codec.h"

using lb::decode_pin;
using lb::encode_pin;
using lb::MoveReason;

TEST_CASE("pin_codec: encode gives the documented layout") {
  CHECK(encode_pin("kupo-2", 139872001, MoveReason::down) == "v1|kupo-2|139872001|down");
  CHECK(encode_pin("a", 0, MoveReason::none) == "v1|a|0|none");
  CHECK(encode_pin("b", UINT64_MAX, MoveReason::regression) ==
        "v1|b|18446744073709551615|regression");
}

TEST_CASE("pin_codec: every reason and extreme slots round-trip") {
  for (MoveReason r :
       {MoveReason::none, MoveReason::down, MoveReason::removed, MoveReason::admin, MoveReason::lag,
        MoveReason::fork, MoveReason::stale, MoveReason::regression}) {
    for (uint64_t slot : {uint64_t{0}, uint64_t{1}, uint64_t{139872001}, UINT64_MAX}) {
      auto p = decode_pin(encode_pin("ogmios.eu-1", slot, r));
      REQUIRE(p);
      CHECK(p->backend == "ogmios.eu-1");
      CHECK(p->last_slot == slot);
      CHECK(p->reason == r);
    }
  }
}

TEST_CASE("pin_codec: decode refuses what another writer may have garbled") {
  const char* bad[] = {
      "",                                   // empty
      "v1",                                 // no fields
      "v2|kupo|1|down",                     // another version
      "V1|kupo|1|down",                     // case matters
      "v1||1|down",                         // empty backend
      "v1|kupo||down",                      // empty slot
      "v1|kupo|-1|down",                    // sign
      "v1|kupo|+1|down",                    // sign
      "v1|kupo|1x|down",                    // trailing garbage in the slot
      "v1|kupo| 1|down",                    // space
      "v1|kupo|18446744073709551616|down",  // overflows uint64
      "v1|kupo|1|",                         // empty reason
      "v1|kupo|1|sideways",                 // unknown reason
      "v1|kupo|1|down|extra",               // extra field
      "v1|ku|po|1|down",                    // a '|' in the name
      "v1|kupo|1",                          // missing reason
  };
  for (const char* v : bad) {
    INFO(v);
    CHECK_FALSE(decode_pin(v));
  }
}

TEST_CASE("pin_codec: a name holding '|' does not round-trip into a wrong pin") {
  // read_pools forbids '|' in names; should one slip through, decode refuses it rather
  // than pinning users to a backend named by half the field.
  CHECK_FALSE(decode_pin(encode_pin("a|5", 7, MoveReason::down)));
  // The name rule read_pools applies to backend names keeps '|' out of the codec.
  CHECK(config::text::is_name("kupo-2.eu_1"));
  CHECK_FALSE(config::text::is_name("kupo|2"));
  CHECK_FALSE(config::text::is_name(""));
}

TEST_CASE("pin_codec: pin_key_text is prefix, pin:, hi then lo as 32 hex digits") {
  lb::SessionKey k{0x0123456789abcdefull, 0xfedcba9876543210ull};
  CHECK(lb::pin_key_text("corral:", k) == "corral:pin:fedcba98765432100123456789abcdef");
  CHECK(lb::pin_key_text("", lb::SessionKey{1, 0}) == "pin:00000000000000000000000000000001");
  lb::SessionKey u = lb::make_session_key(lb::KeySource::path, "stake1abc");
  lb::SessionKey v = lb::make_session_key(lb::KeySource::path, "stake1abd");
  std::string ku = lb::pin_key_text("p:", u);
  CHECK(ku.size() == 2 + 4 + 32);
  CHECK(ku == lb::pin_key_text("p:", u));  // deterministic
  CHECK(ku != lb::pin_key_text("p:", v));
}

TEST_CASE("pin_codec: move_reason_from_name inverts move_reason_name") {
  CHECK(lb::move_reason_from_name("fork") == MoveReason::fork);
  CHECK(lb::move_reason_from_name("none") == MoveReason::none);
  CHECK_FALSE(lb::move_reason_from_name("Fork"));
  CHECK_FALSE(lb::move_reason_from_name(""));
}
