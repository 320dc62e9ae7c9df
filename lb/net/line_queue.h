#pragma once
// A bounded queue of preformatted lines between many producers (workers) and one consumer
// (the access-log writer thread). A push never waits: the mutex is held only to move one
// string in, and when the queue is full the line is dropped and counted, so a slow disk
// or a stuck pipe can never stall a worker's loop.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace lb::net {

class LineQueue {
 public:
  explicit LineQueue(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  // Queues `line` (taken by move); false when the queue was full and it was dropped.
  bool push(std::string&& line);
  // Moves every queued line into `out` (cleared first), waiting up to `wait` for the
  // first one; returns early on wake().
  void pop_all(std::vector<std::string>& out, std::chrono::milliseconds wait);
  // Ends the current or next wait of pop_all at once.
  void wake();

  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  // Counts `n` more lines as dropped (the consumer gave up on them).
  void count_dropped(uint64_t n) { dropped_.fetch_add(n, std::memory_order_relaxed); }
  size_t depth() const { return depth_.load(std::memory_order_relaxed); }
  size_t capacity() const { return capacity_; }

 private:
  const size_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;  // guarded by mu_
  bool woken_ = false;              // guarded by mu_
  std::atomic<size_t> depth_{0};
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace lb::net
