// QuotaGuard's shared mode (issue 15): leases from the store, and the divided fallback.
#include <doctest.h>

#include "lb/core/quota_guard.h"

using namespace lb;

namespace {
constexpr uint64_t kNoon = 1'795'780'800'000;  // 2026-11-27 12:00:00 UTC
QuotaLimits limits(double rps, double burst, uint64_t daily) {
  QuotaLimits l;
  l.rps = rps;
  l.burst = burst;
  l.daily = daily;
  return l;
}
}  // namespace

TEST_CASE("quota lease: lease_size is rps/10 clamped to 1..50") {
  CHECK(QuotaGuard(limits(10, 500, 0), 0).lease_size() == 1);
  CHECK(QuotaGuard(limits(100, 500, 0), 0).lease_size() == 10);
  CHECK(QuotaGuard(limits(5, 5, 0), 0).lease_size() == 1);
  CHECK(QuotaGuard(limits(10'000, 500, 0), 0).lease_size() == 50);
  CHECK(QuotaGuard(limits(0, 0, 1000), 0).lease_size() == 50);
}

TEST_CASE("quota lease: an empty lease refuses, and exactly one caller is asked to take") {
  QuotaGuard g(limits(100, 500, 0), 0);
  g.set_shared(true);
  CHECK(g.shared());
  QuotaAdmission a = g.admit(10, kNoon);
  CHECK(a.refusal == QuotaRefusal::rate);
  CHECK(a.status == 429);
  CHECK(a.retry_after_s == 1);
  CHECK(a.need_lease);
  QuotaAdmission b = g.admit(11, kNoon);  // the take is in flight: refused, not asked again
  CHECK_FALSE(b.ok());
  CHECK_FALSE(b.need_lease);
  CHECK(g.snapshot(11, kNoon).refused_rate == 2);

  g.grant(10, 10, QuotaRefusal::none, 0, 20, kNoon);
  int ok = 0, asked = 0;
  for (int i = 0; i < 10; ++i) {
    QuotaAdmission c = g.admit(21, kNoon);
    ok += c.ok();
    asked += c.need_lease;
  }
  CHECK(ok == 10);
  CHECK(asked == 1);                     // below half of the lease: asked once while the take runs
  CHECK_FALSE(g.admit(22, kNoon).ok());  // spent, and the take has not answered
  QuotaSnapshot s = g.snapshot(22, kNoon);
  CHECK(s.shared);
  CHECK(s.lease == doctest::Approx(0));
  CHECK(s.used_today == 10);  // the store's fleet-wide count, the lease included
}

TEST_CASE("quota lease: the local bucket plays no part in shared mode") {
  QuotaGuard g(limits(10, 2, 0), 0);  // a local bucket of 2
  g.set_shared(true);
  CHECK(g.admit(0, kNoon).need_lease);
  g.grant(5, 5, QuotaRefusal::none, 0, 0, kNoon);
  int ok = 0;
  for (int i = 0; i < 5; ++i) ok += g.admit(0, kNoon).ok();
  CHECK(ok == 5);  // more than the local burst: the store granted them
}

TEST_CASE("quota lease: a store refusal holds for its retry time without asking again") {
  QuotaGuard g(limits(10, 500, 1000), 0);
  g.set_shared(true);
  REQUIRE(g.admit(0, kNoon).need_lease);
  g.grant(0, 1000, QuotaRefusal::daily, 5'000, 100, kNoon);
  QuotaAdmission a = g.admit(200, kNoon);
  CHECK(a.refusal == QuotaRefusal::daily);
  CHECK(a.retry_after_s == 5);
  CHECK_FALSE(a.need_lease);
  CHECK(a.used_today == 1000);
  CHECK(g.snapshot(200, kNoon).refused_daily == 1);
  QuotaAdmission b = g.admit(5'100, kNoon);  // the hold is over: ask again
  CHECK(b.refusal == QuotaRefusal::rate);
  CHECK(b.need_lease);
  // A cool-down answer from the store refuses with its own status.
  g.grant(0, 1000, QuotaRefusal::cooldown_402, 60'000, 5'200, kNoon);
  QuotaAdmission c = g.admit(5'300, kNoon);
  CHECK(c.refusal == QuotaRefusal::cooldown_402);
  CHECK(c.status == 402);
}

TEST_CASE("quota lease: a failed take lets the next request ask again") {
  QuotaGuard g(limits(100, 500, 0), 0);
  g.set_shared(true);
  REQUIRE(g.admit(0, kNoon).need_lease);
  CHECK_FALSE(g.admit(1, kNoon).need_lease);
  g.lease_failed();
  CHECK(g.admit(2, kNoon).need_lease);
}

TEST_CASE("quota lease: local cool-downs still apply in shared mode") {
  QuotaGuard g(limits(100, 500, 0), 0);
  g.set_shared(true);
  g.admit(0, kNoon);
  g.grant(10, 1, QuotaRefusal::none, 0, 0, kNoon);
  g.upstream_status(429, 10, kNoon);
  QuotaAdmission a = g.admit(20, kNoon);
  CHECK(a.refusal == QuotaRefusal::cooldown_429);
  CHECK(g.snapshot(20, kNoon).lease == doctest::Approx(10));  // nothing spent
}

TEST_CASE("quota lease: leaving shared mode drops the lease; a late grant is ignored") {
  QuotaGuard g(limits(10, 4, 0), 0);
  g.set_shared(true);
  REQUIRE(g.admit(0, kNoon).need_lease);
  g.set_shared(false);
  g.grant(50, 50, QuotaRefusal::none, 0, 1, kNoon);  // answered after the store went down
  QuotaSnapshot s = g.snapshot(1, kNoon);
  CHECK_FALSE(s.shared);
  CHECK(s.lease == doctest::Approx(0));
  int ok = 0;
  for (int i = 0; i < 100; ++i) ok += g.admit(1, kNoon).ok();
  CHECK(ok == 4);  // the local bucket again
}

TEST_CASE("quota lease: the fallback divides the local bucket and daily limit") {
  QuotaGuard g(limits(10, 40, 100), 0);
  g.set_fallback_divisor(4);  // four live instances when the store went down
  int ok = 0;
  for (int i = 0; i < 100; ++i) ok += g.admit(0, kNoon).ok();
  CHECK(ok == 10);  // burst 40 / 4
  // Refill at 10/4 = 2.5 tokens a second: 1 s later, 2 more.
  ok = 0;
  for (int i = 0; i < 100; ++i) ok += g.admit(1'000, kNoon).ok();
  CHECK(ok == 2);
  // The daily limit: 100 / 4 = 25.
  for (uint64_t t = 2'000; t < 100'000; t += 1'000) g.admit(t, kNoon);
  QuotaAdmission a = g.admit(200'000, kNoon);
  CHECK(a.refusal == QuotaRefusal::daily);
  CHECK(a.used_today == 25);
  CHECK(g.snapshot(200'000, kNoon).fallback_divisor == 4);
  g.set_fallback_divisor(0);  // treated as 1
  CHECK(g.snapshot(200'000, kNoon).fallback_divisor == 1);
  CHECK(g.admit(200'000, kNoon).ok());  // the full limits again
}
