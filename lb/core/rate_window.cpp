// Rolling traffic figures (see rate_window.h for the contract).
#include "lb/core/rate_window.h"

#include <algorithm>

namespace lb {

void TrafficCounts::add(const TrafficCounts& o) {
  responses += o.responses;
  status_503 += o.status_503;
  for (size_t i = 0; i < kRateBuckets; ++i) buckets[i] += o.buckets[i];
}

uint64_t TrafficCounts::timed() const {
  uint64_t n = 0;
  for (uint64_t b : buckets) n += b;
  return n;
}

// One counter going backwards means all were made anew: taking `cur` whole keeps the
// counts consistent with each other (a bucket that happens to be higher than before was
// not "added to" the old one).
TrafficCounts counts_delta(const TrafficCounts& prev, const TrafficCounts& cur) {
  bool reset = cur.responses < prev.responses || cur.status_503 < prev.status_503;
  for (size_t i = 0; i < kRateBuckets && !reset; ++i) reset = cur.buckets[i] < prev.buckets[i];
  if (reset) return cur;
  TrafficCounts d;
  d.responses = cur.responses - prev.responses;
  d.status_503 = cur.status_503 - prev.status_503;
  for (size_t i = 0; i < kRateBuckets; ++i) d.buckets[i] = cur.buckets[i] - prev.buckets[i];
  return d;
}

std::optional<double> quantile_ms(const TrafficCounts& c, std::span<const double> upper_ms,
                                  double q) {
  const size_t used = std::min(upper_ms.size() + 1, kRateBuckets);
  uint64_t total = 0;
  for (size_t i = 0; i < used; ++i) total += c.buckets[i];
  if (total == 0) return std::nullopt;
  const double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(total);
  double below = 0;
  for (size_t i = 0; i < used; ++i) {
    const double in = static_cast<double>(c.buckets[i]);
    if (in == 0 || below + in < rank) {
      below += in;
      continue;
    }
    if (i >= upper_ms.size()) break;  // +Inf bucket: the last finite bound
    const double lo = i == 0 ? 0.0 : upper_ms[i - 1];
    return lo + (upper_ms[i] - lo) * (rank - below) / in;
  }
  return upper_ms.empty() ? std::nullopt : std::optional<double>(upper_ms.back());
}

TrafficFigures traffic_figures(const TrafficCounts& c, uint64_t span_ms,
                               std::span<const double> upper_ms) {
  TrafficFigures f;
  f.seconds = static_cast<double>(span_ms) / 1000.0;
  if (span_ms != 0) f.rps = static_cast<double>(c.responses) / f.seconds;
  if (c.responses != 0) f.rate_503 = std::min(1.0, static_cast<double>(c.status_503) / c.responses);
  f.p99_ms = quantile_ms(c, upper_ms, 0.99);
  return f;
}

TrafficCounts RateWindow::feed(uint64_t now_ms, const TrafficCounts& cumulative) {
  if (!primed_) {
    primed_ = true;
    last_ms_ = now_ms;
    last_ = cumulative;
    return TrafficCounts{};
  }
  Slot& s = ring_[next_];
  s.end_ms = std::max(now_ms, last_ms_ + 1);
  s.span_ms = s.end_ms - last_ms_;
  s.delta = counts_delta(last_, cumulative);
  next_ = (next_ + 1) % kRateWindowSlots;
  count_ = std::min(count_ + 1, kRateWindowSlots);
  last_ms_ = s.end_ms;
  last_ = cumulative;
  return s.delta;
}

// Walks back from the newest slot while slots end inside the window; a slot that began
// before the window's start still counts whole (at most one feed's worth of error).
TrafficFigures RateWindow::figures(uint64_t now_ms, std::span<const double> upper_ms) const {
  TrafficCounts sum;
  uint64_t span = 0;
  for (size_t k = 0; k < count_; ++k) {
    const Slot& s = ring_[(next_ + kRateWindowSlots - 1 - k) % kRateWindowSlots];
    if (s.end_ms + kRateWindowMs <= now_ms) break;
    sum.add(s.delta);
    span += s.span_ms;
  }
  return traffic_figures(sum, span, upper_ms);
}

void RateHistory::close_step() {
  ring_[next_] = open_;
  next_ = (next_ + 1) % kHistoryPoints;
  count_ = std::min(count_ + 1, kHistoryPoints);
  open_ = TrafficCounts{};
  step_start_ms_ += kHistoryStepMs;
}

void RateHistory::add(uint64_t now_ms, const TrafficCounts& delta) {
  if (!started_) {
    started_ = true;
    step_start_ms_ = now_ms;
  }
  // A gap longer than the whole history: the open step is closed like any other, then
  // the steps that would only push empty points through the ring are skipped, leaving
  // the last kHistoryPoints to close below (what closing one by one would give, without
  // a loop as long as the gap).
  if (now_ms >= step_start_ms_ + kHistoryStepMs * (kHistoryPoints + 1)) {
    close_step();
    const uint64_t skipped = (now_ms - step_start_ms_) / kHistoryStepMs - kHistoryPoints;
    step_start_ms_ += skipped * kHistoryStepMs;
  }
  while (now_ms >= step_start_ms_ + kHistoryStepMs) close_step();
  open_.add(delta);
}

std::vector<TrafficFigures> RateHistory::points(std::span<const double> upper_ms) const {
  std::vector<TrafficFigures> out;
  out.reserve(count_);
  for (size_t k = 0; k < count_; ++k)
    out.push_back(traffic_figures(ring_[(next_ + kHistoryPoints - count_ + k) % kHistoryPoints],
                                  kHistoryStepMs, upper_ms));
  return out;
}

}  // namespace lb
