#pragma once
// Wall-clock Unix milliseconds, for what must survive a restart or be shown to people
// (pins in the state file, health transitions, Ogmios' lastTipUpdate). Timeouts use the
// loop's monotonic uv_now instead.
#include <chrono>
#include <cstdint>

namespace lb::net {

inline uint64_t wall_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace lb::net
