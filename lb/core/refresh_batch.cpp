// A worker's batch of store TTL refreshes (see refresh_batch.h for the contract).
#include "lb/core/refresh_batch.h"

#include <algorithm>
#include <utility>

namespace lb {

RefreshBatch::RefreshBatch(size_t max_batch) : max_(std::max<size_t>(max_batch, 1)) {
  items_.reserve(max_);
}

bool RefreshBatch::add(const RefreshItem& item) {
  items_.push_back(item);
  return items_.size() >= max_;
}

bool RefreshBatch::due(uint64_t now_ms, uint64_t interval_ms) const {
  return !items_.empty() && now_ms >= last_take_ms_ + interval_ms;
}

std::vector<RefreshItem> RefreshBatch::take(uint64_t now_ms) {
  std::vector<RefreshItem> out;
  out.reserve(max_);
  out.swap(items_);
  last_take_ms_ = now_ms;
  return out;
}

}  // namespace lb
