#pragma once
// What the shared pin store (issue 15, sticky.store) keeps per process, shared by every
// worker's StoreClient and the control loop's StoreControl: the queue of pin writes made
// while Redis was unusable, the other instances' pin counts, this instance's id, and the
// store's health and counters that /status and /metrics show. Lives in ProxyState for the
// whole process (a reload that adds, changes or removes the store keeps it).
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "lb/core/fleet_counts.h"
#include "lb/core/pending_writes.h"
#include "lb/net/backend_stats.h"

namespace lb::net {

// Counters of the store, all since start. Relaxed atomics: written by workers and the
// control loop, read by the admin thread.
struct StoreCounters {
  std::atomic<uint64_t> errors{0};          // commands answered with an error or lost with the link
  std::atomic<uint64_t> timeouts{0};        // commands with no answer within sticky.store.timeout
  std::atomic<uint64_t> claims_won{0};      // pin_claim stored our placement
  std::atomic<uint64_t> claims_adopted{0};  // pin_claim found a pin (read-through hit)
  std::atomic<uint64_t> cas_won{0};         // pin_cas moved the stored pin
  std::atomic<uint64_t> cas_lost{0};        // another instance moved it first: adopted
  std::atomic<uint64_t> local_fallbacks{0};    // placed locally: store down, slow or failing
  std::atomic<uint64_t> invalidations_in{0};   // other instances' re-pins applied here
  std::atomic<uint64_t> invalidations_out{0};  // our re-pins published
  std::atomic<uint64_t> refreshes{0};          // pin_touch sent
  std::atomic<uint64_t> refresh_adopted{0};    // pin_touch found another backend: adopted
  std::atomic<uint64_t> refresh_reseeded{0};   // pin_touch found the key gone: re-written
  std::atomic<uint64_t> flushed{0};            // pending writes written after an outage
  std::atomic<uint64_t> flush_adopted{0};      // ... of which lost to another instance
  std::atomic<uint64_t> quota_takes{0};        // quota_take leases asked for
  std::atomic<uint64_t> syncs{0};              // fleet_sync rounds answered
  LatencyHistogram roundtrip;                  // claim/cas round trips seen by requests
};

struct StoreShared {
  explicit StoreShared(size_t max_pending) : pending(max_pending) {}

  PendingWrites pending;
  FleetCounts fleet;
  StoreCounters counters;
  // "<hostname>:<pid>:<8 hex>", made once at start: names this instance's counts key and
  // lets it skip its own invalidations. A restart is a new instance.
  std::string instance;
  // The control link's state (LinkState as uint8_t): the store's state in /status.
  std::atomic<uint8_t> state{0};
  std::atomic<uint64_t> since_unix_ms{0};  // when `state` last changed
  // The subscriber link's state (LinkState as uint8_t): invalidations and cool-downs from
  // the other instances arrive only while it is up.
  std::atomic<uint8_t> sub_state{0};
  // The workers' links (one per worker while a store is configured), and how many are up:
  // a request parks on Redis only on a worker whose own link is up.
  std::atomic<uint64_t> worker_links{0};
  std::atomic<uint64_t> worker_links_up{0};

  // The last error text (never a password), for /status.
  void set_error(std::string text) {
    std::lock_guard lock(mu_);
    last_error_ = std::move(text);
  }
  std::string last_error() const {
    std::lock_guard lock(mu_);
    return last_error_;
  }

 private:
  mutable std::mutex mu_;
  std::string last_error_;
};

}  // namespace lb::net
