#pragma once
// Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam, SODA 2018):
// a new user goes to the first backend in its ranking whose load stays under
// ceil(c * (L + 1) * w_i / W), where L is the total load over eligible backends, w_i the
// backend's weight and W the eligible weight. c = balance_factor; c <= 0 disables the bound.
#include <cstdint>
#include <optional>
#include <span>

namespace lb {

struct LoadView {
  std::span<const uint64_t> load;  // pinned sessions per backend index
  std::span<const uint32_t> weight;
  std::span<const bool> eligible;  // takes new users
};

// Returns the chosen backend index from `ranked`, or nullopt if no eligible backend.
// When every eligible backend is at its bound (possible only transiently), returns the
// first eligible one in rank order.
std::optional<uint16_t> choose_bounded(std::span<const uint16_t> ranked, const LoadView& view,
                                       double balance_factor);

}  // namespace lb
