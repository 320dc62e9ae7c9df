#pragma once
// One pool's response cache as the data path and the admin see it (issue 16): the shared
// ResponseCache, the compiled rules, the pool's best tip (published by health), and the
// counters. Made by the Registry and kept across reloads by pool name, like the quota
// guard, so a reload neither empties the cache nor resets its counts (runtime.h).
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "lb/core/cache_rules.h"
#include "lb/core/response_cache.h"
#include "lb/net/backend_stats.h"

namespace lb::net {

// Why a complete answer was not stored: the label of corral_cache_not_stored_total.
enum class NotStored : uint8_t {
  null_body,  // "null" (Kupo's "not found yet")
  status,     // not a 200 to a GET
  too_large,  // over kMaxEntryBytes or one shard's budget
  encoded,    // a Content-Encoding other than identity
  vary,       // Vary beyond Accept / Accept-Encoding
  not_deep,   // slot-bound, and the producer's checkpoint is not deep past the slot
  producer,   // the producer is forked or down
  budget,     // the fill ran out of buffer memory (limits.max_buffer_memory)
  purged,     // a purge or a rules change happened while it was filled
  privacy,    // Set-Cookie, Cache-Control private/no-store, an origin-echoing CORS answer
  headers,    // a field the rules read came twice
  count
};
// The metric label of `r`.
const char* not_stored_label(NotStored r);
// The reason storable() gave (a static string) as a NotStored; unknown strings map to
// `headers`, so a new reason is counted rather than lost.
NotStored not_stored_of(std::string_view reason);

// Per-thread counters (Sharded: each worker writes its own, the admin sums them).
struct CacheShard {
  std::atomic<uint64_t> hits{0};          // answered from the cache (304s included)
  std::atomic<uint64_t> misses{0};        // cacheable, not held, and sent upstream (a fill
                                          // flight's leader, or a follower gone solo); a
                                          // follower served from the entry is a hit
  std::atomic<uint64_t> not_modified{0};  // hits answered 304 on If-None-Match
  std::atomic<uint64_t> stores{0};        // answers stored (new or replaced)
  std::array<std::atomic<uint64_t>, static_cast<size_t>(NotStored::count)> not_stored{};
  std::atomic<uint64_t> collapsed{0};  // requests answered without an upstream request of their own
  std::atomic<uint64_t> detached_resumed{0};  // slow stream waiters served on their own
  std::atomic<uint64_t> detached_cut{0};      // ... whose own answer differed: cut
  std::atomic<int64_t> flights{0};            // flights open now (per worker; summed)
};

struct PoolCache : Sharded<CacheShard> {
  explicit PoolCache(const config::CacheConfig& cfg, bool kupo);

  ResponseCache cache;
  // The rules as configured; replaced by the control thread only through reconfigure(),
  // which swaps a whole snapshot (workers read `rules()` per request).
  const CacheRules& rules() const { return *rules_.load(std::memory_order_acquire); }
  bool collapse() const { return collapse_.load(std::memory_order_relaxed); }
  // The pool's best tip (forked and down backends excluded), published by health; 0 until
  // known. classify() takes it as nullopt while 0.
  std::atomic<uint64_t> best_tip{0};
  std::optional<uint64_t> known_tip() const {
    uint64_t t = best_tip.load(std::memory_order_relaxed);
    return t ? std::optional<uint64_t>(t) : std::nullopt;
  }

  // A reload's new settings for the same pool (control thread): max_bytes shrinks or grows
  // the budget at once; changed rules (kind, immutable_after_slots, prefixes, max_age)
  // purge every entry. Returns true when it purged.
  bool reconfigure(const config::CacheConfig& cfg, bool kupo);

  // Counts one not-stored answer.
  void count_not_stored(NotStored r) {
    local().not_stored[static_cast<size_t>(r)].fetch_add(1, std::memory_order_relaxed);
  }

 private:
  // Old rule snapshots are kept until the cache dies: a worker may still read one, and
  // reloads are rare, so the few bytes are cheaper than a reclamation scheme.
  std::atomic<const CacheRules*> rules_;
  std::vector<std::unique_ptr<CacheRules>> all_rules_;
  std::atomic<bool> collapse_;
};

}  // namespace lb::net
