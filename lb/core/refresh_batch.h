#pragma once
// One worker's pending TTL refreshes for the shared store (issue 15): SessionTable::touch
// says when a key is due (refresh_epoch.h), the worker add()s it here, and its store client
// pipelines the batch (pin_touch, one per key) every min(sync_interval, ttl/10) or as soon
// as the batch is full. Not thread-safe: one per worker loop. Time is injected.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "lb/core/backend_ref.h"
#include "lb/core/session_key.h"

namespace lb {

struct RefreshItem {
  SessionKey key;
  BackendRef backend = 0;
  uint64_t last_slot = 0;
  bool operator==(const RefreshItem&) const = default;
};

class RefreshBatch {
 public:
  static constexpr size_t kDefaultMax = 256;

  explicit RefreshBatch(size_t max_batch = kDefaultMax);

  // Queues one refresh; true when the batch is now full and should be flushed at once.
  bool add(const RefreshItem& item);

  // True when there is something to send and interval_ms has passed since the last take()
  // (or since construction at time 0).
  bool due(uint64_t now_ms, uint64_t interval_ms) const;

  // Empties the batch, returning its items in add() order, and records now_ms as the time
  // of this flush.
  std::vector<RefreshItem> take(uint64_t now_ms);

  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }

 private:
  size_t max_;
  uint64_t last_take_ms_ = 0;
  std::vector<RefreshItem> items_;
};

}  // namespace lb
