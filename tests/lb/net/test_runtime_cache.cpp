// build_runtime's pools.NAME.cache across reloads: the Registry keeps one PoolCache per pool
// name, a new max_bytes shrinks it at once, changed rules purge it, and a pool that no
// longer has a cache loses it (its memory goes with the last runtime that holds it).
#include <doctest.h>

#include <memory>
#include <string>

#include "config/loader.h"
#include "lb/core/cache_key.h"
#include "lb/net/runtime.h"

using namespace lb::net;

namespace {

config::Config with_cache(const std::string& cache, const std::string& address = "127.0.0.1:1442") {
  config::LoadResult r = config::load_string(
      "listeners: [{name: p, listen: 127.0.0.1:0, routes: [{prefix: /, pool: k}]}]\n"
      "pools:\n"
      "  k:\n"
      "    kind: kupo\n"
      "    backends: [{name: k, address: " +
          address + "}]\n" + (cache.empty() ? std::string() : "    cache: " + cache + "\n"),
      "t.yaml");
  std::string errors;
  for (const config::ConfigError& e : r.errors) errors += e.str() + "\n";
  REQUIRE_MESSAGE(r.config.has_value(), errors);
  return *r.config;
}

// Stores n answers of `body_bytes` each under distinct keys; returns how many were stored.
size_t fill(PoolCache& pc, int n, size_t body_bytes) {
  size_t stored = 0;
  for (int i = 0; i < n; ++i) {
    auto a = std::make_shared<lb::CachedAnswer>();
    a->key = "/datums/" + std::to_string(i) + "\n\n";
    a->body.assign(body_bytes, 'x');
    a->charge = static_cast<uint32_t>(lb::answer_charge(*a));
    const lb::CacheKey key = lb::cache_key(7, a->key);  // before `a` is moved from
    lb::PutResult r = pc.cache.put(key, std::move(a), pc.cache.generation());
    stored += r == lb::PutResult::stored ? 1 : 0;
  }
  return stored;
}

}  // namespace

TEST_CASE("runtime cache: a pool without cache has none") {
  Registry reg;
  auto rt = build_runtime(with_cache(""), reg);
  CHECK(rt->pools[0].cache == nullptr);
}

TEST_CASE("runtime cache: a reload keeps the PoolCache; a smaller max_bytes shrinks it at once") {
  Registry reg;
  auto rt1 = build_runtime(with_cache("{max_bytes: 4MB}"), reg);
  REQUIRE(rt1->pools[0].cache != nullptr);
  PoolCache* pc = rt1->pools[0].cache.get();
  CHECK(pc->cache.stats().max_bytes == 4u << 20);
  CHECK(fill(*pc, 128, 20'000) > 0);
  const lb::ResponseCacheStats full = pc->cache.stats();
  REQUIRE(full.bytes > (1u << 20));  // more than the smaller budget: shrinking must evict

  // The same settings again: the same object, nothing dropped.
  auto rt2 = build_runtime(with_cache("{max_bytes: 4MB}"), reg, rt1.get());
  CHECK(rt2->pools[0].cache.get() == pc);
  CHECK(pc->cache.stats().entries == full.entries);

  auto rt3 = build_runtime(with_cache("{max_bytes: 1MB}"), reg, rt2.get());
  CHECK(rt3->pools[0].cache.get() == pc);
  const lb::ResponseCacheStats small = pc->cache.stats();
  CHECK(small.max_bytes == 1u << 20);
  CHECK(small.bytes <= (1u << 20));
  CHECK(small.entries < full.entries);
  CHECK(small.entries > 0);  // evicted down to the budget, not purged
  CHECK(small.purged == 0);
  CHECK(small.evictions >= full.entries - small.entries);

  // A larger budget simply grows: what is held stays.
  auto rt4 = build_runtime(with_cache("{max_bytes: 8MB}"), reg, rt3.get());
  CHECK(rt4->pools[0].cache.get() == pc);
  CHECK(pc->cache.stats().entries == small.entries);
  CHECK(pc->cache.stats().max_bytes == 8u << 20);
}

TEST_CASE("runtime cache: changed rules purge; collapse alone does not") {
  Registry reg;
  auto rt1 = build_runtime(with_cache("{}"), reg);
  PoolCache* pc = rt1->pools[0].cache.get();
  REQUIRE(pc != nullptr);
  CHECK(pc->rules().immutable_after_slots == 129600);
  CHECK(pc->collapse());
  REQUIRE(fill(*pc, 16, 1000) == 16);

  auto rt2 = build_runtime(with_cache("{collapse: false}"), reg, rt1.get());
  CHECK(rt2->pools[0].cache.get() == pc);
  CHECK_FALSE(pc->collapse());
  CHECK(pc->cache.stats().entries == 16);

  const uint64_t gen = pc->cache.generation();
  auto rt3 = build_runtime(with_cache("{immutable_after_slots: 25920}"), reg, rt2.get());
  CHECK(rt3->pools[0].cache.get() == pc);
  CHECK(pc->rules().immutable_after_slots == 25920);
  CHECK(pc->cache.stats().entries == 0);
  CHECK(pc->cache.stats().purged == 16);
  CHECK(pc->cache.generation() > gen);  // fills begun before it are not stored

  REQUIRE(fill(*pc, 4, 1000) == 4);
  auto rt4 = build_runtime(
      with_cache("{immutable_after_slots: 25920, prefixes: [/x/], max_age: 1m}"), reg, rt3.get());
  CHECK(rt4->pools[0].cache.get() == pc);
  CHECK(pc->cache.stats().entries == 0);
}

TEST_CASE("runtime cache: removing cache drops it from the registry") {
  Registry reg;
  auto rt1 = build_runtime(with_cache("{}"), reg);
  std::weak_ptr<PoolCache> old = rt1->pools[0].cache;
  REQUIRE(fill(*rt1->pools[0].cache, 8, 1000) == 8);

  auto rt2 = build_runtime(with_cache(""), reg, rt1.get());
  CHECK(rt2->pools[0].cache == nullptr);
  CHECK_FALSE(old.expired());  // the old runtime still holds it: requests under way finish
  rt1.reset();
  CHECK(old.expired());  // the registry let go too: its memory is freed

  // Added back later: a new, empty cache.
  auto rt3 = build_runtime(with_cache("{}"), reg, rt2.get());
  REQUIRE(rt3->pools[0].cache != nullptr);
  CHECK(rt3->pools[0].cache->cache.stats().entries == 0);
}

TEST_CASE(
    "runtime cache: a reload that replaces every backend purges; one that keeps one does not") {
  Registry reg;
  auto rt1 = build_runtime(with_cache("{max_bytes: 4MB}"), reg);
  PoolCache& pc = *rt1->pools[0].cache;
  REQUIRE(fill(pc, 5, 100) == 5);
  auto rt2 = build_runtime(with_cache("{max_bytes: 4MB}"), reg, rt1.get());
  CHECK(pc.cache.stats().entries == 5);  // same backend: kept
  auto rt3 = build_runtime(with_cache("{max_bytes: 4MB}", "127.0.0.1:1443"), reg, rt2.get());
  CHECK(rt3->pools[0].cache.get() == &pc);
  CHECK(pc.cache.stats().entries == 0);  // another fleet (maybe another network): purged
}
