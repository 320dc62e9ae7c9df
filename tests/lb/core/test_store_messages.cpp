#include <doctest/doctest.h>

#include "lb/core/pin_codec.h"
#include "lb/core/store_messages.h"

using namespace lb;

TEST_CASE("store messages: a re-pin round-trips and its key is pin_key_text's hex") {
  PinMoved m{SessionKey{0x0123456789abcdefULL, 0xfedcba9876543210ULL}, "kupo-1", "kupo-2",
             "host:42:deadbeef"};
  std::string text = encode_pin_moved(m);
  CHECK(text == "fedcba98765432100123456789abcdef|kupo-1|kupo-2|host:42:deadbeef");
  CHECK(pin_key_text("p:", m.key) == "p:pin:" + text.substr(0, 32));
  REQUIRE(decode_pin_moved(text));
  CHECK(*decode_pin_moved(text) == m);
  m.from.clear();  // the key was missing in the store
  CHECK(*decode_pin_moved(encode_pin_moved(m)) == m);
}

TEST_CASE("store messages: garbled re-pins and cool-downs are refused") {
  CHECK_FALSE(decode_pin_moved(""));
  CHECK_FALSE(decode_pin_moved("fedcba98765432100123456789abcdef|a|b"));
  CHECK_FALSE(decode_pin_moved("fedcba98765432100123456789abcdef|a|b|i|x"));
  CHECK_FALSE(decode_pin_moved("fedcba98765432100123456789abcdeg|a|b|i"));
  CHECK_FALSE(decode_pin_moved("fedcba9876543210123456789abcdef|a|b|i"));
  CHECK_FALSE(decode_pin_moved("fedcba98765432100123456789abcdef|a||i"));
  CHECK_FALSE(decode_pin_moved("fedcba98765432100123456789abcdef|a|b|"));
  CHECK_FALSE(decode_quota_cooled("bf|429|1700000000000"));
  CHECK_FALSE(decode_quota_cooled("bf|4x9|1700000000000|i"));
  CHECK_FALSE(decode_quota_cooled("bf|429|-1|i"));
  CHECK_FALSE(decode_quota_cooled("|429|1|i"));
  CHECK_FALSE(decode_quota_cooled("bf|42|1|i"));
}

TEST_CASE("store messages: a cool-down round-trips") {
  QuotaCooled q{"blockfrost", 429, 1700000000123ULL, "h:1:abcdef01"};
  CHECK(encode_quota_cooled(q) == "blockfrost|429|1700000000123|h:1:abcdef01");
  CHECK(*decode_quota_cooled(encode_quota_cooled(q)) == q);
}
