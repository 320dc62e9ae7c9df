#pragma once
// The three states of a backend (DESIGN.md "Rebalance new users only"):
//   up        takes everyone;
//   draining  keeps its pinned users, takes no new ones (overloaded, lagging, drained);
//   down      its users are re-pinned elsewhere (unreachable, failing, removed).
// Ordered from best to worst, so "worse" is a comparison.
#include <cstdint>

namespace lb {

enum class BackendState : uint8_t { up = 0, draining = 1, down = 2 };

inline BackendState worst(BackendState a, BackendState b) { return a > b ? a : b; }
const char* state_name(BackendState s);

}  // namespace lb
