#pragma once
// Lag and staleness within a pool (DESIGN.md "Health", issue 13 "fleet-relative lag"): a
// backend is compared with the best tip of its pool, never with its own node. One whose
// tip is more than max_lag_slots behind the best tip takes no new users; more than
// move_lag_slots behind, its pinned users move too. One whose last block is older than
// stale_after_s is stale, unless the whole pool is (no block for a while drains nobody).
// Pure.
#include <cstdint>
#include <optional>
#include <span>

namespace health {

struct TipView {
  std::optional<uint64_t> tip_slot;  // unknown: never lagging by tip
  std::optional<double> seconds_since_last_block;
  bool counted = true;  // false: excluded from the best tip (e.g. down)
};

// One backend's verdict against its pool.
struct LagVerdict {
  uint64_t lag_slots = 0;   // behind the best tip; 0 when level, ahead or unknown
  bool behind = false;      // more than max_lag_slots behind
  bool far_behind = false;  // more than move_lag_slots behind
  bool stale = false;       // last block older than stale_after_s while the pool is not
  bool lagging() const { return behind || stale; }
};

struct LagLimits {
  uint64_t max_lag_slots = 600;
  uint64_t move_lag_slots = 1800;
  double stale_after_s = 600;
};

// Writes out[i] for each backend; returns the best tip among counted backends. Staleness
// is relative too: when every counted backend that reports an age is stale, none is.
std::optional<uint64_t> judge_lag(std::span<const TipView> tips, const LagLimits& limits,
                                  std::span<LagVerdict> out);

// Writes lagging[i] (behind or stale) for each backend; returns the best tip among counted
// backends.
std::optional<uint64_t> compute_lag(std::span<const TipView> tips, uint64_t max_lag_slots,
                                    double stale_after_s, std::span<bool> lagging);

}  // namespace health
