#pragma once
// When a pin's TTL in the shared store is due for a refresh (issue 15). Time is cut into
// epochs of max(ttl/10, 1 s); the session table remembers, per entry, the epoch in which it
// last queued a refresh, so a key is refreshed at most once per epoch per process, however
// many workers and requests touch it. The stored TTL is then renewed at least every ~ttl/10
// of activity, and a lost invalidation is noticed within the same bound.
#include <algorithm>
#include <cstdint>

namespace lb {

// The length of one refresh epoch: ttl/10, at least 1 s (a tiny ttl must not turn every
// request into a store write).
constexpr uint64_t refresh_interval_ms(uint64_t ttl_ms) {
  return std::max<uint64_t>(ttl_ms / 10, 1000);
}

// The epoch of now_ms (monotonic or wall, as long as one clock is used throughout),
// truncated to 16 bits: entries compare for equality only, and a wrap would need the same
// key idle for 65536 epochs, far past its ttl.
constexpr uint16_t refresh_epoch(uint64_t now_ms, uint64_t ttl_ms) {
  return static_cast<uint16_t>(now_ms / refresh_interval_ms(ttl_ms));
}

}  // namespace lb
