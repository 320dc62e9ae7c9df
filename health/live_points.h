#pragma once
// Fork evidence from live Kupo traffic (issue 13), pure. Every Kupo data response names
// the checkpoint it was answered at: X-Most-Recent-Checkpoint (slot) and ETag (that
// checkpoint's header hash). Workers keep each backend's recent (slot, hash) points; a
// live round compares them where two or more backends hold a point at the same slot, at
// least fork_depth_slots below the pool's lowest tip (so ordinary rollbacks of the last
// blocks are not taken for forks), with the probes' strict-weighted-majority and
// two-rounds-in-a-row rules (health/fork_vote).
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "health/fork_vote.h"

namespace health {

// A point packed in one word, so that a worker stores it with one relaxed write and it
// never tears: (slot << 32) | the first 32 bits of the hash. 0 = unusable (no slot, a
// slot past 2^32, or an ETag that does not start with 8 hex digits).
uint64_t pack_live_point(uint64_t slot, std::string_view etag);
inline uint64_t live_point_slot(uint64_t point) { return point >> 32; }

// One member's points (any order, zeros ignored), whether it may vote (answered its
// probes, not behind the pool; health::PoolHealth::votes_in_forks) and its weight.
struct LiveMember {
  std::span<const uint64_t> points;
  bool votes = false;
  uint32_t weight = 1;
};

// The newest slot in (after_slot, max_slot] at which two or more voting members hold a
// point, and their ballots ("slot:hash32"); nullopt when there is none. `after_slot` is
// the previous live round's slot, so each round is fresh evidence and one observation is
// never counted twice.
std::optional<SlotRound> live_round(std::span<const LiveMember> members, uint64_t max_slot,
                                    uint64_t after_slot);

}  // namespace health
