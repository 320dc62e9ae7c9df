// GET /status: a cached pool's `cache` object (status_cache.h).
#include "lb/admin/status_cache.h"

namespace lb::admin {

CacheFigures cache_figures(const net::PoolCache& c) {
  using S = net::CacheShard;
  CacheFigures f;
  f.store = c.cache.stats();
  f.hits = c.sum(&S::hits);
  f.misses = c.sum(&S::misses);
  f.not_modified = c.sum(&S::not_modified);
  f.stores = c.sum(&S::stores);
  f.collapsed = c.sum(&S::collapsed);
  f.detached_resumed = c.sum(&S::detached_resumed);
  f.detached_cut = c.sum(&S::detached_cut);
  f.flights = non_negative(c.sum(&S::flights));
  c.for_each([&](const S& s) {
    for (size_t i = 0; i < std::size(f.not_stored); ++i)
      f.not_stored[i] += s.not_stored[i].load(std::memory_order_relaxed);
  });
  return f;
}

void cache_status_json(JsonWriter& j, const net::PoolCache& c) {
  const CacheFigures f = cache_figures(c);
  const CacheRules& rules = c.rules();
  j.begin_object();
  j.key("enabled").value(true);
  j.key("max_bytes").value(f.store.max_bytes);
  j.key("bytes").value(f.store.bytes);
  j.key("entries").value(f.store.entries);
  j.key("hits").value(f.hits);
  j.key("misses").value(f.misses);
  j.key("hit_ratio");
  if (f.hits + f.misses != 0)
    j.value(static_cast<double>(f.hits) / static_cast<double>(f.hits + f.misses));
  else
    j.null();
  j.key("collapsed").value(f.collapsed);
  j.key("immutable_after_slots");
  if (rules.kupo)
    j.value(rules.immutable_after_slots);
  else
    j.null();
  j.key("best_tip");
  if (const std::optional<uint64_t> tip = c.known_tip())
    j.value(*tip);
  else
    j.null();
  j.key("collapse").value(c.collapse());
  j.end_object();
}

}  // namespace lb::admin
