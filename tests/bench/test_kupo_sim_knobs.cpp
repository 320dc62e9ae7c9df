// The simulator's pure knobs for issue 16: the deterministic null set, the latency jitter and
// match_count's large answers.
#include <doctest.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "bench/sim/kupo_api.h"
#include "lb/core/splitmix.h"

using bench::kupo_api::delay_ms;
using bench::kupo_api::is_null_hash;

namespace {

// A 64-hex datum hash per index, spread like real digests.
std::string hash_of(uint64_t i) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  uint64_t x = i;
  while (out.size() < 64) {
    x = lb::splitmix64(x);
    for (int k = 0; k < 16; ++k) out += hex[(x >> (60 - 4 * k)) & 0xF];
  }
  return out;
}

}  // namespace

TEST_CASE("kupo_api: is_null_hash picks about pct% of hashes, nested as pct grows") {
  const int n = 20000;
  int at5 = 0, at50 = 0;
  for (int i = 0; i < n; ++i) {
    const std::string h = hash_of(static_cast<uint64_t>(i));
    CHECK_FALSE(is_null_hash(h, 0));
    CHECK(is_null_hash(h, 100));
    const bool n5 = is_null_hash(h, 5);
    const bool n50 = is_null_hash(h, 50);
    if (n5) CHECK(n50);  // a null at 5% stays null at 50%: a threshold over one number
    at5 += n5;
    at50 += n50;
    CHECK(is_null_hash(h, 5) == n5);  // depends on the text only
  }
  CHECK(at5 > n * 4 / 100);
  CHECK(at5 < n * 6 / 100);
  CHECK(at50 > n * 47 / 100);
  CHECK(at50 < n * 53 / 100);
}

TEST_CASE("kupo_api: delay_ms stays within latency..latency+jitter and covers the range") {
  CHECK(delay_ms(0, 0, 12345) == 0);
  CHECK(delay_ms(7, 0, 99) == 7);
  std::set<uint64_t> seen;
  for (uint64_t seq = 0; seq < 5000; ++seq) {
    const uint64_t d = delay_ms(5, 15, seq);
    CHECK(d >= 5);
    CHECK(d <= 20);
    CHECK(delay_ms(5, 15, seq) == d);  // deterministic in seq
    seen.insert(d);
  }
  CHECK(seen.size() == 16);  // every value 5..20 occurs
  // Consecutive requests do not share one delay.
  CHECK(delay_ms(0, 1000, 1) != delay_ms(0, 1000, 2));
  // No division by zero at the top of the range.
  CHECK(delay_ms(1, UINT64_MAX, 3) >= 1);
}

TEST_CASE("kupo_api: matches with a count give exactly that many, stable while the tip moves") {
  using bench::kupo_api::MatchQuery;
  const uint64_t cp = 150'000'000;  // mid-day: cp - cp % 86400 is 150,000,000 - 6,400
  MatchQuery q;
  q.count = 500;
  const auto all = bench::kupo_api::matches("addr1qxyz", q, cp);
  REQUIRE(all.size() == 500);
  size_t bytes = 0;
  for (const std::string& m : all) bytes += m.size();
  CHECK(bytes / all.size() > 300);
  CHECK(bytes / all.size() < 800);
  // The same pattern a few blocks later: the same bytes; another pattern: others.
  CHECK(bench::kupo_api::matches("addr1qxyz", q, cp + 200) == all);
  CHECK(bench::kupo_api::matches("addr1qabc", q, cp) != all);
  // ?unspent keeps the count, every element unspent; matches_each streams the same objects.
  q.unspent = true;
  const auto unspent = bench::kupo_api::matches("addr1qxyz", q, cp);
  REQUIRE(unspent.size() == 500);
  for (const std::string& m : unspent) CHECK(m.find("\"spent_at\":null") != std::string::npos);
  std::vector<std::string> streamed;
  bench::kupo_api::matches_each("addr1qxyz", q, cp, std::nullopt,
                                [&](const std::string& m) { streamed.push_back(m); });
  CHECK(streamed == unspent);
  // Without a count: two to four, as before.
  const auto few = bench::kupo_api::matches("addr1qxyz", {}, cp);
  CHECK(few.size() >= 2);
  CHECK(few.size() <= 4);
  CHECK(few[0] == all[0]);  // the count only extends the same sequence
}
