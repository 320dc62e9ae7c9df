#pragma once
// Live counters of one backend (or one listener), shared by every worker and kept across
// reloads: the registry hands out one per name. Relaxed atomics: counters are read only
// by the admin listener, which needs no ordering with the data path.
#include <array>
#include <atomic>
#include <cstdint>

#include "lb/core/backend_state.h"

namespace lb::net {

// Response-time buckets in milliseconds (Prometheus "le" bounds); the last is +Inf.
inline constexpr std::array<uint64_t, 12> kLatencyBucketsMs = {5,   10,   25,   50,   100,   250,
                                                               500, 1000, 2500, 5000, 10000, 30000};

struct LatencyHistogram {
  std::array<std::atomic<uint64_t>, kLatencyBucketsMs.size() + 1> buckets{};
  std::atomic<uint64_t> sum_us{0};
  void observe(uint64_t us);
};

struct StatusCounters {
  // Index = status code 100..599; anything else lands on 0.
  std::array<std::atomic<uint64_t>, 600> by_code{};
  void count(int status) {
    by_code[status >= 100 && status < 600 ? status : 0].fetch_add(1, std::memory_order_relaxed);
  }
};

struct BackendStats {
  std::atomic<BackendState> state{BackendState::up};
  StatusCounters responses;  // as answered by the backend, or 502/504 made for it
  LatencyHistogram latency;  // request sent -> response head received
  std::atomic<uint64_t> connect_failures{0};
  // TLS to the backend failed (handshake, or a certificate that does not verify).
  std::atomic<uint64_t> tls_failures{0};
  std::atomic<uint64_t> timeouts{0};
  std::atomic<uint64_t> resets{0};         // backend closed or reset mid-exchange
  std::atomic<uint64_t> client_aborts{0};  // client went away mid-exchange
  std::atomic<int64_t> in_flight{0};
  std::atomic<uint64_t> new_pins{0};
  // WebSocket tunnels (lb/net/tunnel): open now, bytes each way, close frames corral sent.
  std::atomic<int64_t> tunnels{0};
  std::atomic<uint64_t> tunnel_bytes_to_backend{0};
  std::atomic<uint64_t> tunnel_bytes_to_client{0};
  std::atomic<uint64_t> tunnel_closes_1001{0};  // going away: shutdown, idle timeout
  std::atomic<uint64_t> tunnel_closes_1012{0};  // service restart: the backend went away
  // Highest chain slot seen from the backend (probe or X-Most-Recent-Checkpoint); 0 unknown.
  std::atomic<uint64_t> tip_slot{0};
  std::atomic<uint32_t> streak_503{0};   // consecutive 503s on live traffic
  std::atomic<uint64_t> retried_503{0};  // new users moved on after a 503
  // Set by health: the state is an operator's override (moves are counted as "admin").
  std::atomic<bool> admin{false};
  // Set by health when the backend returns to up (from down or an ejection) or is added
  // by a reload: slow start ramps its share of new users from here (monotonic ms, the
  // loops' uv_now clock); 0 = no ramp.
  std::atomic<uint64_t> ramp_start_ms{0};

  void raise_tip(uint64_t slot) {
    uint64_t cur = tip_slot.load(std::memory_order_relaxed);
    while (slot > cur && !tip_slot.compare_exchange_weak(cur, slot, std::memory_order_relaxed)) {
    }
  }
};

struct ListenerStats {
  StatusCounters local;  // responses corral made itself (404, 405, 400, 503, ...)
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> rejected{0};       // over max_connections
  std::atomic<uint64_t> body_timeouts{0};  // request bodies past limits.body_timeout (408)
  std::atomic<uint64_t> send_timeouts{0};  // clients cut off by limits.send_timeout
  std::atomic<uint64_t> tls_failures{0};   // TLS listeners: failed handshakes and records
  std::atomic<int64_t> open{0};
};

}  // namespace lb::net
