#pragma once
// The response cache (issue 16, pools with `cache`) in the admin documents: /status's
// per-pool `cache` object (status_cache.cpp) and the corral_cache_* / corral_collapse*
// families of /metrics (metrics_cache.cpp). Internal to lb/admin.
#include <cstdint>

#include "lb/admin/exposition.h"
#include "lb/admin/json_writer.h"
#include "lb/net/pool_cache.h"
#include "lb/net/runtime.h"

namespace lb::admin {

// One pool's cache figures, summed once for both documents: the per-worker counters
// (PoolCache's CacheShard) and the shared store's own (ResponseCache::stats()).
struct CacheFigures {
  ResponseCacheStats store;  // entries, bytes, max_bytes, evictions, purged
  uint64_t hits = 0, misses = 0, not_modified = 0, stores = 0, collapsed = 0;
  uint64_t not_stored[static_cast<size_t>(net::NotStored::count)] = {};
  uint64_t detached_resumed = 0, detached_cut = 0;
  uint64_t flights = 0;  // clamped at 0 (raised and lowered in different shards)
};
CacheFigures cache_figures(const net::PoolCache& c);

// /status pool "cache": {"enabled": true, "max_bytes", "bytes", "entries", "hits", "misses",
// "hit_ratio" (hits / (hits + misses), null while both are 0), "collapsed",
// "immutable_after_slots" (null on a pool whose kind has no built-in rules),
// "best_tip" (null until health published one), "collapse"}. Call only for a pool with a
// cache: a pool without one has no key at all.
void cache_status_json(JsonWriter& j, const net::PoolCache& c);

// The cache families, every one labelled {pool}; nothing at all when no pool has a cache
// (an instance without one exports no empty families).
void cache_metrics(Exposition& e, const net::Runtime& rt);

}  // namespace lb::admin
