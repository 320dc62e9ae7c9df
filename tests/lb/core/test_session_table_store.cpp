// SessionTable's issue-15 additions: the refresh epoch in touch(), adopt() and erase_if().
#include <doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "lb/core/refresh_epoch.h"
#include "lb/core/session_table.h"

using lb::SessionKey;
using lb::SessionTable;

namespace {
SessionKey key(uint64_t i) { return SessionKey{i * 0x9E3779B97F4A7C15ull + 1, i + 7}; }
constexpr uint64_t kTtl = 60'000;  // epochs of 6 s
}  // namespace

TEST_CASE("refresh_epoch: ttl/10 epochs, at least one second") {
  CHECK(lb::refresh_interval_ms(60'000) == 6'000);
  CHECK(lb::refresh_interval_ms(5'000) == 1'000);
  CHECK(lb::refresh_interval_ms(0) == 1'000);
  CHECK(lb::refresh_epoch(5'999, 60'000) == 0);
  CHECK(lb::refresh_epoch(6'000, 60'000) == 1);
  CHECK(lb::refresh_epoch(12'500, 5'000) == 12);
  CHECK(lb::refresh_epoch(uint64_t{65536} * 1000 + 3000, 1) == 3);  // wraps at 16 bits
}

TEST_CASE("session_table: touch with an epoch is due once per epoch") {
  SessionTable t(1000, kTtl);
  const uint64_t t0 = 1'000'000;  // epoch 166
  t.pin(key(1), 2, t0);
  // pin() stamped the current epoch: the store was just written.
  auto r = t.touch(key(1), t0 + 10, lb::refresh_epoch(t0 + 10, kTtl));
  REQUIRE(r);
  CHECK(r->pin.backend == 2);
  CHECK_FALSE(r->refresh_due);
  // The next epoch: due once, whichever caller sees it first.
  const uint64_t t1 = t0 + 6'000;
  r = t.touch(key(1), t1, lb::refresh_epoch(t1, kTtl));
  REQUIRE(r);
  CHECK(r->refresh_due);
  r = t.touch(key(1), t1 + 1, lb::refresh_epoch(t1 + 1, kTtl));
  REQUIRE(r);
  CHECK_FALSE(r->refresh_due);
  // Unknown and expired keys: nothing, as with the plain touch().
  CHECK_FALSE(t.touch(key(2), t1, 0));
  CHECK_FALSE(t.touch(key(1), t1 + kTtl + 2, lb::refresh_epoch(t1 + kTtl + 2, kTtl)));
  CHECK(t.stats().expired == 1);
}

TEST_CASE("session_table: the plain touch leaves the refresh epoch alone") {
  SessionTable t(1000, kTtl);
  t.pin(key(1), 1, 0);
  CHECK(t.touch(key(1), 7'000));
  auto r = t.touch(key(1), 7'001, lb::refresh_epoch(7'001, kTtl));
  REQUIRE(r);
  CHECK(r->refresh_due);
}

TEST_CASE("session_table: adopt inserts, re-pins, keeps the higher slot, moves counts") {
  SessionTable t(1000, kTtl);
  CHECK(t.adopt(key(1), 3, 500, 1, 100));  // unknown: inserted
  auto p = t.peek(key(1));
  REQUIRE(p);
  CHECK(p->backend == 3);
  CHECK(p->last_slot == 500);
  CHECK(p->last_move == 1);
  CHECK(t.pinned(3) == 1);

  t.record_slot(key(1), 900);
  CHECK_FALSE(t.adopt(key(1), 3, 700, 0, 200));  // same backend: no change
  CHECK(t.peek(key(1))->last_slot == 900);       // local is higher: kept
  CHECK_FALSE(t.adopt(key(1), 3, 1200, 0, 300));
  CHECK(t.peek(key(1))->last_slot == 1200);  // the store's is higher: taken

  CHECK(t.adopt(key(1), 4, 10, 2, 400));  // another instance moved the user
  p = t.peek(key(1));
  CHECK(p->backend == 4);
  CHECK(p->last_move == 2);
  CHECK(p->last_slot == 1200);
  CHECK(t.pinned(3) == 0);
  CHECK(t.pinned(4) == 1);
  CHECK(t.stats().size == 1);

  // adopt() stamps the epoch: no refresh due in the same epoch.
  auto r = t.touch(key(1), 401, lb::refresh_epoch(401, kTtl));
  REQUIRE(r);
  CHECK_FALSE(r->refresh_due);

  // An expired entry is replaced as a fresh one (counted as expired), slot from the store.
  CHECK(t.adopt(key(1), 4, 5, 0, 401 + kTtl + 1));
  CHECK(t.peek(key(1))->last_slot == 5);
  CHECK(t.stats().expired == 1);
  CHECK(t.pinned(4) == 1);
  CHECK_FALSE(t.adopt(key(2), lb::kMaxBackends, 0, 0, 0));  // out-of-range ref ignored
  CHECK_FALSE(t.peek(key(2)));
}

TEST_CASE("session_table: adopt respects max_sessions like pin") {
  SessionTable t(4, kTtl, 1);
  for (uint64_t i = 0; i < 10; ++i) t.adopt(key(i), 1, i, 0, i);
  CHECK(t.stats().size == 4);
  CHECK(t.stats().evicted == 6);
  CHECK(t.pinned(1) == 4);
  CHECK(t.peek(key(9)));
  CHECK_FALSE(t.peek(key(0)));
}

TEST_CASE("session_table: erase_if drops only a pin to the named backend") {
  SessionTable t(1000, kTtl);
  t.pin(key(1), 1, 0);
  t.pin(key(2), 2, 0);
  CHECK_FALSE(t.erase_if(key(1), 2));  // we already follow another backend
  CHECK(t.peek(key(1)));
  CHECK(t.erase_if(key(1), 1));
  CHECK_FALSE(t.peek(key(1)));
  CHECK(t.pinned(1) == 0);
  CHECK(t.pinned(2) == 1);
  CHECK_FALSE(t.erase_if(key(1), 1));  // already gone
  CHECK_FALSE(t.erase_if(key(3), 1));  // never known
}

TEST_CASE("session_table: concurrent touches see a refresh due once per key and epoch") {
  SessionTable t(100'000, kTtl);
  constexpr uint64_t kKeys = 500;
  for (uint64_t i = 0; i < kKeys; ++i) t.pin(key(i), 1, 0);
  const uint64_t now = 6'000;  // the next epoch after the pins'
  std::atomic<uint64_t> due{0};
  std::vector<std::thread> ts;
  for (int w = 0; w < 4; ++w)
    ts.emplace_back([&] {
      for (int round = 0; round < 5; ++round)
        for (uint64_t i = 0; i < kKeys; ++i)
          if (auto r = t.touch(key(i), now, lb::refresh_epoch(now, kTtl)); r && r->refresh_due)
            due.fetch_add(1, std::memory_order_relaxed);
    });
  for (auto& th : ts) th.join();
  CHECK(due.load() == kKeys);
}
