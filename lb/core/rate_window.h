#pragma once
// Rolling traffic figures for /status (issue 12): per backend, requests/s, the share of
// responses that were 503 and the p99 response time over the last minute; per pool, a
// history of the same figures over the last 5 minutes at 5 s steps. Fed about once a
// second with a backend's cumulative counters (the ones /metrics exposes), so the request
// path pays nothing for it. Pure: time comes in as now_ms (monotonic milliseconds), and the
// memory of a window or a history is fixed by the constants below, whatever the traffic.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace lb {

// Latency histogram buckets a count can hold (the last one used is +Inf).
inline constexpr size_t kRateBuckets = 20;
inline constexpr uint64_t kRateWindowMs = 60'000;
// Feeds a window remembers: a minute at one a second, with slack for timer jitter. Fed
// faster, the window covers less than a minute (and says so in `seconds`).
inline constexpr size_t kRateWindowSlots = 64;
inline constexpr uint64_t kHistoryStepMs = 5'000;
inline constexpr size_t kHistoryPoints = 60;

// A backend's counts: cumulative since its counters were made (a sample), or over an
// interval (a delta). buckets[i] counts the responses whose time fell in bucket i (not
// cumulative over the bounds, unlike Prometheus' le series).
struct TrafficCounts {
  uint64_t responses = 0;
  uint64_t status_503 = 0;
  std::array<uint64_t, kRateBuckets> buckets{};

  void add(const TrafficCounts& o);
  uint64_t timed() const;  // responses in the histogram
};

// What /status shows for a span of time.
struct TrafficFigures {
  double seconds = 0;  // the span the figures cover
  double rps = 0;
  double rate_503 = 0;           // 0..1; 0 without responses
  std::optional<double> p99_ms;  // none without timed responses
};

// What was added between two cumulative samples. A counter lower than before means the
// counters were made anew (a backend removed and added again): then everything in `cur`
// is new, and no figure goes negative.
TrafficCounts counts_delta(const TrafficCounts& prev, const TrafficCounts& cur);

// The q-quantile (0 < q <= 1) of a histogram in milliseconds, interpolated linearly within
// its bucket as Prometheus' histogram_quantile does: bucket i spans (upper_ms[i-1],
// upper_ms[i]] (the first from 0); a quantile in the +Inf bucket (i == upper_ms.size())
// is the last finite bound. None when the histogram is empty.
std::optional<double> quantile_ms(const TrafficCounts& c, std::span<const double> upper_ms,
                                  double q);

// The figures of counts observed over span_ms (rps 0 when span_ms is 0).
TrafficFigures traffic_figures(const TrafficCounts& c, uint64_t span_ms,
                               std::span<const double> upper_ms);

// One backend's last minute.
class RateWindow {
 public:
  // Takes the backend's cumulative counters as of now_ms and returns what was added since
  // the previous feed. The first feed only sets the baseline and returns zeros, so a
  // backend seen for the first time with a long history shows no burst. A clock that did
  // not move is treated as 1 ms so a span is never zero.
  TrafficCounts feed(uint64_t now_ms, const TrafficCounts& cumulative);

  // The figures over the feeds of the last kRateWindowMs up to now_ms; `seconds` is the
  // span they cover (less than 60 right after the first feed).
  TrafficFigures figures(uint64_t now_ms, std::span<const double> upper_ms) const;

 private:
  struct Slot {
    uint64_t end_ms = 0;
    uint64_t span_ms = 0;
    TrafficCounts delta;
  };
  std::array<Slot, kRateWindowSlots> ring_{};
  size_t next_ = 0;   // where the next slot goes
  size_t count_ = 0;  // slots in use
  bool primed_ = false;
  uint64_t last_ms_ = 0;
  TrafficCounts last_;
};

// One pool's last 5 minutes at kHistoryStepMs steps.
class RateHistory {
 public:
  // Adds counts observed up to now_ms (the sum of the pool's backends' deltas from one
  // round of feeds). Steps start at the first add; every step that ended by now_ms is
  // closed first (a gap leaves empty steps), and the oldest beyond kHistoryPoints go.
  void add(uint64_t now_ms, const TrafficCounts& delta);

  // The closed steps, oldest first, at most kHistoryPoints.
  std::vector<TrafficFigures> points(std::span<const double> upper_ms) const;

 private:
  void close_step();
  std::array<TrafficCounts, kHistoryPoints> ring_{};
  size_t next_ = 0;
  size_t count_ = 0;
  bool started_ = false;
  uint64_t step_start_ms_ = 0;
  TrafficCounts open_;  // the step in progress
};

}  // namespace lb
