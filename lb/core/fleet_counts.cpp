// The fleet's pin counts (see fleet_counts.h for the contract).
#include "lb/core/fleet_counts.h"

#include <charconv>

namespace lb {

FleetCounts::FleetCounts() : others_(new std::atomic<uint64_t>[kMaxBackends]()) {}

uint64_t FleetCounts::others(BackendRef ref) const {
  if (ref >= kMaxBackends) return 0;
  return others_[ref].load(std::memory_order_relaxed);
}

void FleetCounts::replace(std::span<const std::pair<BackendRef, uint64_t>> counts) {
  // Sum into a scratch copy first, so that no reader sees a half-summed value.
  std::vector<uint64_t> next(kMaxBackends, 0);
  for (const auto& [ref, n] : counts)
    if (ref < kMaxBackends) next[ref] += n;
  for (BackendRef r = 0; r < kMaxBackends; ++r)
    others_[r].store(next[r], std::memory_order_relaxed);
}

uint64_t FleetCounts::live_instances() const { return live_.load(std::memory_order_relaxed); }

void FleetCounts::set_live_instances(uint64_t n) {
  live_.store(n < 1 ? 1 : n, std::memory_order_relaxed);
}

void FleetCounts::clear() {
  for (BackendRef r = 0; r < kMaxBackends; ++r) others_[r].store(0, std::memory_order_relaxed);
}

std::string fleet_count_name(std::string_view pool, std::string_view backend) {
  std::string out;
  out.reserve(pool.size() + 1 + backend.size());
  out.append(pool).push_back('/');
  out.append(backend);
  return out;
}

std::optional<FleetReply> parse_fleet_reply(
    int64_t live, std::span<const std::string_view> pairs,
    const std::function<std::optional<BackendRef>(std::string_view)>& resolve) {
  if (live < 1 || pairs.size() % 2 != 0) return std::nullopt;
  FleetReply out;
  out.live_instances = static_cast<uint64_t>(live);
  for (size_t i = 0; i < pairs.size(); i += 2) {
    std::string_view text = pairs[i + 1];
    uint64_t n = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
    std::optional<BackendRef> ref = resolve(pairs[i]);
    if (!ref || *ref >= kMaxBackends) {
      ++out.unknown;
      continue;
    }
    bool merged = false;
    for (auto& [r, sum] : out.counts)
      if (r == *ref) {
        sum += n;
        merged = true;
        break;
      }
    if (!merged) out.counts.emplace_back(*ref, n);
  }
  return out;
}

}  // namespace lb
