#include <doctest.h>

#include <array>
#include <limits>
#include <vector>

#include "health/lag.h"

using health::TipView;

namespace {

TipView tip(std::optional<uint64_t> slot, std::optional<double> age = std::nullopt,
            bool counted = true) {
  TipView t;
  t.tip_slot = slot;
  t.seconds_since_last_block = age;
  t.counted = counted;
  return t;
}

// Runs compute_lag and returns the flags; `best` receives the best tip.
std::vector<bool> lag(const std::vector<TipView>& tips, uint64_t max_lag, double stale_s,
                      std::optional<uint64_t>* best = nullptr) {
  bool flags[16];
  for (bool& f : flags) f = true;  // every slot must be written, not left as it was
  REQUIRE(tips.size() <= 16);
  auto b = health::compute_lag(tips, max_lag, stale_s, std::span<bool>(flags, tips.size()));
  if (best) *best = b;
  return std::vector<bool>(flags, flags + tips.size());
}

}  // namespace

TEST_CASE("lag: behind the best tip by more than max_lag_slots") {
  std::optional<uint64_t> best;
  auto f = lag({tip(10'000), tip(9'400), tip(9'399), tip(10'000)}, 600, 600, &best);
  CHECK(best == 10'000u);
  CHECK(f == std::vector<bool>{false, false, true, false});  // 600 behind is allowed
}

TEST_CASE("lag: max_lag_slots 0 flags anything behind") {
  auto f = lag({tip(10'000), tip(9'999), tip(10'000)}, 0, 600);
  CHECK(f == std::vector<bool>{false, true, false});
}

TEST_CASE("lag: unknown tips are never lagging by tip and do not set the best") {
  std::optional<uint64_t> best;
  auto f = lag({tip(std::nullopt), tip(5'000), tip(std::nullopt)}, 100, 600, &best);
  CHECK(best == 5'000u);
  CHECK(f == std::vector<bool>{false, false, false});
  f = lag({tip(std::nullopt), tip(std::nullopt)}, 100, 600, &best);
  CHECK_FALSE(best.has_value());
  CHECK(f == std::vector<bool>{false, false});
}

TEST_CASE("lag: stale when the last block is older than stale_after_s") {
  auto f = lag({tip(10'000, 4.0), tip(10'000, 600.0), tip(10'000, 600.5), tip(std::nullopt, 9e9)},
               600, 600, nullptr);
  CHECK(f == std::vector<bool>{false, false, true, true});
  // Unknown age is never stale.
  f = lag({tip(10'000, std::nullopt)}, 600, 0);
  CHECK(f == std::vector<bool>{false});
  // Both signs at once are still one flag.
  f = lag({tip(10'000), tip(1, 1e6)}, 600, 600);
  CHECK(f == std::vector<bool>{false, true});
  // A NaN age (never produced by the parsers) is not stale.
  f = lag({tip(10'000, std::numeric_limits<double>::quiet_NaN())}, 600, 600);
  CHECK(f == std::vector<bool>{false});
}

TEST_CASE("lag: excluded backends do not set the best tip but can still be flagged") {
  std::optional<uint64_t> best;
  // The down instance claims a far-ahead tip: it must not make the others lag.
  auto f = lag({tip(10'000), tip(99'999, std::nullopt, false), tip(9'900)}, 600, 600, &best);
  CHECK(best == 10'000u);
  CHECK(f == std::vector<bool>{false, false, false});
  // An excluded backend far behind is flagged, by tip and by staleness.
  f = lag({tip(10'000), tip(1'000, std::nullopt, false), tip(10'000, 900.0, false)}, 600, 600,
          &best);
  CHECK(best == 10'000u);
  CHECK(f == std::vector<bool>{false, true, true});
  // Nothing counted: no best, so nobody lags by tip; staleness still applies.
  f = lag({tip(1, std::nullopt, false), tip(50'000, 700.0, false)}, 10, 600, &best);
  CHECK_FALSE(best.has_value());
  CHECK(f == std::vector<bool>{false, true});
}

TEST_CASE("lag: a tip ahead of the best, extremes, and empty input") {
  std::optional<uint64_t> best;
  const uint64_t big = std::numeric_limits<uint64_t>::max();
  auto f = lag({tip(big), tip(0), tip(big - 600)}, 600, 600, &best);
  CHECK(best == big);
  CHECK(f == std::vector<bool>{false, true, false});
  // An uncounted backend ahead of the best is not lagging (no unsigned wrap-around).
  f = lag({tip(100), tip(200, std::nullopt, false)}, 0, 600, &best);
  CHECK(best == 100u);
  CHECK(f == std::vector<bool>{false, false});
  std::vector<TipView> none;
  CHECK_FALSE(health::compute_lag(none, 600, 600, {}).has_value());
}

TEST_CASE("lag: judge_lag separates behind, far behind and stale") {
  std::vector<TipView> tips = {tip(10'000, 5.0), tip(9'400, 5.0), tip(9'000, 5.0), tip(8'000, 5.0),
                               tip(10'000, 900.0)};
  std::vector<health::LagVerdict> v(tips.size());
  auto best = health::judge_lag(tips, {600, 1'800, 600}, v);
  CHECK(best == 10'000u);
  CHECK(v[1].lag_slots == 600);
  CHECK_FALSE(v[1].behind);
  CHECK(v[2].behind);
  CHECK_FALSE(v[2].far_behind);
  CHECK(v[3].far_behind);  // 2000 > 1800
  CHECK(v[3].lag_slots == 2'000);
  CHECK(v[4].stale);
  CHECK(v[4].lagging());
  CHECK_FALSE(v[4].behind);
}

TEST_CASE("lag: a pool where every backend is stale drains nobody") {
  std::vector<TipView> tips = {tip(10'000, 900.0), tip(10'000, 700.0), tip(std::nullopt)};
  std::vector<health::LagVerdict> v(tips.size());
  health::judge_lag(tips, {600, 1'800, 600}, v);
  for (const auto& x : v) CHECK_FALSE(x.lagging());
  // One fresh backend makes the old ones stale again.
  tips.push_back(tip(10'000, 3.0));
  v.resize(tips.size());
  health::judge_lag(tips, {600, 1'800, 600}, v);
  CHECK(v[0].stale);
  CHECK(v[1].stale);
  CHECK_FALSE(v[3].stale);
}
