#pragma once
// Live counters of one backend (or one listener), kept across reloads: the registry hands
// out one per name.
//
// Counters are sharded per thread, so that workers never write the same cache line (issue
// 12: "counters per worker, summed on scrape, no lock on the request path"):
//
// - Writers (the data path) bump fields of their own shard with relaxed atomics:
//     st.local().timeouts.fetch_add(1, std::memory_order_relaxed);
//     st.local().count(503);  st.local().observe(us);
//   local() is this thread's shard: a worker thread calls set_stats_shard(index) when it
//   starts; every other thread (control loop, health, tests) shares shard 0. A shard is
//   allocated on its thread's first write (one lock-free compare-exchange, never again).
// - Readers (/metrics, /status, tests) sum the shards; a scrape is a snapshot anyway:
//     st.sum(&BackendShard::timeouts)   any counter or gauge field of the shard
//     st.code_count(503), st.codes()    responses by status code
//     st.latency()                      the histogram (per bucket, not cumulative)
//   A gauge (in_flight, tunnels, open) may be raised in one shard and lowered in another;
//   only its sum means something.
//
// What is state rather than a count (a backend's state, tip, 503 streak, override, ramp)
// stays one shared atomic in BackendStats: it is read on the data path, written rarely.
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "lb/core/backend_state.h"
#include "lb/core/balancer.h"
#include "lb/net/live_points.h"

namespace lb::net {

// Shards per counter set: shard 0 for threads that are not workers, 1.. for workers
// (workers beyond kStatShards - 1 share shards: still correct, just less private).
inline constexpr size_t kStatShards = 64;

// This thread's shard index; 0 unless set_stats_shard was called on this thread.
inline thread_local size_t tls_stats_shard = 0;

// Called once by a worker thread as it starts: its counters go to shard worker_index + 1.
inline void set_stats_shard(size_t worker_index) {
  tls_stats_shard = worker_index % (kStatShards - 1) + 1;
}

// Response-time bucket bounds in microseconds (Prometheus "le" bounds, 100 µs .. 30 s);
// one more bucket after the last is +Inf.
inline constexpr std::array<uint64_t, 17> kLatencyBucketsUs = {
    100,    250,    500,    1000,    2500,    5000,    10000,    25000,   50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000};

// The bucket a response time falls in: the first bound >= us, or the +Inf bucket.
size_t latency_bucket(uint64_t us);

struct LatencyHistogram {
  std::array<std::atomic<uint64_t>, kLatencyBucketsUs.size() + 1> buckets{};
  std::atomic<uint64_t> sum_us{0};
  void observe(uint64_t us);
};

// A histogram summed over shards: per-bucket counts (not cumulative) and the sum.
struct LatencySnapshot {
  std::array<uint64_t, kLatencyBucketsUs.size() + 1> buckets{};
  uint64_t sum_us = 0;
  uint64_t count() const;
};

// Status codes 100..599 by index; anything else lands on 0.
inline constexpr size_t kStatusSlots = 600;
using CodeCounts = std::array<uint64_t, kStatusSlots>;

struct StatusCounters {
  std::array<std::atomic<uint64_t>, kStatusSlots> by_code{};
  void count(int status) {
    by_code[status >= 100 && status < 600 ? status : 0].fetch_add(1, std::memory_order_relaxed);
  }
};

// One thread's shard of a backend's counters.
struct alignas(64) BackendShard {
  StatusCounters responses;  // as answered by the backend, or 502/504 made for it
  LatencyHistogram latency;  // request sent -> response head received
  // Upstream failures by reason (corral_upstream_failures_total).
  std::atomic<uint64_t> connect_failures{0};
  // TLS to the backend failed (handshake, or a certificate that does not verify).
  std::atomic<uint64_t> tls_failures{0};
  std::atomic<uint64_t> timeouts{0};
  std::atomic<uint64_t> resets{0};         // backend closed or reset mid-exchange
  std::atomic<uint64_t> client_aborts{0};  // client went away mid-exchange
  std::atomic<int64_t> in_flight{0};
  std::atomic<uint64_t> new_pins{0};
  std::atomic<uint64_t> retried_503{0};  // new users moved on after a 503
  // Users moved onto this backend, by reason (corral_remaps_total{pool,reason}).
  std::atomic<uint64_t> remaps_down{0};
  std::atomic<uint64_t> remaps_removed{0};
  std::atomic<uint64_t> remaps_admin{0};
  std::atomic<uint64_t> remaps_lag{0};  // issue 13: chain-aware moves
  std::atomic<uint64_t> remaps_fork{0};
  std::atomic<uint64_t> remaps_stale{0};
  std::atomic<uint64_t> remaps_regression{0};
  // Answers of this backend older than their user's last slot (issue 13): discarded and
  // re-sent elsewhere (corral_user_regressions_prevented_total), or forwarded because no
  // backend was at the user's slot or the request could not be re-sent
  // (corral_user_regressions_total).
  std::atomic<uint64_t> regressions_prevented{0};
  std::atomic<uint64_t> regressions_forwarded{0};
  // Open connections to the backend: pooled idle and busy ones (corral_connections).
  std::atomic<int64_t> upstream_open{0};
  // WebSocket tunnels (lb/net/tunnel): open now, bytes each way, close frames corral sent.
  std::atomic<int64_t> tunnels{0};
  std::atomic<uint64_t> tunnel_bytes_to_backend{0};
  std::atomic<uint64_t> tunnel_bytes_to_client{0};
  std::atomic<uint64_t> tunnel_closes_1001{0};  // going away: shutdown, idle timeout
  std::atomic<uint64_t> tunnel_closes_1012{0};  // service restart: the backend went away

  void count(int status) { responses.count(status); }
  void observe(uint64_t us) { latency.observe(us); }
};

// One thread's shard of a listener's counters.
struct alignas(64) ListenerShard {
  StatusCounters local;  // responses corral made itself (404, 405, 400, 503, ...)
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> rejected{0};       // over max_connections
  std::atomic<uint64_t> body_timeouts{0};  // request bodies past limits.body_timeout (408)
  std::atomic<uint64_t> send_timeouts{0};  // clients cut off by limits.send_timeout
  std::atomic<uint64_t> tls_failures{0};   // TLS listeners: failed handshakes and records
  // proxy_protocol listeners: how each connection's PROXY header ended
  // (corral_proxy_protocol_total{listener,result}).
  std::atomic<uint64_t> proxy_ok{0};       // a valid header: the connection was adopted
  std::atomic<uint64_t> proxy_bad{0};      // a garbled or unsupported header
  std::atomic<uint64_t> proxy_timeout{0};  // no complete header within the deadline
  std::atomic<uint64_t> proxy_closed{0};   // closed (or a socket error) before it ended
  std::atomic<int64_t> open{0};

  void count(int status) { local.count(status); }
};

// kStatShards lazily made shards of `Shard`, written by their own thread, summed by readers.
template <class Shard>
class Sharded {
 public:
  Sharded() = default;
  ~Sharded() {
    for (auto& s : shards_) delete s.load(std::memory_order_relaxed);
  }
  Sharded(const Sharded&) = delete;
  Sharded& operator=(const Sharded&) = delete;

  // The calling thread's shard, made on its first use.
  Shard& local() {
    std::atomic<Shard*>& slot = shards_[tls_stats_shard];
    if (Shard* s = slot.load(std::memory_order_acquire)) [[likely]]
      return *s;
    return make(slot);
  }

  // The sum of one field over all shards (relaxed reads).
  template <class T>
  T sum(std::atomic<T> Shard::*field) const {
    T n{};
    for_each([&](const Shard& s) { n += (s.*field).load(std::memory_order_relaxed); });
    return n;
  }

  // Calls fn(const Shard&) for every shard made so far.
  template <class F>
  void for_each(F&& fn) const {
    for (const auto& slot : shards_)
      if (const Shard* s = slot.load(std::memory_order_acquire)) fn(*s);
  }

 private:
  // Shard 0 may be shared by several threads: the first to publish wins.
  Shard& make(std::atomic<Shard*>& slot) {
    Shard* fresh = new Shard();
    Shard* expected = nullptr;
    if (slot.compare_exchange_strong(expected, fresh, std::memory_order_acq_rel)) return *fresh;
    delete fresh;
    return *expected;
  }

  std::array<std::atomic<Shard*>, kStatShards> shards_{};
};

// The sum of a set of status counters over shards.
template <class Shard>
CodeCounts sum_codes(const Sharded<Shard>& s, StatusCounters Shard::*field) {
  CodeCounts out{};
  s.for_each([&](const Shard& sh) {
    const StatusCounters& c = sh.*field;
    for (size_t i = 0; i < kStatusSlots; ++i)
      out[i] += c.by_code[i].load(std::memory_order_relaxed);
  });
  return out;
}

struct BackendStats : Sharded<BackendShard> {
  // On a line of their own, away from the shard pointers every write reads.
  alignas(64) std::atomic<BackendState> state{BackendState::up};
  // Highest chain slot seen from the backend (probe or X-Most-Recent-Checkpoint); 0 unknown.
  std::atomic<uint64_t> tip_slot{0};
  std::atomic<uint32_t> streak_503{0};  // consecutive 503s on live traffic
  // Set by health: the state is an operator's override (moves are counted as "admin").
  std::atomic<bool> admin{false};
  // Set by health when the backend returns to up (from down or an ejection) or is added
  // by a reload: slow start ramps its share of new users from here (monotonic ms, the
  // loops' uv_now clock); 0 = no ramp.
  std::atomic<uint64_t> ramp_start_ms{0};
  // Set by chain-aware health (issue 13): not none = the backend's pinned users move on
  // their next request, for this reason (lag past move_lag_slots, stale, fork); read by
  // the workers when they place a pinned user.
  std::atomic<MoveReason> evict{MoveReason::none};
  // Kupo: recent (checkpoint slot, header hash) points of live data responses, fork
  // evidence for the control loop's live rounds.
  LivePoints live_points;

  void raise_tip(uint64_t slot) {
    uint64_t cur = tip_slot.load(std::memory_order_relaxed);
    while (slot > cur && !tip_slot.compare_exchange_weak(cur, slot, std::memory_order_relaxed)) {
    }
  }

  // Responses with this status code, all shards.
  uint64_t code_count(int code) const;
  // Responses by status code, all shards.
  CodeCounts codes() const { return sum_codes(*this, &BackendShard::responses); }
  // The latency histogram, all shards.
  LatencySnapshot latency() const;
};

struct ListenerStats : Sharded<ListenerShard> {
  // Local responses by status code, all shards.
  CodeCounts codes() const { return sum_codes(*this, &ListenerShard::local); }
};

}  // namespace lb::net
