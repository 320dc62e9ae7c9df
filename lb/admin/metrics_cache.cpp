// GET /metrics: the response cache's families (status_cache.h), only for pools with a cache.
#include <string>
#include <vector>

#include "lb/admin/status_cache.h"

namespace lb::admin {

void cache_metrics(Exposition& e, const net::Runtime& rt) {
  // Summed once per scrape: each family below reads the same snapshot.
  std::vector<std::pair<std::string, CacheFigures>> pools;
  for (const net::RuntimePool& p : rt.pools)
    if (p.cache) pools.emplace_back("pool=\"" + label(p.name) + "\"", cache_figures(*p.cache));
  if (pools.empty()) return;

  // A family with one sample per cached pool: value(figures).
  auto family = [&](std::string_view name, std::string_view type, std::string_view text,
                    auto&& value) {
    e.help(name, type, text);
    for (const auto& [l, f] : pools) e.line(name, l, value(f));
  };
  using F = CacheFigures;
  family("corral_cache_bytes", "gauge",
         "Bytes the cached answers are charged (key + fields + body + 160 B each).",
         [](const F& f) { return f.store.bytes; });
  family("corral_cache_max_bytes", "gauge", "The cache's byte bound (cache.max_bytes).",
         [](const F& f) { return f.store.max_bytes; });
  family("corral_cache_entries", "gauge", "Answers held in the cache.",
         [](const F& f) { return f.store.entries; });
  family("corral_cache_hits_total", "counter",
         "Requests answered from the cache (304s to If-None-Match included).",
         [](const F& f) { return f.hits; });
  family("corral_cache_misses_total", "counter",
         "Cacheable requests not held: sent upstream or joined a fill.",
         [](const F& f) { return f.misses; });
  family("corral_cache_not_modified_total", "counter",
         "Hits answered 304 Not Modified on If-None-Match.",
         [](const F& f) { return f.not_modified; });
  family("corral_cache_stores_total", "counter", "Answers stored (new or replaced).",
         [](const F& f) { return f.stores; });
  e.help("corral_cache_not_stored_total", "counter",
         "Complete cacheable answers not stored, by reason (null, status, too_large, "
         "encoded, vary, not_deep, producer, budget, purged, private, headers).");
  for (const auto& [l, f] : pools)
    for (size_t i = 0; i < std::size(f.not_stored); ++i)
      e.line("corral_cache_not_stored_total",
             l + ",reason=\"" + net::not_stored_label(static_cast<net::NotStored>(i)) + "\"",
             f.not_stored[i]);
  family("corral_cache_evictions_total", "counter",
         "Entries dropped by the byte bound (least recently used first).",
         [](const F& f) { return f.store.evictions; });
  family("corral_cache_purged_total", "counter",
         "Entries dropped by a purge (POST /cache/purge, or a reload that changed the rules).",
         [](const F& f) { return f.store.purged; });
  family("corral_collapsed_total", "counter",
         "Requests answered without an upstream request of their own (fill followers served "
         "and stream waiters).",
         [](const F& f) { return f.collapsed; });
  e.help("corral_collapse_detached_total", "counter",
         "Slow stream waiters detached from a flight: resumed (sent on their own, same answer) "
         "or cut (their own answer differed).");
  for (const auto& [l, f] : pools)
    e.by_label("corral_collapse_detached_total", l, "result",
               {{"resumed", f.detached_resumed}, {"cut", f.detached_cut}});
  family("corral_flights", "gauge", "Flights (collapsed upstream requests) open now.",
         [](const F& f) { return f.flights; });
}

}  // namespace lb::admin
