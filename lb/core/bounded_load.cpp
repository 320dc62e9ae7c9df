#include "lb/core/bounded_load.h"

#include <algorithm>
#include <cmath>

namespace lb {

namespace {

// Whether backend `i` takes new users; an index outside the view never does, so a stale
// ranking cannot read past the arrays.
bool eligible(const LoadView& view, uint16_t i) {
  return i < view.eligible.size() && i < view.load.size() && i < view.weight.size() &&
         view.eligible[i];
}

}  // namespace

// Mirrokni, Thorup, Zadimoghaddam, "Consistent Hashing with Bounded Loads", SODA 2018:
// with capacity ceil(c * (L + 1) * w_i / W) a backend accepts while its load is below it,
// i.e. it still fits after taking this user. For c > 1 the capacities sum to more than
// L + 1, so an eligible backend under its bound exists whenever `ranked` lists them all.
std::optional<uint16_t> choose_bounded(std::span<const uint16_t> ranked, const LoadView& view,
                                       double balance_factor) {
  std::optional<uint16_t> first;
  for (uint16_t i : ranked)
    if (eligible(view, i)) {
      first = i;
      break;
    }
  if (!first || !(balance_factor > 0)) return first;

  // L and W run over every eligible backend, ranked or not: the bound is about the pool.
  uint64_t total_load = 0, total_weight = 0;
  const size_t n = std::min({view.eligible.size(), view.load.size(), view.weight.size()});
  for (size_t i = 0; i < n; ++i)
    if (view.eligible[i]) {
      total_load += view.load[i];
      total_weight += view.weight[i] == 0 ? 1 : view.weight[i];
    }

  const double scale = balance_factor * static_cast<double>(total_load + 1);
  for (uint16_t i : ranked) {
    if (!eligible(view, i)) continue;
    const uint32_t w = view.weight[i] == 0 ? 1 : view.weight[i];
    const double bound = std::ceil(scale * w / static_cast<double>(total_weight));
    if (static_cast<double>(view.load[i]) < bound) return i;
  }
  return first;  // every eligible backend at its bound: only transient, serve anyway
}

}  // namespace lb
