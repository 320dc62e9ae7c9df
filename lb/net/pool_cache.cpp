#include "lb/net/pool_cache.h"

#include <cstring>

namespace lb::net {
namespace {

constexpr const char* kLabels[] = {"null",   "status",   "too_large", "encoded",
                                   "vary",   "not_deep", "producer",  "budget",
                                   "purged", "private",  "headers"};
static_assert(std::size(kLabels) == static_cast<size_t>(NotStored::count));

std::unique_ptr<CacheRules> compile(const config::CacheConfig& cfg, bool kupo) {
  auto r = std::make_unique<CacheRules>();
  r->kupo = kupo;
  r->immutable_after_slots = cfg.immutable_after_slots;
  r->prefixes = cfg.prefixes;
  r->max_age_ms = cfg.max_age_ms;
  return r;
}

bool same_rules(const CacheRules& a, const CacheRules& b) {
  return a.kupo == b.kupo && a.immutable_after_slots == b.immutable_after_slots &&
         a.prefixes == b.prefixes && a.max_age_ms == b.max_age_ms;
}

}  // namespace

const char* not_stored_label(NotStored r) { return kLabels[static_cast<size_t>(r)]; }

NotStored not_stored_of(std::string_view reason) {
  if (reason == "cors") return NotStored::privacy;
  for (size_t i = 0; i < std::size(kLabels); ++i)
    if (reason == kLabels[i]) return static_cast<NotStored>(i);
  return NotStored::headers;
}

PoolCache::PoolCache(const config::CacheConfig& cfg, bool kupo)
    : cache(cfg.max_bytes), collapse_(cfg.collapse) {
  all_rules_.push_back(compile(cfg, kupo));
  rules_.store(all_rules_.back().get(), std::memory_order_release);
}

bool PoolCache::reconfigure(const config::CacheConfig& cfg, bool kupo) {
  cache.set_max_bytes(cfg.max_bytes);
  collapse_.store(cfg.collapse, std::memory_order_relaxed);
  auto next = compile(cfg, kupo);
  if (same_rules(*next, rules())) return false;
  all_rules_.push_back(std::move(next));
  rules_.store(all_rules_.back().get(), std::memory_order_release);
  cache.purge({});
  return true;
}

}  // namespace lb::net
