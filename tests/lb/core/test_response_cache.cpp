#include <doctest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "lb/core/response_cache.h"
#include "lb/core/splitmix.h"

namespace {

using lb::CachedAnswer;
using lb::CacheKey;
using lb::PutResult;
using lb::ResponseCache;
using Answer = std::shared_ptr<const CachedAnswer>;

// An answer for `canonical` with a body of `body_bytes` bytes, charged as the cache will.
Answer make_answer(const std::string& canonical, size_t body_bytes, uint64_t expires_ms = 0) {
  auto a = std::make_shared<CachedAnswer>();
  a->key = canonical;
  a->fields = "Content-Type: application/json\r\n";
  a->body.assign(body_bytes, 'b');
  std::memcpy(a->etag, "\"c1-0\"", 7);
  a->expires_ms = expires_ms;
  a->charge = static_cast<uint32_t>(lb::answer_charge(*a));
  return a;
}

// A well-spread key (as XXH3 would give) whose top bits put it in `shard`.
CacheKey key_in(size_t shard, uint64_t n) {
  const uint64_t h = lb::splitmix64(n);
  return CacheKey{lb::splitmix64(h), (h >> 4) | (static_cast<uint64_t>(shard) << 60)};
}

CacheKey key_any(uint64_t n) {
  const uint64_t h = lb::splitmix64(n ^ 0x5555);
  return CacheKey{lb::splitmix64(h), h};
}

}  // namespace

TEST_CASE("response cache: hit returns the stored answer, an unknown key misses") {
  ResponseCache c(16 << 20);
  const CacheKey k = key_any(1);
  Answer a = make_answer("/datums/aa\n\n", 100);
  CHECK(c.put(k, a, c.generation()) == PutResult::stored);
  Answer got = c.get(k, "/datums/aa\n\n", 0);
  REQUIRE(got);
  CHECK(got.get() == a.get());
  CHECK_FALSE(c.get(key_any(2), "/datums/aa\n\n", 0));
  const auto st = c.stats();
  CHECK(st.entries == 1);
  CHECK(st.bytes == lb::answer_charge(*a));
  CHECK(st.hits == 1);
  CHECK(st.misses == 1);
  CHECK(st.inserts == 1);
  CHECK(st.max_bytes == (16u << 20));
}

TEST_CASE("response cache: the same hash with another canonical string is a miss") {
  ResponseCache c(16 << 20);
  const CacheKey k = key_any(7);
  REQUIRE(c.put(k, make_answer("/datums/aa\n\n", 10), c.generation()) == PutResult::stored);
  CHECK_FALSE(c.get(k, "/datums/bb\n\n", 0));
  CHECK_FALSE(c.get(k, "/datums/aa\n\ntext/plain", 0));  // same path, another Accept
  Answer still = c.get(k, "/datums/aa\n\n", 0);          // the colliding lookup dropped nothing
  REQUIRE(still);
  CHECK(still->key == "/datums/aa\n\n");
  CHECK(c.stats().misses == 2);
}

TEST_CASE("response cache: put replaces an entry of the same key") {
  ResponseCache c(16 << 20);
  const CacheKey k = key_any(3);
  Answer v1 = make_answer("/scripts/x\n\n", 500);
  Answer v2 = make_answer("/scripts/x\n\n", 50);
  CHECK(c.put(k, v1, c.generation()) == PutResult::stored);
  CHECK(c.put(k, v2, c.generation()) == PutResult::replaced);
  CHECK(c.get(k, "/scripts/x\n\n", 0).get() == v2.get());
  const auto st = c.stats();
  CHECK(st.entries == 1);
  CHECK(st.bytes == lb::answer_charge(*v2));
  CHECK(st.inserts == 2);
}

TEST_CASE("response cache: LRU order within a shard, get refreshes recency") {
  const uint64_t charge = lb::answer_charge(*make_answer("/datums/0\n\n", 1000));
  // Room for three entries per shard, not four.
  ResponseCache c((3 * charge + charge / 2) * ResponseCache::kShards);
  std::vector<CacheKey> k;
  std::vector<std::string> canon;
  for (int i = 0; i < 5; ++i) {
    k.push_back(key_in(5, i));
    canon.push_back("/datums/" + std::to_string(i) + "\n\n");
    REQUIRE(ResponseCache::shard_of(k.back()) == 5);
  }
  for (int i = 0; i < 3; ++i)
    REQUIRE(c.put(k[i], make_answer(canon[i], 1000), c.generation()) == PutResult::stored);
  REQUIRE(c.get(k[0], canon[0], 0));  // order now 0, 2, 1 (1 is coldest)
  REQUIRE(c.put(k[3], make_answer(canon[3], 1000), c.generation()) == PutResult::stored);
  CHECK_FALSE(c.get(k[1], canon[1], 0));
  CHECK(c.stats().evictions == 1);
  // Order now 3, 0, 2: the next put drops 2, not 0.
  REQUIRE(c.put(k[4], make_answer(canon[4], 1000), c.generation()) == PutResult::stored);
  CHECK_FALSE(c.get(k[2], canon[2], 0));
  CHECK(c.get(k[0], canon[0], 0));
  CHECK(c.get(k[3], canon[3], 0));
  CHECK(c.get(k[4], canon[4], 0));
  CHECK(c.stats().evictions == 2);
  CHECK(c.stats().entries == 3);
}

TEST_CASE("response cache: the byte bound holds under a stream of distinct keys") {
  const uint64_t max_bytes = 16 * 8192;
  ResponseCache c(max_bytes);
  std::vector<CacheKey> keys;
  std::vector<std::string> canon;
  std::vector<uint64_t> charges;
  const int n = 5000;
  for (int i = 0; i < n; ++i) {
    keys.push_back(key_any(1000 + i));
    canon.push_back("/datums/" + std::to_string(i) + "\n\n");
    Answer a = make_answer(canon.back(), lb::splitmix64(i) % 3000);
    charges.push_back(lb::answer_charge(*a));
    REQUIRE(c.put(keys.back(), a, c.generation()) == PutResult::stored);
    REQUIRE(c.stats().bytes <= max_bytes);
  }
  const auto st = c.stats();
  CHECK(st.evictions > 0);
  CHECK(st.entries < static_cast<uint64_t>(n));
  CHECK(st.entries + st.evictions == static_cast<uint64_t>(n));
  // The count matches what is really held.
  uint64_t held = 0, found = 0;
  for (int i = 0; i < n; ++i) {
    if (c.get(keys[i], canon[i], 0)) {
      held += charges[i];
      ++found;
    }
  }
  CHECK(found == st.entries);
  CHECK(held == st.bytes);
}

TEST_CASE("response cache: an evicted entry stays readable through a held pointer") {
  const uint64_t charge = lb::answer_charge(*make_answer("/datums/0\n\n", 1000));
  ResponseCache c(2 * charge * ResponseCache::kShards);
  const CacheKey k0 = key_in(2, 0);
  REQUIRE(c.put(k0, make_answer("/datums/0\n\n", 1000), c.generation()) == PutResult::stored);
  Answer reader = c.get(k0, "/datums/0\n\n", 0);
  REQUIRE(reader);
  std::weak_ptr<const CachedAnswer> watch = reader;
  for (int i = 1; i <= 3; ++i) {
    const std::string canon = "/datums/" + std::to_string(i) + "\n\n";
    REQUIRE(c.put(key_in(2, i), make_answer(canon, 1000), c.generation()) == PutResult::stored);
  }
  CHECK_FALSE(c.get(k0, "/datums/0\n\n", 0));     // evicted from the cache...
  CHECK(reader->body == std::string(1000, 'b'));  // ...but the reader's copy is whole
  CHECK(reader->key == "/datums/0\n\n");
  CHECK(watch.use_count() == 1);  // only the reader holds it now
  reader.reset();
  CHECK(watch.expired());  // freed with the last reader
}

TEST_CASE("response cache: purge by prefix and purge all") {
  ResponseCache c(16 << 20);
  Answer d1 = make_answer("/datums/1\n\n", 10);
  Answer d2 = make_answer("/datums/2\n\n", 20);
  Answer s1 = make_answer("/scripts/1\n\n", 30);
  c.put(key_any(1), d1, c.generation());
  c.put(key_any(2), d2, c.generation());
  c.put(key_any(3), s1, c.generation());
  const uint64_t g0 = c.generation();
  const auto p = c.purge("/datums/");
  CHECK(p.entries == 2);
  CHECK(p.bytes == lb::answer_charge(*d1) + lb::answer_charge(*d2));
  CHECK(c.generation() > g0);
  CHECK_FALSE(c.get(key_any(1), "/datums/1\n\n", 0));
  CHECK_FALSE(c.get(key_any(2), "/datums/2\n\n", 0));
  CHECK(c.get(key_any(3), "/scripts/1\n\n", 0));
  CHECK(c.stats().bytes == lb::answer_charge(*s1));
  const auto all = c.purge("");
  CHECK(all.entries == 1);
  CHECK(all.bytes == lb::answer_charge(*s1));
  const auto st = c.stats();
  CHECK(st.entries == 0);
  CHECK(st.bytes == 0);
  CHECK(st.purged == 3);
  CHECK(c.purge("").entries == 0);
}

TEST_CASE("response cache: set_max_bytes shrinks at once, keeping the most recent") {
  const uint64_t charge = lb::answer_charge(*make_answer("/datums/0\n\n", 1000));
  ResponseCache c(10 * charge * ResponseCache::kShards);
  std::vector<std::string> canon;
  for (int i = 0; i < 10; ++i) {
    canon.push_back("/datums/" + std::to_string(i) + "\n\n");
    REQUIRE(c.put(key_in(9, i), make_answer(canon[i], 1000), c.generation()) == PutResult::stored);
  }
  REQUIRE(c.stats().entries == 10);
  const uint64_t small = 3 * charge * ResponseCache::kShards;
  c.set_max_bytes(small);
  auto st = c.stats();
  CHECK(st.max_bytes == small);
  CHECK(st.entries == 3);
  CHECK(st.bytes <= small);
  CHECK(st.evictions == 7);
  CHECK(c.max_entry_bytes() == 3 * charge);
  for (int i = 0; i < 7; ++i) CHECK_FALSE(c.get(key_in(9, i), canon[i], 0));
  for (int i = 7; i < 10; ++i) CHECK(c.get(key_in(9, i), canon[i], 0));
  // Growing evicts nothing.
  c.set_max_bytes(small * 4);
  CHECK(c.stats().entries == 3);
}

TEST_CASE("response cache: a fill that began before a purge is not stored") {
  ResponseCache c(16 << 20);
  const uint64_t seen = c.generation();
  c.purge("/unrelated/");
  CHECK(c.put(key_any(1), make_answer("/datums/1\n\n", 10), seen) == PutResult::stale);
  CHECK(c.stats().entries == 0);
  CHECK_FALSE(c.get(key_any(1), "/datums/1\n\n", 0));
  CHECK(c.put(key_any(1), make_answer("/datums/1\n\n", 10), c.generation()) == PutResult::stored);
}

TEST_CASE("response cache: an entry past expires_ms is a miss and is dropped") {
  ResponseCache c(16 << 20);
  const CacheKey k = key_any(4);
  REQUIRE(c.put(k, make_answer("/v1/foo/x\n\n", 10, 1000), c.generation()) == PutResult::stored);
  CHECK(c.get(k, "/v1/foo/x\n\n", 999));
  CHECK_FALSE(c.get(k, "/v1/foo/x\n\n", 1000));
  CHECK_FALSE(c.get(k, "/v1/foo/x\n\n", 0));  // dropped, not just hidden
  const auto st = c.stats();
  CHECK(st.entries == 0);
  CHECK(st.bytes == 0);
  CHECK(st.expired == 1);
  CHECK(st.misses == 2);
  CHECK(st.hits == 1);
}

TEST_CASE("response cache: an entry larger than one shard's budget is refused") {
  const uint64_t charge = lb::answer_charge(*make_answer("/datums/0\n\n", 4000));
  ResponseCache c(charge * ResponseCache::kShards);  // budget per shard == charge exactly
  REQUIRE(c.max_entry_bytes() == charge);
  CHECK(c.put(key_any(1), make_answer("/datums/1\n\n", 4001), c.generation()) ==
        PutResult::too_large);
  CHECK(c.stats().entries == 0);
  CHECK(c.put(key_any(0), make_answer("/datums/0\n\n", 4000), c.generation()) == PutResult::stored);
  CHECK(c.put(key_any(2), nullptr, c.generation()) == PutResult::too_large);
  // A charge field larger than the strings is honoured (never under-counted).
  auto big = std::make_shared<CachedAnswer>(*make_answer("/datums/3\n\n", 10));
  big->charge = static_cast<uint32_t>(charge + 1);
  CHECK(c.put(key_any(3), big, c.generation()) == PutResult::too_large);
}

TEST_CASE("response cache: 4 threads get/put/purge and the byte bound holds") {
  const uint64_t max_bytes = 16 * 16384;
  ResponseCache c(max_bytes);
  std::atomic<bool> bad_bound{false}, wrong_body{false};
  std::atomic<uint64_t> ops{0};
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  auto worker = [&](int t) {
    uint64_t r = 0x1234 + t;
    while (std::chrono::steady_clock::now() < until) {
      for (int j = 0; j < 64; ++j) {
        r = lb::splitmix64(r);
        const uint64_t id = r % 3000;
        const CacheKey k = key_any(id);
        const std::string canon = (id % 2 ? "/datums/" : "/scripts/") + std::to_string(id) + "\n\n";
        const unsigned op = (r >> 32) % 100;
        if (op < 60) {
          Answer a = c.get(k, canon, 0);
          if (a && (a->key != canon || a->body.size() != (id * 7) % 2500)) wrong_body = true;
        } else if (op < 98) {
          c.put(k, make_answer(canon, (id * 7) % 2500), c.generation());
        } else if (op < 99) {
          c.purge("/datums/");
        } else {
          c.set_max_bytes(op % 2 ? max_bytes : max_bytes / 2);
        }
        ops.fetch_add(1, std::memory_order_relaxed);
      }
      if (c.stats().bytes > max_bytes) bad_bound = true;
    }
  };
  std::vector<std::thread> th;
  for (int t = 0; t < 4; ++t) th.emplace_back(worker, t);
  for (auto& x : th) x.join();
  CHECK_FALSE(bad_bound.load());
  CHECK_FALSE(wrong_body.load());
  CHECK(ops.load() > 1000);
  const auto st = c.stats();
  CHECK(st.bytes <= st.max_bytes);
  CHECK(st.hits > 0);
  CHECK(st.evictions > 0);
  // Everything left is consistent: a purge of all returns exactly the counted bytes.
  const auto all = c.purge("");
  CHECK(all.entries == st.entries);
  CHECK(all.bytes == st.bytes);
  CHECK(c.stats().bytes == 0);
}
