#include "lb/net/backend_stats.h"

#include <algorithm>

namespace lb::net {

size_t latency_bucket(uint64_t us) {
  // Bounds are inclusive ("le"): the first bound not below us.
  return static_cast<size_t>(
      std::lower_bound(kLatencyBucketsUs.begin(), kLatencyBucketsUs.end(), us) -
      kLatencyBucketsUs.begin());
}

void LatencyHistogram::observe(uint64_t us) {
  buckets[latency_bucket(us)].fetch_add(1, std::memory_order_relaxed);
  sum_us.fetch_add(us, std::memory_order_relaxed);
}

uint64_t LatencySnapshot::count() const {
  uint64_t n = 0;
  for (uint64_t b : buckets) n += b;
  return n;
}

uint64_t BackendStats::code_count(int code) const {
  const size_t i = code >= 100 && code < 600 ? static_cast<size_t>(code) : 0;
  uint64_t n = 0;
  for_each(
      [&](const BackendShard& s) { n += s.responses.by_code[i].load(std::memory_order_relaxed); });
  return n;
}

LatencySnapshot BackendStats::latency() const {
  LatencySnapshot out;
  for_each([&](const BackendShard& s) {
    for (size_t i = 0; i < out.buckets.size(); ++i)
      out.buckets[i] += s.latency.buckets[i].load(std::memory_order_relaxed);
    out.sum_us += s.latency.sum_us.load(std::memory_order_relaxed);
  });
  return out;
}

}  // namespace lb::net
