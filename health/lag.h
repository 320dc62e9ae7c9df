#pragma once
// Lag and staleness within a pool (DESIGN.md "Health"): a backend whose tip is more than
// max_lag_slots behind the best tip in its pool, or whose last block is older than
// stale_after_s, should take no new users. Pure.
#include <cstdint>
#include <optional>
#include <span>

namespace health {

struct TipView {
  std::optional<uint64_t> tip_slot;  // unknown: never lagging by tip
  std::optional<double> seconds_since_last_block;
  bool counted = true;  // false: excluded from the best tip (e.g. down)
};

// Writes lagging[i] for each backend; returns the best tip among counted backends.
std::optional<uint64_t> compute_lag(std::span<const TipView> tips, uint64_t max_lag_slots,
                                    double stale_after_s, std::span<bool> lagging);

}  // namespace health
