// The bounded queue of unflushed pin writes (see pending_writes.h for the contract).
#include "lb/core/pending_writes.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace lb {

PendingWrites::PendingWrites(size_t max_pending) : max_(max_pending) {}

void PendingWrites::push(PendingWrite w) {
  std::lock_guard lock(mu_);
  if (auto it = by_key_.find(w.key); it != by_key_.end()) {
    it->second->value = std::move(w.value);
    return;
  }
  queue_.push_back(std::move(w));
  by_key_.emplace(queue_.back().key, std::prev(queue_.end()));
  trim();
}

std::vector<PendingWrite> PendingWrites::take(size_t n) {
  std::lock_guard lock(mu_);
  std::vector<PendingWrite> out;
  out.reserve(std::min(n, queue_.size()));
  while (out.size() < n && !queue_.empty()) {
    by_key_.erase(queue_.front().key);
    out.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return out;
}

void PendingWrites::restore(std::vector<PendingWrite> batch) {
  std::lock_guard lock(mu_);
  // Walk backwards, inserting at the front, so the batch keeps its order.
  for (auto w = batch.rbegin(); w != batch.rend(); ++w) {
    if (auto it = by_key_.find(w->key); it != by_key_.end()) {
      // Queued again since take(): that write is newer, but the store never saw ours, so
      // ours holds the right expectation; it moves to our (older) place.
      Queue::iterator q = it->second;
      q->expected = std::move(w->expected);
      queue_.splice(queue_.begin(), queue_, q);
      continue;
    }
    queue_.push_front(std::move(*w));
    by_key_.emplace(queue_.front().key, queue_.begin());
  }
  trim();
}

void PendingWrites::set_max_pending(size_t max_pending) {
  std::lock_guard lock(mu_);
  max_ = max_pending;
  trim();
}

void PendingWrites::trim() {
  while (queue_.size() > max_) {
    by_key_.erase(queue_.front().key);
    queue_.pop_front();
    ++dropped_;
  }
}

bool PendingWrites::contains(const std::string& key) const {
  std::lock_guard lock(mu_);
  return by_key_.contains(key);
}

size_t PendingWrites::size() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

size_t PendingWrites::max_pending() const {
  std::lock_guard lock(mu_);
  return max_;
}

uint64_t PendingWrites::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

}  // namespace lb
