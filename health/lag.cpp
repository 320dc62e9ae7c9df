#include "health/lag.h"

#include <algorithm>
#include <cmath>

namespace health {

// Two independent signs of a backend that should take no new users (DESIGN.md "Health"):
// its tip trails the pool's best by more than max_lag_slots, or its last block is older
// than stale_after_s (its node stopped following the chain even if every tip agrees).
// The best tip comes only from counted backends, so a down instance that kept a stale or
// bogus tip cannot set the bar; any backend, counted or not, can be flagged.
std::optional<uint64_t> compute_lag(std::span<const TipView> tips, uint64_t max_lag_slots,
                                    double stale_after_s, std::span<bool> lagging) {
  std::optional<uint64_t> best;
  for (const TipView& t : tips)
    if (t.counted && t.tip_slot) best = std::max(best.value_or(0), *t.tip_slot);
  const size_t n = std::min(tips.size(), lagging.size());
  for (size_t i = 0; i < n; ++i) {
    const TipView& t = tips[i];
    const bool behind =
        best && t.tip_slot && *best > *t.tip_slot && *best - *t.tip_slot > max_lag_slots;
    const bool stale = t.seconds_since_last_block && !std::isnan(*t.seconds_since_last_block) &&
                       *t.seconds_since_last_block > stale_after_s;
    lagging[i] = behind || stale;
  }
  return best;
}

}  // namespace health
