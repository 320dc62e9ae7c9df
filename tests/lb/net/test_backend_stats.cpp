// Per-thread shards of backend and listener counters (lb/net/backend_stats.h): writes on
// different threads land in different shards, and the readers sum them.
#include <doctest.h>

#include <thread>
#include <vector>

#include "lb/net/backend_stats.h"

using namespace lb::net;

namespace {

// Runs fn on a fresh thread that took worker shard `index`, and waits for it.
template <class F>
void on_worker(size_t index, F fn) {
  std::thread t([&] {
    set_stats_shard(index);
    fn();
  });
  t.join();
}

// How many shards have been made.
template <class S>
size_t shards(const Sharded<S>& s) {
  size_t n = 0;
  s.for_each([&](const S&) { ++n; });
  return n;
}

}  // namespace

TEST_CASE("backend stats: each worker writes its own shard, readers sum them") {
  BackendStats st;
  CHECK(shards(st) == 0);
  CHECK(st.sum(&BackendShard::timeouts) == 0);
  on_worker(0, [&] {
    st.local().timeouts.fetch_add(2, std::memory_order_relaxed);
    st.local().count(503);
  });
  on_worker(1, [&] {
    st.local().timeouts.fetch_add(3, std::memory_order_relaxed);
    st.local().count(503);
    st.local().count(200);
  });
  st.local().count(503);  // this thread is no worker: shard 0
  CHECK(shards(st) == 3);
  CHECK(st.sum(&BackendShard::timeouts) == 5);
  CHECK(st.code_count(503) == 3);
  CHECK(st.code_count(200) == 1);
  CHECK(st.code_count(404) == 0);
  CodeCounts codes = st.codes();
  CHECK(codes[503] == 3);
  CHECK(codes[200] == 1);
}

TEST_CASE("backend stats: a worker's shard is not the non-worker shard") {
  BackendStats st;
  BackendShard* mine = &st.local();
  BackendShard* theirs = nullptr;
  on_worker(4, [&] { theirs = &st.local(); });
  CHECK(mine != theirs);
  CHECK(&st.local() == mine);  // made once, then reused
  // Shards are cache-line aligned: two workers never share a line.
  CHECK(reinterpret_cast<uintptr_t>(theirs) % 64 == 0);
}

TEST_CASE("backend stats: a gauge raised on one shard and lowered on another sums to zero") {
  BackendStats st;
  on_worker(0, [&] { st.local().in_flight.fetch_add(1, std::memory_order_relaxed); });
  on_worker(1, [&] { st.local().in_flight.fetch_sub(1, std::memory_order_relaxed); });
  CHECK(st.sum(&BackendShard::in_flight) == 0);
  on_worker(2, [&] { st.local().tunnels.fetch_add(2, std::memory_order_relaxed); });
  CHECK(st.sum(&BackendShard::tunnels) == 2);
}

TEST_CASE("backend stats: concurrent writers lose no count") {
  BackendStats st;
  constexpr int kThreads = 4, kEach = 20000;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      // Two threads on one shard (shard 0) and two on their own.
      if (t >= 2) set_stats_shard(static_cast<size_t>(t));
      for (int i = 0; i < kEach; ++i) {
        st.local().resets.fetch_add(1, std::memory_order_relaxed);
        st.local().observe(150);
      }
    });
  for (auto& t : ts) t.join();
  CHECK(st.sum(&BackendShard::resets) == uint64_t{kThreads} * kEach);
  LatencySnapshot h = st.latency();
  CHECK(h.count() == uint64_t{kThreads} * kEach);
  CHECK(h.buckets[1] == uint64_t{kThreads} * kEach);  // 150 µs: the 250 µs bucket
  CHECK(h.sum_us == uint64_t{kThreads} * kEach * 150);
}

TEST_CASE("backend stats: latency buckets are 100 µs .. 30 s, bounds inclusive") {
  CHECK(kLatencyBucketsUs.front() == 100);
  CHECK(kLatencyBucketsUs.back() == 30'000'000);
  CHECK(latency_bucket(0) == 0);
  CHECK(latency_bucket(100) == 0);
  CHECK(latency_bucket(101) == 1);
  CHECK(latency_bucket(250) == 1);
  CHECK(latency_bucket(999) == 3);
  CHECK(latency_bucket(1000) == 3);
  CHECK(latency_bucket(30'000'000) == kLatencyBucketsUs.size() - 1);
  CHECK(latency_bucket(30'000'001) == kLatencyBucketsUs.size());  // +Inf
  for (size_t i = 1; i < kLatencyBucketsUs.size(); ++i)
    CHECK(kLatencyBucketsUs[i - 1] < kLatencyBucketsUs[i]);
  BackendStats st;
  st.local().observe(50);
  st.local().observe(40'000'000);
  LatencySnapshot h = st.latency();
  CHECK(h.buckets.front() == 1);
  CHECK(h.buckets.back() == 1);
  CHECK(h.sum_us == 40'000'050);
}

TEST_CASE("listener stats: shards summed, local codes summed") {
  ListenerStats ls;
  on_worker(0, [&] {
    ls.local().accepted.fetch_add(1, std::memory_order_relaxed);
    ls.local().count(404);
  });
  on_worker(1, [&] {
    ls.local().accepted.fetch_add(1, std::memory_order_relaxed);
    ls.local().count(404);
    ls.local().count(999);  // out of range: slot 0
  });
  CHECK(ls.sum(&ListenerShard::accepted) == 2);
  CodeCounts c = ls.codes();
  CHECK(c[404] == 2);
  CHECK(c[0] == 1);
}

TEST_CASE("stats shard: worker indexes beyond the shard count wrap, never to shard 0") {
  size_t seen = 0;
  std::thread t([&] {
    set_stats_shard(kStatShards - 1);  // would be shard kStatShards: wraps
    seen = tls_stats_shard;
  });
  t.join();
  CHECK(seen >= 1);
  CHECK(seen < kStatShards);
}
