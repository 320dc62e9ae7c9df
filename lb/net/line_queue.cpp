#include "lb/net/line_queue.h"

namespace lb::net {

bool LineQueue::push(std::string&& line) {
  bool was_empty;
  {
    std::lock_guard lock(mu_);
    if (lines_.size() >= capacity_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    was_empty = lines_.empty();
    lines_.push_back(std::move(line));
    depth_.store(lines_.size(), std::memory_order_relaxed);
  }
  // Only the first line of a batch wakes the writer: it takes everything queued by then,
  // so a busy worker pays no futex call per line.
  if (was_empty) cv_.notify_one();
  return true;
}

void LineQueue::pop_all(std::vector<std::string>& out, std::chrono::milliseconds wait) {
  out.clear();
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, wait, [&] { return !lines_.empty() || woken_; });
  woken_ = false;
  out.swap(lines_);
  depth_.store(0, std::memory_order_relaxed);
}

void LineQueue::wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_one();
}

}  // namespace lb::net
