#pragma once
// The per-backend last minute and per-pool 5-minute history that /status shows (issue 12),
// kept by the admin listener on the control loop: once a second it reads every configured
// backend's cumulative counters (the summed ones /metrics reads too, so the request path
// takes no lock and does no extra work) and feeds them to lb::RateWindow / RateHistory.
// Control thread only.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lb/core/backend_ref.h"
#include "lb/core/rate_window.h"
#include "lb/net/backend_stats.h"
#include "lb/net/runtime.h"

namespace lb::admin {

// The response-time bucket bounds of net::BackendStats, in milliseconds.
std::span<const double> latency_bounds_ms();

// A backend's cumulative counters as the rolling window takes them: all responses, the
// 503s among them, and the latency histogram.
TrafficCounts read_counts(const net::BackendStats& s);

class TrafficSampler {
 public:
  // Feeds every backend of rt at now_ms and adds each pool's sum of the deltas to its
  // history. Backends and pools no longer configured are forgotten (one that comes back
  // starts a fresh window).
  void sample(const net::Runtime& rt, uint64_t now_ms);

  // A backend's last minute as of now_ms, by its counters (RuntimeBackend::stats); nullopt
  // before its first sample.
  std::optional<TrafficFigures> backend(const net::BackendStats& stats, uint64_t now_ms) const;

  // A pool's closed 5 s steps, oldest first (empty before the first step closed).
  std::vector<TrafficFigures> history(const std::string& pool) const;

 private:
  // Keyed by the counters, not the BackendRef: every backend past the registry's
  // capacity gets ref kMaxBackends, but each has counters of its own. `keep` holds them
  // while the window lives, so the address cannot be reused by another backend's.
  struct Window {
    std::shared_ptr<const net::BackendStats> keep;
    RateWindow window;
  };
  std::map<const net::BackendStats*, Window> windows_;
  std::map<std::string, RateHistory> histories_;
};

}  // namespace lb::admin
