#include "health/lag.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace health {

namespace {

bool over_age(const TipView& t, double stale_after_s) {
  return t.seconds_since_last_block && !std::isnan(*t.seconds_since_last_block) &&
         *t.seconds_since_last_block > stale_after_s;
}

bool has_age(const TipView& t) {
  return t.seconds_since_last_block && !std::isnan(*t.seconds_since_last_block);
}

}  // namespace

// Two independent signs of a backend that should take no new users (DESIGN.md "Health"):
// its tip trails the pool's best by more than max_lag_slots, or its last block is older
// than stale_after_s while some other counted backend's is not (its node stopped
// following the chain; when the whole pool is that old, the chain itself is quiet). The
// best tip comes only from counted backends, so a down instance that kept a stale or
// bogus tip cannot set the bar; any backend, counted or not, can be flagged.
std::optional<uint64_t> judge_lag(std::span<const TipView> tips, const LagLimits& limits,
                                  std::span<LagVerdict> out) {
  std::optional<uint64_t> best;
  bool any_age = false, any_fresh = false;
  for (const TipView& t : tips) {
    if (!t.counted) continue;
    if (t.tip_slot) best = std::max(best.value_or(0), *t.tip_slot);
    if (has_age(t)) {
      any_age = true;
      any_fresh |= !over_age(t, limits.stale_after_s);
    }
  }
  const bool pool_quiet = any_age && !any_fresh;
  const size_t n = std::min(tips.size(), out.size());
  for (size_t i = 0; i < n; ++i) {
    const TipView& t = tips[i];
    LagVerdict v;
    if (best && t.tip_slot && *best > *t.tip_slot) v.lag_slots = *best - *t.tip_slot;
    v.behind = v.lag_slots > limits.max_lag_slots;
    v.far_behind = v.lag_slots > limits.move_lag_slots;
    v.stale = !pool_quiet && over_age(t, limits.stale_after_s);
    out[i] = v;
  }
  return best;
}

std::optional<uint64_t> compute_lag(std::span<const TipView> tips, uint64_t max_lag_slots,
                                    double stale_after_s, std::span<bool> lagging) {
  std::vector<LagVerdict> v(tips.size());
  LagLimits l{max_lag_slots, UINT64_MAX, stale_after_s};
  const std::optional<uint64_t> best = judge_lag(tips, l, v);
  const size_t n = std::min(tips.size(), lagging.size());
  for (size_t i = 0; i < n; ++i) lagging[i] = v[i].lagging();
  return best;
}

}  // namespace health
