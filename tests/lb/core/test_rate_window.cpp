#include <doctest.h>

#include <array>
#include <cstdint>

#include "lb/core/rate_window.h"

namespace {

using lb::RateHistory;
using lb::RateWindow;
using lb::TrafficCounts;

// The histogram bounds of corral_request_duration_seconds, in ms (+Inf after the last).
constexpr std::array<double, 17> kBounds = {0.1, 0.25, 0.5, 1,    2.5,  5,    10,    25,   50,
                                            100, 250,  500, 1000, 2500, 5000, 10000, 30000};
constexpr size_t kInf = kBounds.size();
constexpr size_t b10_25 = 7;     // (10, 25] ms
constexpr size_t b50_100 = 9;    // (50, 100] ms
constexpr size_t b0_01 = 0;      // (0, 0.1] ms
constexpr size_t b250_500 = 11;  // (250, 500] ms

TrafficCounts counts(uint64_t responses, uint64_t s503, size_t bucket, uint64_t timed) {
  TrafficCounts c;
  c.responses = responses;
  c.status_503 = s503;
  c.buckets[bucket] = timed;
  return c;
}

}  // namespace

TEST_CASE("rate window: quantile interpolates within its bucket like histogram_quantile") {
  CHECK_FALSE(lb::quantile_ms(TrafficCounts{}, kBounds, 0.99).has_value());
  // All 100 in (10, 25]: rank 99 of 100 lies 99% into the bucket.
  auto p = lb::quantile_ms(counts(100, 0, b10_25, 100), kBounds, 0.99);
  REQUIRE(p.has_value());
  CHECK(*p == doctest::Approx(10 + 15 * 0.99));
  // 98 fast ones and 2 in (50, 100]: rank 99 is the first of the two slow ones, half way.
  TrafficCounts c = counts(100, 0, b0_01, 98);
  c.buckets[b50_100] = 2;
  p = lb::quantile_ms(c, kBounds, 0.99);
  REQUIRE(p.has_value());
  CHECK(*p == doctest::Approx(75.0));
  // The median of the same lies in the first bucket, from 0.
  CHECK(*lb::quantile_ms(c, kBounds, 0.5) == doctest::Approx(0.1 * 50 / 98));
  // Beyond the last bound: the last finite bound, not infinity.
  CHECK(*lb::quantile_ms(counts(10, 0, kInf, 10), kBounds, 0.99) == doctest::Approx(30000));
}

TEST_CASE("rate window: counters that go backwards count as new, never negative") {
  TrafficCounts prev = counts(1000, 100, b10_25, 1000);
  TrafficCounts cur = counts(1010, 103, b10_25, 1010);
  TrafficCounts d = lb::counts_delta(prev, cur);
  CHECK(d.responses == 10);
  CHECK(d.status_503 == 3);
  CHECK(d.buckets[b10_25] == 10);
  // Removed and added again: fresh counters, lower than before.
  TrafficCounts fresh = counts(5, 1, b10_25, 5);
  fresh.buckets[b50_100] = 0;
  d = lb::counts_delta(cur, fresh);
  CHECK(d.responses == 5);
  CHECK(d.status_503 == 1);
  CHECK(d.buckets[b10_25] == 5);
  // One bucket going back is enough to take the whole sample as new.
  TrafficCounts odd = cur;
  odd.responses += 4;
  odd.buckets[b10_25] = 3;
  odd.buckets[b50_100] = 1;
  d = lb::counts_delta(cur, odd);
  CHECK(d.responses == odd.responses);
  CHECK(d.buckets[b50_100] == 1);

  RateWindow w;
  w.feed(0, cur);
  w.feed(1000, fresh);
  auto f = w.figures(1000, kBounds);
  CHECK(f.rps == doctest::Approx(5.0));
  CHECK(f.rate_503 == doctest::Approx(0.2));
}

TEST_CASE("rate window: a minute of per-second feeds gives rate, 503 share and p99") {
  RateWindow w;
  TrafficCounts cum = counts(50'000, 0, b10_25, 50'000);  // history before we looked
  CHECK(w.feed(0, cum).responses == 0);                   // baseline only
  auto f = w.figures(0, kBounds);
  CHECK(f.rps == 0);
  CHECK(f.seconds == 0);
  CHECK_FALSE(f.p99_ms.has_value());
  // 30 s of 20 requests a second, 2 of them 503.
  for (uint64_t t = 1; t <= 30; ++t) {
    cum.responses += 20;
    cum.status_503 += 2;
    cum.buckets[b10_25] += 20;
    TrafficCounts d = w.feed(t * 1000, cum);
    CHECK(d.responses == 20);
  }
  f = w.figures(30'000, kBounds);
  CHECK(f.seconds == doctest::Approx(30.0));
  CHECK(f.rps == doctest::Approx(20.0));
  CHECK(f.rate_503 == doctest::Approx(0.1));
  REQUIRE(f.p99_ms.has_value());
  CHECK(*f.p99_ms == doctest::Approx(24.85));
  // 60 s more at 5 a second, all slow: the first 30 s have left the window.
  for (uint64_t t = 31; t <= 90; ++t) {
    cum.responses += 5;
    cum.buckets[b250_500] += 5;
    w.feed(t * 1000, cum);
  }
  f = w.figures(90'000, kBounds);
  CHECK(f.seconds == doctest::Approx(60.0));
  CHECK(f.rps == doctest::Approx(5.0));
  CHECK(f.rate_503 == 0);
  CHECK(*f.p99_ms > 250);
  // Quiet feeds: the rate falls to 0 and p99 becomes unknown once the minute passed.
  for (uint64_t t = 91; t <= 150; ++t) w.feed(t * 1000, cum);
  f = w.figures(150'000, kBounds);
  CHECK(f.rps == 0);
  CHECK_FALSE(f.p99_ms.has_value());
  // A burst of 100 in one feed counts over the window's span: the last 60 feeds (a second
  // each), one of which carried the 100.
  cum.responses += 100;
  w.feed(151'000, cum);
  CHECK(w.figures(151'000, kBounds).rps == doctest::Approx(100.0 / 60));
  // Then no feed at all for a minute: nothing is left in the window.
  CHECK(w.figures(211'000, kBounds).rps == 0);
}

TEST_CASE("rate window: memory is bounded whatever the feed rate") {
  RateWindow w;
  TrafficCounts cum;
  for (uint64_t t = 0; t <= 100'000; t += 10) {  // a feed every 10 ms for 100 s
    cum.responses += 1;
    w.feed(t, cum);
  }
  auto f = w.figures(100'000, kBounds);
  // Only the last kRateWindowSlots feeds are kept, and the span says so.
  CHECK(f.seconds == doctest::Approx(lb::kRateWindowSlots * 0.010));
  CHECK(f.rps == doctest::Approx(100.0));
  // A clock that stands still is never a zero span.
  RateWindow still;
  still.feed(5, cum);
  cum.responses += 3;
  still.feed(5, cum);
  CHECK(still.figures(5, kBounds).rps > 0);
}

TEST_CASE("rate history: one add after a gap gives what adds every second through it give") {
  // Traffic in a closed step and in the open one, then a gap of `steps` steps: shorter
  // than the history (the open step stays, as the oldest point), or longer (it is pushed out).
  const uint64_t n = lb::kHistoryPoints;
  for (uint64_t steps : {uint64_t{3}, n - 1, n, n + 1, n + 2, 5 * n}) {
    CAPTURE(steps);
    RateHistory gap, steady;
    for (uint64_t t = 0; t < 7; ++t) {
      gap.add(t * 1000, counts(3, 1, b0_01, 3));
      steady.add(t * 1000, counts(3, 1, b0_01, 3));
    }
    const uint64_t end = 6'000 + steps * lb::kHistoryStepMs;
    for (uint64_t t = 7'000; t < end; t += 1000) steady.add(t, TrafficCounts{});
    gap.add(end, counts(2, 0, b0_01, 2));
    steady.add(end, counts(2, 0, b0_01, 2));
    auto a = gap.points(kBounds), b = steady.points(kBounds);
    REQUIRE(a.size() == b.size());
    CHECK(a.size() == std::min<uint64_t>(n, steps + 1));
    for (size_t i = 0; i < a.size(); ++i) {
      CAPTURE(i);
      CHECK(a[i].rps == doctest::Approx(b[i].rps));
      CHECK(a[i].rate_503 == doctest::Approx(b[i].rate_503));
    }
    // The open step's 2 s of traffic (6 requests, 2 of them 503) while it is still shown.
    if (steps < n) CHECK(a[1].rps == doctest::Approx(6.0 / 5));
  }
}

TEST_CASE("rate history: 5 s steps over 5 minutes, pool sums with p99 from summed buckets") {
  RateHistory h;
  CHECK(h.points(kBounds).empty());
  // Two backends each second: a fast one at 10/s and a slow one at 1/s with 503s.
  auto second = [&](uint64_t t) {
    TrafficCounts pool = counts(10, 0, b0_01, 10);
    TrafficCounts slow = counts(1, 1, b250_500, 1);
    pool.add(slow);
    h.add(t * 1000, pool);
  };
  for (uint64_t t = 0; t < 12; ++t) second(t);
  auto pts = h.points(kBounds);
  REQUIRE(pts.size() == 2);  // fewer right after start; the open step is not shown
  CHECK(pts[0].rps == doctest::Approx(11.0));
  CHECK(pts[0].rate_503 == doctest::Approx(1.0 / 11));
  // 55 samples, 5 slow: rank 54.45 lies in the slow bucket.
  REQUIRE(pts[0].p99_ms.has_value());
  CHECK(*pts[0].p99_ms > 250);
  for (uint64_t t = 12; t < 400; ++t) second(t);
  pts = h.points(kBounds);
  CHECK(pts.size() == lb::kHistoryPoints);
  for (const auto& p : pts) CHECK(p.rps == doctest::Approx(11.0));
  // A quiet minute: the newest points are empty, with no p99; older ones still count.
  for (uint64_t t = 400; t < 460; ++t) h.add(t * 1000, TrafficCounts{});
  pts = h.points(kBounds);
  CHECK(pts.back().rps == 0);
  CHECK_FALSE(pts.back().p99_ms.has_value());
  CHECK(pts.front().rps == doctest::Approx(11.0));
  // A gap longer than the history: every point is empty, and there are still 60.
  h.add(10'000'000, counts(7, 0, b0_01, 7));
  pts = h.points(kBounds);
  CHECK(pts.size() == lb::kHistoryPoints);
  for (const auto& p : pts) CHECK(p.rps == 0);
  h.add(10'005'000, TrafficCounts{});
  CHECK(h.points(kBounds).back().rps == doctest::Approx(7.0 / 5));
}
