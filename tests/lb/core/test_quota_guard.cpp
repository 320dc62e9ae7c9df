#include <doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "lb/core/quota_guard.h"

using namespace lb;

namespace {

// 2026-11-27 12:00:00 UTC and the day's last millisecond.
constexpr uint64_t kNoon = 1'795'780'800'000;
constexpr uint64_t kDayStart = kNoon - kNoon % kDayMs;
constexpr uint64_t kLastMs = kDayStart + kDayMs - 1;

QuotaLimits limits(double rps, double burst, uint64_t daily) {
  QuotaLimits l;
  l.rps = rps;
  l.burst = burst;
  l.daily = daily;
  return l;
}

// Admits at one instant until the first refusal; returns how many went through.
int admitted_burst(QuotaGuard& g, uint64_t now, uint64_t unix_ms, QuotaAdmission* last = nullptr) {
  int n = 0;
  for (int i = 0; i < 10'000; ++i) {
    QuotaAdmission a = g.admit(now, unix_ms);
    if (!a.ok()) {
      if (last) *last = a;
      break;
    }
    ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("quota: UTC day arithmetic") {
  CHECK(utc_day(kDayStart) == utc_day(kLastMs));
  CHECK(utc_day(kLastMs + 1) == utc_day(kDayStart) + 1);
  CHECK(ms_until_utc_midnight(kDayStart) == kDayMs);
  CHECK(ms_until_utc_midnight(kLastMs) == 1);
  CHECK(ms_until_utc_midnight(kNoon) == kDayMs / 2);
}

TEST_CASE("quota: the bucket lets a burst through, then refills at rps") {
  QuotaGuard g(limits(5, 10, 0), 1000);
  QuotaAdmission refused;
  CHECK(admitted_burst(g, 1000, kNoon, &refused) == 10);
  CHECK(refused.refusal == QuotaRefusal::rate);
  CHECK(refused.status == 429);
  CHECK(refused.retry_after_s == 1);  // one token is 200 ms away
  // 200 ms later one token is back, 199 ms is not enough.
  CHECK_FALSE(g.admit(1199, kNoon).ok());
  CHECK(g.admit(1200, kNoon).ok());
  CHECK_FALSE(g.admit(1200, kNoon).ok());
  // A long pause refills to burst, not beyond.
  CHECK(admitted_burst(g, 1'000'000, kNoon) == 10);
  // An older monotonic reading (another worker's cached clock) adds nothing.
  CHECK_FALSE(g.admit(999'000, kNoon).ok());
  QuotaSnapshot s = g.snapshot(1'000'000, kNoon);
  CHECK(s.refused_rate == 5);
  CHECK(s.used_today == 21);
}

TEST_CASE("quota: a slow bucket's Retry-After is the seconds until a token") {
  QuotaGuard g(limits(0.25, 1, 0), 0);  // one request every 4 s
  CHECK(g.admit(0, kNoon).ok());
  QuotaAdmission a = g.admit(0, kNoon);
  CHECK(a.refusal == QuotaRefusal::rate);
  CHECK(a.retry_after_s == 4);
  CHECK(g.admit(2500, kNoon).retry_after_s == 2);
}

TEST_CASE("quota: the daily quota counts admitted requests and resets at UTC midnight") {
  QuotaGuard g(limits(0, 0, 3), 0);
  for (int i = 0; i < 3; ++i) CHECK(g.admit(0, kNoon).ok());
  QuotaAdmission a = g.admit(0, kNoon);
  CHECK(a.refusal == QuotaRefusal::daily);
  CHECK(a.status == 429);
  CHECK(a.retry_after_s == kDayMs / 2 / 1000);
  CHECK(g.admit(0, kLastMs).refusal == QuotaRefusal::daily);
  CHECK(g.admit(0, kLastMs).retry_after_s == 1);
  // Refusals cost nothing: the count stays at the quota.
  CHECK(g.daily_count().second == 3);
  CHECK(g.snapshot(0, kLastMs).remaining_today == 0);
  // Midnight UTC: a new day, a new count.
  CHECK(g.admit(0, kLastMs + 1).ok());
  CHECK(g.daily_count() == std::pair<uint64_t, uint64_t>{utc_day(kLastMs + 1), 1});
  CHECK(g.snapshot(0, kLastMs + 1).remaining_today == 2);
}

TEST_CASE("quota: the daily refusal comes before the bucket, and spends no token") {
  QuotaGuard g(limits(1, 2, 1), 0);
  CHECK(g.admit(0, kNoon).ok());
  CHECK(g.admit(0, kNoon).refusal == QuotaRefusal::daily);
  // The next day the token the refusal did not take is still there.
  CHECK(g.admit(0, kLastMs + 1).ok());
  CHECK(g.admit(0, kLastMs + 1).refusal == QuotaRefusal::daily);
}

TEST_CASE("quota: the 80% warning comes once a day") {
  QuotaGuard g(limits(0, 0, 10), 0);
  int warnings = 0, at = 0;
  for (int i = 1; i <= 10; ++i)
    if (g.admit(0, kNoon).warn_80) {
      ++warnings;
      at = i;
    }
  CHECK(warnings == 1);
  CHECK(at == 8);
  int next_day = 0;
  for (int i = 1; i <= 10; ++i) next_day += g.admit(0, kLastMs + 1).warn_80 ? 1 : 0;
  CHECK(next_day == 1);
}

TEST_CASE("quota: a 429 cools the pool down 1 s, doubling to 60 s, reset by a success") {
  QuotaGuard g(limits(0, 0, 0), 0);
  uint64_t t = 10'000;
  QuotaTrip trip = g.upstream_status(429, t, kNoon);
  CHECK(trip.tripped);
  CHECK(trip.cooldown_ms == 1000);
  CHECK(g.cooling(t + 999, kNoon));
  CHECK_FALSE(g.cooling(t + 1000, kNoon));
  QuotaAdmission a = g.admit(t + 500, kNoon);
  CHECK(a.refusal == QuotaRefusal::cooldown_429);
  CHECK(a.status == 429);
  CHECK(a.retry_after_s == 1);
  // A 429 to a request sent before the cool-down neither extends nor doubles it.
  CHECK_FALSE(g.upstream_status(429, t + 600, kNoon).tripped);
  CHECK(g.admit(t + 1000, kNoon).ok());
  // Each further 429 doubles: 2, 4, 8, 16, 32, then 60 s at most.
  std::vector<uint64_t> got;
  for (int i = 0; i < 7; ++i) {
    t += 100'000;
    QuotaTrip x = g.upstream_status(429, t, kNoon);
    REQUIRE(x.tripped);
    got.push_back(x.cooldown_ms);
    CHECK_FALSE(g.admit(t + x.cooldown_ms - 1, kNoon).ok());
    CHECK(g.admit(t + x.cooldown_ms, kNoon).ok());
  }
  CHECK(got == std::vector<uint64_t>{2000, 4000, 8000, 16000, 32000, 60000, 60000});
  // A success outside a cool-down starts the back-off over.
  t += 100'000;
  g.upstream_status(200, t, kNoon);
  CHECK(g.upstream_status(429, t, kNoon).cooldown_ms == 1000);
  // ...but a success to an older request during one does not.
  g.upstream_status(200, t + 10, kNoon);
  CHECK(g.upstream_status(429, t + 5000, kNoon).cooldown_ms == 2000);
  QuotaSnapshot s = g.snapshot(t, kNoon);
  CHECK(s.upstream_429 == 11);
  CHECK(s.refused_cooldown == 8);
}

TEST_CASE("quota: a 402 closes the pool until UTC midnight, answered 402") {
  QuotaGuard g(limits(10, 500, 50'000), 0);
  CHECK(g.admit(0, kNoon).ok());
  QuotaTrip trip = g.upstream_status(402, 5, kNoon);
  CHECK(trip.tripped);
  CHECK(trip.cooldown_ms == kDayMs / 2);
  CHECK_FALSE(g.upstream_status(402, 6, kNoon).tripped);
  QuotaAdmission a = g.admit(1'000'000, kLastMs);
  CHECK(a.refusal == QuotaRefusal::cooldown_402);
  CHECK(a.status == 402);
  CHECK(a.retry_after_s == 1);
  QuotaSnapshot s = g.snapshot(1'000'000, kNoon);
  CHECK(s.cooldown_status == 402);
  CHECK(s.cooldown_until_unix_ms == kDayStart + kDayMs);
  CHECK(s.upstream_402 == 2);
  CHECK(g.cooling(1'000'000, kLastMs));
  CHECK_FALSE(g.cooling(1'000'000, kLastMs + 1));
  CHECK(g.admit(1'000'000, kLastMs + 1).ok());
  CHECK(g.snapshot(1'000'000, kLastMs + 1).cooldown_status == 0);
}

TEST_CASE("quota: a 418 (banned) pauses 60 s at once and is counted apart") {
  QuotaGuard g(limits(0, 0, 0), 0);
  QuotaTrip trip = g.upstream_status(418, 0, kNoon);
  CHECK(trip.tripped);
  CHECK(trip.cooldown_ms == 60'000);
  CHECK(g.admit(59'999, kNoon).status == 429);
  CHECK(g.admit(60'000, kNoon).ok());
  QuotaSnapshot s = g.snapshot(0, kNoon);
  CHECK(s.upstream_418 == 1);
  CHECK(s.upstream_429 == 0);
}

TEST_CASE("quota: a saved count is restored only on the same UTC day") {
  QuotaGuard g(limits(0, 0, 10), 0);
  CHECK_FALSE(g.restore_daily(utc_day(kNoon) - 1, 9, kNoon));
  CHECK(g.daily_count().second == 0);
  CHECK(g.restore_daily(utc_day(kNoon), 9, kNoon));
  CHECK(g.admit(0, kNoon).ok());
  QuotaAdmission a = g.admit(0, kNoon);
  CHECK(a.refusal == QuotaRefusal::daily);
  // Past 80% before the restart: no second warning.
  QuotaGuard h(limits(0, 0, 10), 0);
  h.restore_daily(utc_day(kNoon), 8, kNoon);
  CHECK_FALSE(h.admit(0, kNoon).warn_80);
}

TEST_CASE("quota: a reload keeps counts and clamps the bucket") {
  QuotaGuard g(limits(1, 100, 5), 0);
  for (int i = 0; i < 3; ++i) CHECK(g.admit(0, kNoon).ok());
  g.set_limits(limits(1, 2, 4));
  CHECK(g.admit(0, kNoon).ok());
  CHECK(g.admit(0, kNoon).refusal == QuotaRefusal::daily);
  g.set_limits(limits(1, 2, 10));
  CHECK(g.admit(0, kNoon).ok());
  CHECK(g.admit(0, kNoon).refusal == QuotaRefusal::rate);
}

TEST_CASE("quota: workers on many threads share one bucket exactly") {
  QuotaGuard g(limits(1, 1000, 0), 0);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i)
        if (g.admit(0, kNoon).ok()) ok.fetch_add(1);
    });
  for (auto& th : threads) th.join();
  CHECK(ok.load() == 1000);
}
