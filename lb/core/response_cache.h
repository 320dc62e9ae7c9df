#pragma once
// The shared immutable-response cache of one pool (issue 16, plan-16.md §2): a sharded LRU
// bounded in bytes. 16 shards, each with its own mutex, hash map and intrusive LRU list, and
// each bounded by max_bytes / 16, so the whole never holds more than max_bytes.
// Values are std::shared_ptr<const CachedAnswer>: get() copies the pointer under the shard
// lock and returns, so no lock is held while a body is written, and an evicted entry lives
// until its last reader lets go (those bytes are outside the count; bounded by concurrent
// hits x the largest entry). Time is a parameter (monotonic milliseconds).
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_map>

#include "lb/core/cache_key.h"
#include "lb/core/cached_answer.h"

namespace lb {

struct ResponseCacheStats {
  uint64_t entries = 0;
  uint64_t bytes = 0;  // sum of the charges of the entries held
  uint64_t max_bytes = 0;
  uint64_t hits = 0;
  uint64_t misses = 0;     // includes expired entries and hash collisions
  uint64_t inserts = 0;    // stored or replaced
  uint64_t evictions = 0;  // dropped by the byte bound (put or set_max_bytes)
  uint64_t purged = 0;     // dropped by purge()
  uint64_t expired = 0;    // dropped by get() past expires_ms (also counted in misses)
};

struct PurgeResult {
  uint64_t entries = 0;
  uint64_t bytes = 0;
};

enum class PutResult : uint8_t {
  stored,     // a new entry
  replaced,   // an entry of the same key was replaced
  too_large,  // its charge exceeds one shard's budget (or the answer is null)
  stale,      // a purge happened since the fill read generation(): not stored
};

class ResponseCache {
 public:
  static constexpr size_t kShards = 16;

  explicit ResponseCache(uint64_t max_bytes);
  ~ResponseCache();
  ResponseCache(const ResponseCache&) = delete;
  ResponseCache& operator=(const ResponseCache&) = delete;

  // The entry of `key` whose canonical string equals `canonical`, refreshed as most recently
  // used; null on a miss. Same hash with another canonical string is a miss (and the entry
  // stays). An entry with expires_ms != 0 and now_ms >= expires_ms is dropped and a miss.
  std::shared_ptr<const CachedAnswer> get(const CacheKey& key, std::string_view canonical,
                                          uint64_t now_ms);

  // Stores `answer` under `key` as most recently used, replacing an entry of the same key,
  // then evicts least recently used entries of the shard until it is within budget.
  // `generation` is what generation() returned when the fill began: after a purge it is
  // stale and nothing is stored. The charge accounted is max(answer->charge,
  // answer_charge(*answer)), so a builder that forgot to set it cannot break the bound.
  PutResult put(const CacheKey& key, std::shared_ptr<const CachedAnswer> answer,
                uint64_t generation);

  // Drops every entry whose canonical string starts with `prefix` (empty = all) and bumps
  // generation() first, so no fill that began before the purge is stored after it.
  PurgeResult purge(std::string_view prefix);

  // New total budget; a smaller one evicts each shard down to it at once.
  void set_max_bytes(uint64_t max_bytes);

  // The purge counter a fill reads before it starts (see put()).
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  // The largest charge put() accepts: one shard's budget.
  uint64_t max_entry_bytes() const { return max_bytes_.load(std::memory_order_relaxed) / kShards; }

  // Sums the shards, one lock at a time.
  ResponseCacheStats stats() const;

  // Which shard holds `key` (tests use it to place keys in one shard).
  static size_t shard_of(const CacheKey& key) { return static_cast<size_t>(key.hi >> 60); }

 private:
  struct Node {
    CacheKey key;
    std::shared_ptr<const CachedAnswer> value;
    uint64_t charge = 0;
    Node* prev = nullptr;  // towards the most recently used end
    Node* next = nullptr;  // towards the least recently used end
  };
  // Map values are the nodes themselves: unordered_map never moves its elements, so the
  // intrusive links stay valid across rehashes and the map frees them.
  struct alignas(64) Shard {
    mutable std::mutex mu;
    std::unordered_map<CacheKey, Node, CacheKeyHash> map;
    Node* head = nullptr;  // most recently used
    Node* tail = nullptr;  // least recently used
    uint64_t bytes = 0;
    uint64_t budget = 0;
    uint64_t hits = 0, misses = 0, inserts = 0, evictions = 0, purged = 0, expired = 0;
  };

  static void link_front(Shard& s, Node* n);
  static void unlink(Shard& s, Node* n);
  static void erase(Shard& s, Node* n);
  static void evict_to_budget(Shard& s, const Node* keep);

  std::atomic<uint64_t> max_bytes_;
  std::atomic<uint64_t> generation_{0};
  Shard shards_[kShards];
};

}  // namespace lb
