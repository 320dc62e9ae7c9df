#pragma once
// Pin writes made while the shared store is unusable (issue 15, plan-15 section 1): every
// worker pushes here, and the control loop's store connection flushes them once Redis is
// back (pin_claim for a claim, pin_cas for a move). Bounded by max_pending: past it the
// oldest write is dropped and counted, because an old placement is the one most likely to
// have been superseded or to have expired anyway.
//
// Indexed by key: a second write to a queued key keeps its place in the queue, keeps the
// FIRST `expected` (what the store last held as far as we know) and takes the LATEST
// `value` (what we decided last). Thread-safe (one mutex; a push is a hash lookup).
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace lb {

struct PendingWrite {
  std::string key;       // <prefix>pin:<32hex>
  std::string expected;  // backend name the store should hold; "" = a claim (first writer)
  std::string value;     // encode_pin(...)
  bool operator==(const PendingWrite&) const = default;
};

class PendingWrites {
 public:
  explicit PendingWrites(size_t max_pending);

  // Queues w, or merges it into the queued write of the same key (see above); then drops
  // from the oldest end while over max_pending.
  void push(PendingWrite w);

  // Removes and returns up to n writes, oldest first, for one flush.
  std::vector<PendingWrite> take(size_t n);

  // Puts back a batch that take() returned and the flush could not send, at the oldest
  // end in its order. A key pushed again meanwhile keeps the newer value and the restored
  // (older) expected. Drops from the oldest end while over max_pending.
  void restore(std::vector<PendingWrite> batch);

  // Reload: a smaller bound drops the oldest at once.
  void set_max_pending(size_t max_pending);

  // Whether a write for `key` is queued: a worker must not let an older stored pin undo
  // a decision this process made during an outage and has not written yet.
  bool contains(const std::string& key) const;

  size_t size() const;
  size_t max_pending() const;
  uint64_t dropped() const;  // since start

 private:
  using Queue = std::list<PendingWrite>;
  void trim();  // holds mu_

  mutable std::mutex mu_;
  size_t max_;
  uint64_t dropped_ = 0;
  Queue queue_;  // front = oldest
  std::unordered_map<std::string, Queue::iterator> by_key_;
};

}  // namespace lb
