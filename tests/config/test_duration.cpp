#include <doctest.h>

#include "config/duration.h"

using config::parse_duration_ms;

TEST_CASE("duration: every unit converts to milliseconds") {
  CHECK(parse_duration_ms("250ms") == 250u);
  CHECK(parse_duration_ms("2s") == 2000u);
  CHECK(parse_duration_ms("5m") == 300'000u);
  CHECK(parse_duration_ms("1h") == 3'600'000u);
  CHECK(parse_duration_ms("1d") == 86'400'000u);
  CHECK(parse_duration_ms("0s") == 0u);  // zero parses; callers decide whether it is allowed
  CHECK(parse_duration_ms("007s") == 7000u);
}

TEST_CASE("duration: malformed text is rejected") {
  for (const char* bad :
       {"",    "ms",   "s",  "10",  "0",   "-1s", "+1s",   "1.5s", "1 s",   " 1s",
        "1s ", "1sec", "1S", "1MS", "1us", "1w",  "1h30m", "s1",   "1e3ms", "0x10s"}) {
    INFO(bad);
    CHECK_FALSE(parse_duration_ms(bad).has_value());
  }
}

TEST_CASE("duration: overflow is rejected, the largest value is not") {
  CHECK(parse_duration_ms("18446744073709551615ms") == 18446744073709551615ull);
  CHECK_FALSE(parse_duration_ms("18446744073709551616ms").has_value());  // count overflows
  CHECK_FALSE(parse_duration_ms("99999999999999999999999s").has_value());
  // 2^64 / 1000 = 18446744073709551.616: the count fits but the product does not.
  CHECK(parse_duration_ms("18446744073709551s") == 18446744073709551000ull);
  CHECK_FALSE(parse_duration_ms("18446744073709552s").has_value());
  CHECK_FALSE(parse_duration_ms("213503982335d").has_value());
  CHECK(parse_duration_ms("213503982334d").has_value());
}
