#include "lb/net/backend_stats.h"

namespace lb::net {

void LatencyHistogram::observe(uint64_t us) {
  size_t i = 0;
  while (i < kLatencyBucketsMs.size() && us > kLatencyBucketsMs[i] * 1000) ++i;
  buckets[i].fetch_add(1, std::memory_order_relaxed);
  sum_us.fetch_add(us, std::memory_order_relaxed);
}

}  // namespace lb::net
