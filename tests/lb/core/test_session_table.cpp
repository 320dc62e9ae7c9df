#include <doctest.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "lb/core/session_table.h"

namespace lb {

// Reads the table's private per-shard sizes (befriended in session_table.h).
struct SessionTableTestPeer {
  static size_t shard_size(const SessionTable& t, size_t i) { return t.shard_size(i); }
};

}  // namespace lb

namespace {

using lb::BackendRef;
using lb::SessionKey;
using lb::SessionTable;

// Deterministic well-spread keys (SplitMix64), like the XXH3 keys the extractors produce.
uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

SessionKey key_n(uint64_t n) {
  uint64_t s = n * 2 + 1;
  uint64_t lo = splitmix(s);
  uint64_t hi = splitmix(s);
  return SessionKey{lo, hi};
}

uint64_t total_pinned(const SessionTable& t, BackendRef upto = 16) {
  uint64_t sum = 0;
  for (BackendRef b = 0; b < upto; ++b) sum += t.pinned(b);
  return sum;
}

size_t count_entries(const SessionTable& t) {
  size_t n = 0;
  t.for_each([&](const SessionKey&, const lb::Pin&, uint64_t) { ++n; });
  return n;
}

constexpr uint64_t kHour = 3'600'000;

}  // namespace

TEST_CASE("session table: pin, touch, move and erase keep pinned() counts") {
  SessionTable t(1000, kHour);
  SessionKey a = key_n(1), b = key_n(2);

  CHECK_FALSE(t.touch(a, 0).has_value());
  CHECK(t.stats().size == 0);

  t.pin(a, 3, 10);
  t.pin(b, 3, 10);
  CHECK(t.pinned(3) == 2);
  auto p = t.touch(a, 20);
  REQUIRE(p.has_value());
  CHECK(p->backend == 3);
  CHECK(p->last_slot == 0);

  // Move: counters follow, last_slot survives.
  t.record_slot(a, 500);
  t.pin(a, 7, 30);
  CHECK(t.pinned(3) == 1);
  CHECK(t.pinned(7) == 1);
  p = t.touch(a, 40);
  REQUIRE(p.has_value());
  CHECK(p->backend == 7);
  CHECK(p->last_slot == 500);

  // Re-pinning to the same backend changes no counter.
  t.pin(a, 7, 50);
  CHECK(t.pinned(7) == 1);
  CHECK(t.stats().size == 2);

  CHECK(t.erase(a));
  CHECK_FALSE(t.erase(a));
  CHECK(t.pinned(7) == 0);
  CHECK(t.pinned(3) == 1);
  CHECK_FALSE(t.touch(a, 60).has_value());
  CHECK(t.stats().size == 1);
  CHECK(t.erase(b));
  CHECK(t.pinned(3) == 0);
  CHECK(t.stats().size == 0);
  CHECK(t.stats().expired == 0);
  CHECK(t.stats().evicted == 0);
}

TEST_CASE("session table: record_slot keeps the maximum and ignores unknown keys") {
  SessionTable t(100, kHour);
  SessionKey a = key_n(1);
  CHECK(t.record_slot(a, 99) == 0);  // unknown: no entry appears
  CHECK(t.stats().size == 0);
  t.pin(a, 0, 0);
  CHECK(t.record_slot(a, 100) == 0);   // returns the slot seen before
  CHECK(t.record_slot(a, 90) == 100);  // an older answer: the caller sees a regression
  CHECK(t.touch(a, 1)->last_slot == 100);
  CHECK(t.record_slot(a, 101) == 100);
  CHECK(t.touch(a, 2)->last_slot == 101);
}

TEST_CASE("session table: backend refs >= kMaxBackends are ignored") {
  SessionTable t(100, kHour);
  SessionKey a = key_n(1), b = key_n(2);
  t.pin(a, SessionTable::kMaxBackends, 0);
  CHECK(t.stats().size == 0);
  CHECK(t.pinned(SessionTable::kMaxBackends) == 0);
  CHECK(t.pinned(UINT32_MAX) == 0);

  t.pin(b, SessionTable::kMaxBackends - 1, 0);
  CHECK(t.pinned(SessionTable::kMaxBackends - 1) == 1);
  t.pin(b, UINT32_MAX, 0);  // a bad move leaves the pin as it was
  CHECK(t.touch(b, 1)->backend == SessionTable::kMaxBackends - 1);
  CHECK(t.pinned(SessionTable::kMaxBackends - 1) == 1);
}

TEST_CASE("session table: ttl boundary, refresh and expiry counts") {
  SessionTable t(100, 1000);
  SessionKey a = key_n(1), b = key_n(2);
  t.pin(a, 1, 0);
  t.pin(b, 1, 0);

  // Idle exactly ttl is alive (and refreshed to 1000); ttl + 1 is gone.
  CHECK(t.touch(a, 1000).has_value());
  CHECK(t.touch(a, 2000).has_value());  // refreshed at 1000, so idle is exactly ttl again
  CHECK_FALSE(t.touch(b, 1001).has_value());
  CHECK(t.stats().expired == 1);
  CHECK(t.stats().size == 1);
  CHECK(t.pinned(1) == 1);

  CHECK_FALSE(t.touch(a, 3001).has_value());
  CHECK(t.stats().expired == 2);
  CHECK(t.stats().size == 0);
  CHECK(t.pinned(1) == 0);
  CHECK_FALSE(t.erase(a));  // it really is gone
}

TEST_CASE("session table: a clock behind last_seen does not expire or age an entry") {
  SessionTable t(100, 1000);
  SessionKey a = key_n(1);
  t.pin(a, 1, 5000);
  CHECK(t.touch(a, 4000).has_value());  // another worker's lagging clock
  CHECK(t.touch(a, 6000).has_value());  // last_seen stayed 5000, not 4000
  CHECK_FALSE(t.touch(a, 7001).has_value());
}

TEST_CASE("session table: pin over an expired entry counts it expired and starts fresh") {
  SessionTable t(100, 1000);
  SessionKey a = key_n(1);
  t.pin(a, 1, 0);
  t.record_slot(a, 42);
  t.pin(a, 2, 5000);
  CHECK(t.stats().expired == 1);
  CHECK(t.stats().size == 1);
  CHECK(t.pinned(1) == 0);
  CHECK(t.pinned(2) == 1);
  auto p = t.touch(a, 5001);
  REQUIRE(p.has_value());
  CHECK(p->backend == 2);
  CHECK(p->last_slot == 0);
}

TEST_CASE("session table: sweep removes exactly the expired entries") {
  SessionTable t(1000, 100, 4);
  std::set<std::pair<uint64_t, uint64_t>> fresh;
  // Time only moves forward (as a monotonic clock does): every third key at 0, the rest at 50.
  for (uint64_t i = 0; i < 200; i += 3) t.pin(key_n(i), static_cast<BackendRef>(i % 5), 0);
  for (uint64_t i = 0; i < 200; ++i) {
    if (i % 3 == 0) continue;
    t.pin(key_n(i), static_cast<BackendRef>(i % 5), 50);
    fresh.insert({key_n(i).lo, key_n(i).hi});
  }
  // Refresh a few old ones: they must survive.
  for (uint64_t i = 0; i < 30; i += 3) {
    REQUIRE(t.touch(key_n(i), 100).has_value());
    fresh.insert({key_n(i).lo, key_n(i).hi});
  }
  size_t expect_removed = 200 - fresh.size();

  CHECK(t.sweep(100) == 0);               // idle == ttl for the oldest: nothing yet
  CHECK(t.sweep(149) == expect_removed);  // old idle 149; fresh 99; refreshed 49
  CHECK(t.stats().expired == expect_removed);
  CHECK(t.stats().size == fresh.size());
  CHECK(total_pinned(t) == fresh.size());
  std::set<std::pair<uint64_t, uint64_t>> seen;
  t.for_each([&](const SessionKey& k, const lb::Pin&, uint64_t) { seen.insert({k.lo, k.hi}); });
  CHECK(seen == fresh);
  CHECK(t.sweep(149) == 0);
}

TEST_CASE("session table: sweep respects max_per_shard") {
  SessionTable one(100, 10, 1);
  for (uint64_t i = 0; i < 10; ++i) one.pin(key_n(i), 0, i);  // last_seen 0..9
  // At now=25 entries with last_seen < 15 are expired: all ten, oldest first.
  CHECK(one.sweep(25, 3) == 3);
  CHECK(one.stats().size == 7);
  CHECK_FALSE(one.touch(key_n(2), 12).has_value());  // gone, not expired by touch
  CHECK(one.stats().expired == 3);
  CHECK(one.touch(key_n(3), 12).has_value());  // idle 9: alive, now hot
  CHECK(one.sweep(25, 0) == 0);
  CHECK(one.sweep(21, 100) == 6);  // keys 4..9 (idle >= 12); key 3 was refreshed at 12
  CHECK(one.stats().size == 1);
  CHECK(one.pinned(0) == 1);

  SessionTable four(1000, 10, 4);
  for (uint64_t i = 0; i < 400; ++i) four.pin(key_n(i), 0, 0);
  CHECK(four.sweep(100, 2) == 8);  // two per shard, four shards
  CHECK(four.stats().size == 392);
  CHECK(four.pinned(0) == 392);
}

TEST_CASE("session table: LRU evicts the least recently touched, not the oldest insert") {
  SessionTable t(3, kHour, 1);
  SessionKey a = key_n(1), b = key_n(2), c = key_n(3), d = key_n(4), e = key_n(5);
  t.pin(a, 0, 1);
  t.pin(b, 1, 2);
  t.pin(c, 2, 3);
  REQUIRE(t.touch(a, 4).has_value());  // order now (cold..hot): b c a
  t.pin(d, 3, 5);
  CHECK(t.stats().evicted == 1);
  CHECK(t.stats().size == 3);
  CHECK(t.pinned(1) == 0);  // b was on backend 1
  CHECK(t.pinned(3) == 1);
  CHECK_FALSE(t.touch(b, 6).has_value());
  CHECK(t.stats().expired == 0);  // a miss, not an expiry

  // pin() of an existing key also makes it hot: order c a d -> a d c after re-pinning c.
  t.pin(c, 2, 7);
  t.pin(e, 4, 8);
  CHECK(t.touch(c, 9).has_value());
  CHECK_FALSE(t.touch(a, 9).has_value());
  CHECK(t.touch(d, 9).has_value());
  CHECK(t.touch(e, 9).has_value());
  CHECK(t.stats().evicted == 2);
  CHECK(total_pinned(t) == 3);
}

TEST_CASE("session table: a full shard whose coldest entry is expired counts an expiry") {
  SessionTable t(2, 100, 1);
  t.pin(key_n(1), 0, 0);
  t.pin(key_n(2), 0, 150);
  t.pin(key_n(3), 0, 150);  // key 1 is idle 150 > 100
  CHECK(t.stats().expired == 1);
  CHECK(t.stats().evicted == 0);
  CHECK(t.pinned(0) == 2);
}

TEST_CASE("session table: expiries are counted per backend by every path; evictions are not") {
  SessionTable t(3, 100, 1);
  t.pin(key_n(1), 1, 0);
  t.pin(key_n(2), 2, 0);
  t.pin(key_n(3), 2, 0);
  CHECK_FALSE(t.touch(key_n(1), 150).has_value());  // touch
  t.pin(key_n(2), 1, 150);                          // pin over an expired entry
  t.pin(key_n(4), 3, 150);
  t.pin(key_n(5), 3, 150);  // full: the cold end (key 3, idle 150) expires
  CHECK(t.expired(1) == 1);
  CHECK(t.expired(2) == 2);
  CHECK(t.expired(3) == 0);
  t.pin(key_n(6), 3, 160);  // full: key 2 is live, so this is an eviction
  CHECK(t.stats().evicted == 1);
  CHECK(t.sweep(400) == 3);  // sweep: keys 4, 5, 6 on backend 3
  CHECK(t.expired(3) == 3);
  CHECK(t.expired(0) == 0);
  CHECK(t.expired(SessionTable::kMaxBackends) == 0);  // out of range reads 0
  uint64_t sum = 0;
  for (BackendRef b = 0; b < 8; ++b) sum += t.expired(b);
  CHECK(sum == t.stats().expired);
}

TEST_CASE("session table: set_limits shrinks lazily; sweep and pin enforce the new cap") {
  SessionTable t(100, kHour, 1);
  for (uint64_t i = 0; i < 10; ++i) t.pin(key_n(i), static_cast<BackendRef>(i % 2), i);
  t.set_limits(4, kHour);
  CHECK(t.stats().size == 10);  // lazy
  CHECK(t.sweep(20, 2) == 2);   // budgeted
  CHECK(t.stats().size == 8);
  CHECK(t.sweep(20) == 4);
  CHECK(t.stats().size == 4);
  CHECK(t.stats().evicted == 6);
  CHECK(t.stats().expired == 0);
  CHECK(total_pinned(t) == 4);
  for (uint64_t i = 6; i < 10; ++i) CHECK(t.touch(key_n(i), 21).has_value());  // the hottest

  t.set_limits(2, kHour);
  t.pin(key_n(100), 0, 30);  // evicts down to 1, then inserts
  CHECK(t.stats().size == 2);
  CHECK(t.stats().evicted == 9);
  CHECK(total_pinned(t) == 2);

  // A shorter ttl applies at once.
  t.set_limits(100, 5);
  CHECK_FALSE(t.touch(key_n(100), 36).has_value());
  CHECK(t.stats().expired == 1);
}

TEST_CASE("session table: degenerate limits are clamped") {
  SessionTable t(0, kHour, 0);  // one shard, cap 1
  t.pin(key_n(1), 0, 0);
  t.pin(key_n(2), 0, 1);
  CHECK(t.stats().size == 1);
  CHECK(t.stats().evicted == 1);
  CHECK(t.touch(key_n(2), 2).has_value());
  CHECK(t.bytes_per_session() > 0);
  CHECK(t.erase(key_n(2)));
  CHECK(t.bytes_per_session() == 0);  // no sessions, no per-session figure
  CHECK(t.memory().bytes > 0);
}

TEST_CASE("session table: matches a reference model under random operations") {
  // One shard and a small key space so the probe runs collide, grow and shift back a lot.
  SessionTable t(1'000'000, kHour, 1);
  std::map<std::pair<uint64_t, uint64_t>, lb::Pin> model;
  std::mt19937_64 rng(7);
  for (int op = 0; op < 200'000; ++op) {
    uint64_t n = rng() % 3000;
    SessionKey k = key_n(n);
    auto mk = std::make_pair(k.lo, k.hi);
    switch (rng() % 4) {
      case 0:
      case 1: {
        BackendRef b = static_cast<BackendRef>(rng() % 8);
        t.pin(k, b, op);
        auto it = model.find(mk);
        if (it == model.end())
          model[mk] = lb::Pin{b, 0};
        else
          it->second.backend = b;
        break;
      }
      case 2: {
        auto got = t.touch(k, op);
        auto it = model.find(mk);
        REQUIRE(got.has_value() == (it != model.end()));
        if (got) {
          REQUIRE(got->backend == it->second.backend);
          REQUIRE(got->last_slot == it->second.last_slot);
        }
        uint64_t slot = rng() % 1000;
        t.record_slot(k, slot);
        if (it != model.end()) it->second.last_slot = std::max(it->second.last_slot, slot);
        break;
      }
      default:
        REQUIRE(t.erase(k) == (model.erase(mk) == 1));
    }
  }
  CHECK(t.stats().size == model.size());
  CHECK(total_pinned(t, 8) == model.size());
  size_t visited = 0;
  t.for_each([&](const SessionKey& k, const lb::Pin& p, uint64_t) {
    auto it = model.find({k.lo, k.hi});
    REQUIRE(it != model.end());
    CHECK(it->second.backend == p.backend);
    ++visited;
  });
  CHECK(visited == model.size());
}

TEST_CASE("session table: for_each visits exactly the live entries") {
  SessionTable t(50, 100, 4);
  std::set<std::pair<uint64_t, uint64_t>> inserted;
  for (uint64_t i = 0; i < 300; ++i) {
    t.pin(key_n(i), 0, i);
    inserted.insert({key_n(i).lo, key_n(i).hi});
  }
  for (uint64_t i = 250; i < 300; i += 7) t.erase(key_n(i));
  t.sweep(300);  // drops those idle > 100 (last_seen < 200)

  std::set<std::pair<uint64_t, uint64_t>> seen;
  size_t calls = 0;
  t.for_each([&](const SessionKey& k, const lb::Pin&, uint64_t last_seen) {
    ++calls;
    seen.insert({k.lo, k.hi});
    CHECK(last_seen >= 200);
  });
  CHECK(calls == seen.size());
  CHECK(calls == t.stats().size);
  CHECK(calls == t.pinned(0));
  CHECK(calls > 0);
  // Every visited key answers touch(), and a key not visited does not.
  for (uint64_t i = 0; i < 300; ++i) {
    bool visited = seen.count({key_n(i).lo, key_n(i).hi}) == 1;
    CHECK(t.touch(key_n(i), 300).has_value() == visited);
  }
}

TEST_CASE("session table: keys spread evenly over 64 shards") {
  SessionTable t(10'000'000, kHour, 64);
  for (int i = 0; i < 100'000; ++i)
    t.pin(lb::make_session_key(lb::KeySource::header, "user-" + std::to_string(i)), 0, 0);
  REQUIRE(t.stats().size == 100'000);
  size_t mx = 0, mn = SIZE_MAX;
  for (size_t i = 0; i < 64; ++i) {
    size_t n = lb::SessionTableTestPeer::shard_size(t, i);
    mx = std::max(mx, n);
    mn = std::min(mn, n);
  }
  double mean = 100'000.0 / 64;
  CHECK(mn > 0);
  CHECK(static_cast<double>(mx) / mean < 1.3);
}

TEST_CASE("session table: concurrent pin/touch/erase/sweep stay consistent") {
  // Small cap and ttl so eviction and expiry race with everything else.
  SessionTable t(512, 200, 8);
  constexpr int kThreads = 4, kOps = 50'000;
  std::vector<std::thread> threads;
  for (int w = 0; w < kThreads; ++w) {
    threads.emplace_back([&t, w] {
      std::mt19937_64 rng(w + 1);
      for (int op = 0; op < kOps; ++op) {
        SessionKey k = key_n(rng() % 2000);  // overlapping key space across threads
        uint64_t now = static_cast<uint64_t>(op);
        switch (rng() % 8) {
          case 0:
          case 1:
          case 2:
            t.pin(k, static_cast<BackendRef>(rng() % 6), now);
            break;
          case 3:
          case 4:
            if (auto p = t.touch(k, now)) t.record_slot(k, p->last_slot + 1);
            break;
          case 5:
          case 6:
            t.erase(k);
            break;
          default:
            if (op % 64 == 0) t.sweep(now, 4);
            break;
        }
      }
    });
  }
  for (auto& th : threads) th.join();

  auto st = t.stats();
  CHECK(st.size <= 512);
  CHECK(st.size > 0);
  CHECK(total_pinned(t, 6) == st.size);
  for (BackendRef b = 6; b < 16; ++b) CHECK(t.pinned(b) == 0);
  CHECK(count_entries(t) == st.size);
  CHECK(st.evicted + st.expired > 0);
}

TEST_CASE("session table: 1M sessions fit in 128 bytes each") {
  auto start = std::chrono::steady_clock::now();
  SessionTable t(1'000'000, kHour);  // the default config
  for (uint64_t i = 0; i < 1'000'000; ++i) t.pin(key_n(i), static_cast<BackendRef>(i % 4), 0);
  auto st = t.stats();
  // Per-shard caps (ceil(1M / 64)) let a slightly over-full shard evict a little early.
  CHECK(st.size + st.evicted == 1'000'000);
  CHECK(st.size > 990'000);
  CHECK(total_pinned(t, 4) == st.size);
  size_t bps = t.bytes_per_session();
  MESSAGE("bytes/session at ", st.size, " sessions: ", bps);
  CHECK(bps <= 128);
  CHECK(t.touch(key_n(999'999), 1).has_value());
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE("1M inserts: ", secs, " s");
}

// The figure /status shows must be what the table really costs: malloc's own count of the
// bytes in use (mallinfo2: arena chunks in use plus mmapped blocks) before the table is
// made and after N sessions are in it, against memory() for the same table.
TEST_CASE("session table: memory() matches what malloc reports for the same table") {
// gcc names a sanitizer build with a macro, clang with __has_feature.
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CORRAL_MALLOC_REPLACED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || defined(CORRAL_MALLOC_REPLACED)
  MESSAGE("skipped: a sanitizer replaces malloc, mallinfo2 does not see its blocks");
#else
  for (uint64_t n : {20'000, 150'000}) {
    auto in_use = [] {
      struct mallinfo2 mi = mallinfo2();
      return static_cast<double>(mi.uordblks + mi.hblkhd);
    };
    const double before = in_use();
    auto t = std::make_unique<SessionTable>(1'000'000, kHour);
    for (uint64_t i = 0; i < n; ++i) t->pin(key_n(i), static_cast<BackendRef>(i % 4), 0);
    const double measured = in_use() - before;
    lb::SessionMemory m = t->memory();
    REQUIRE(m.sessions == n);
    MESSAGE(n, " sessions: memory() ", m.bytes, " bytes, malloc ", measured, " bytes, ",
            t->bytes_per_session(), " bytes/session");
    CHECK(static_cast<double>(m.bytes) == doctest::Approx(measured).epsilon(0.03));
    CHECK(t->bytes_per_session() == static_cast<size_t>((m.bytes + m.sessions - 1) / m.sessions));
  }
#endif
}

TEST_CASE("session table: a move off a fork forgets the slot, other moves keep it") {
  SessionTable t(100, kHour);
  SessionKey a = key_n(1);
  t.pin(a, 0, 0);
  t.record_slot(a, 500);
  t.pin(a, 1, 1, 2);  // an ordinary move: the user must still not go back past 500
  CHECK(t.touch(a, 2)->last_slot == 500);
  t.pin(a, 2, 3, 6, true);  // off a fork: its slots say nothing about the new chain
  CHECK(t.touch(a, 4)->last_slot == 0);
  CHECK(t.touch(a, 4)->backend == 2);
  t.record_slot(a, 480);
  CHECK(t.touch(a, 5)->last_slot == 480);
}
