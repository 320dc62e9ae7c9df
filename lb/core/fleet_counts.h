#pragma once
// How many users the OTHER corral instances have pinned to each backend (issue 15), so that
// bounded loads weigh the fleet's load and not one instance's share of it:
// c.pinned = sessions.pinned(ref) + fleet.others(ref). The control loop refreshes it every
// sync_interval from the fleet_sync script's reply (store_scripts.h); workers read it with
// relaxed atomics. A user cached by several instances is counted by each: the sum
// over-counts, but every backend alike, so the ratio to the mean that bounded loads use
// holds approximately.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lb/core/backend_ref.h"

namespace lb {

class FleetCounts {
 public:
  FleetCounts();

  // The other instances' pins on ref (0 for an unknown or out-of-range ref).
  uint64_t others(BackendRef ref) const;

  // Sets every ref's count: those listed get their value (a ref listed twice: the sum),
  // every other ref 0. Readers may see a mix of old and new values while it runs, which
  // the balancer tolerates (each value is a recent one).
  void replace(std::span<const std::pair<BackendRef, uint64_t>> counts);

  // Live instances in the fleet, this one included (1 until the first sync): the quota
  // guard divides its local limits by it while the store is down.
  uint64_t live_instances() const;
  void set_live_instances(uint64_t n);

  // Forgets the others' counts (store down long enough that they are stale); keeps
  // live_instances, the last known fleet size.
  void clear();

 private:
  std::unique_ptr<std::atomic<uint64_t>[]> others_;
  std::atomic<uint64_t> live_{1};
};

// The field name of one backend's count in a `counts:<instance>` hash: "pool/backend".
std::string fleet_count_name(std::string_view pool, std::string_view backend);

struct FleetReply {
  uint64_t live_instances = 0;
  std::vector<std::pair<BackendRef, uint64_t>> counts;  // summed per ref, in first-seen order
  uint64_t unknown = 0;  // pairs naming a backend this instance does not have (skipped)
};

// Parses fleet_sync's reply, given as its first element (live instances, a Redis integer)
// and the rest as text (name, count, name, count, ...). `resolve` maps "pool/backend" to a
// local ref, or nullopt. nullopt for a malformed reply: live < 1, an odd number of
// elements, or a count that is not a plain decimal uint64.
std::optional<FleetReply> parse_fleet_reply(
    int64_t live, std::span<const std::string_view> pairs,
    const std::function<std::optional<BackendRef>(std::string_view)>& resolve);

}  // namespace lb
