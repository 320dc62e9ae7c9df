// Sampling the backends' counters for /status (see traffic_sampler.h for the contract).
#include "lb/admin/traffic_sampler.h"

#include <array>
#include <set>

namespace lb::admin {
namespace {

static_assert(net::kLatencyBucketsUs.size() + 1 <= kRateBuckets,
              "the rolling window must hold every latency bucket, +Inf included");

constexpr std::array<double, net::kLatencyBucketsUs.size()> make_bounds() {
  std::array<double, net::kLatencyBucketsUs.size()> out{};
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<double>(net::kLatencyBucketsUs[i]) / 1000.0;
  return out;
}
constexpr auto kBoundsMs = make_bounds();

}  // namespace

std::span<const double> latency_bounds_ms() { return kBoundsMs; }

// Sums the per-worker shards: all status codes once (for the total and the 503s) and the
// histogram. No lock; a sample is a snapshot like a scrape.
TrafficCounts read_counts(const net::BackendStats& s) {
  TrafficCounts c;
  const net::CodeCounts codes = s.codes();
  for (uint64_t n : codes) c.responses += n;
  c.status_503 = codes[503];
  const net::LatencySnapshot lat = s.latency();
  for (size_t i = 0; i < lat.buckets.size(); ++i) c.buckets[i] = lat.buckets[i];
  return c;
}

void TrafficSampler::sample(const net::Runtime& rt, uint64_t now_ms) {
  std::set<const net::BackendStats*> seen;
  std::set<std::string> pools;
  for (const net::RuntimePool& p : rt.pools) {
    TrafficCounts sum;
    for (const net::RuntimeBackend& b : p.backends) {
      seen.insert(b.stats.get());
      Window& w = windows_[b.stats.get()];
      w.keep = b.stats;
      sum.add(w.window.feed(now_ms, read_counts(*b.stats)));
    }
    histories_[p.name].add(now_ms, sum);
    pools.insert(p.name);
  }
  std::erase_if(windows_, [&](const auto& kv) { return !seen.contains(kv.first); });
  std::erase_if(histories_, [&](const auto& kv) { return !pools.contains(kv.first); });
}

std::optional<TrafficFigures> TrafficSampler::backend(const net::BackendStats& stats,
                                                      uint64_t now_ms) const {
  auto it = windows_.find(&stats);
  if (it == windows_.end()) return std::nullopt;
  return it->second.window.figures(now_ms, latency_bounds_ms());
}

std::vector<TrafficFigures> TrafficSampler::history(const std::string& pool) const {
  auto it = histories_.find(pool);
  if (it == histories_.end()) return {};
  return it->second.points(latency_bounds_ms());
}

}  // namespace lb::admin
