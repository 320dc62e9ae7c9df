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

TEST_CASE("quota lease: lease_size is max(rps/10, burst/(20 x instances)) clamped to 1..50") {
  CHECK(QuotaGuard(limits(10, 500, 0), 0).lease_size() == 25);  // Blockfrost's plan, alone
  CHECK(QuotaGuard(limits(100, 100, 0), 0).lease_size() == 10);
  CHECK(QuotaGuard(limits(5, 5, 0), 0).lease_size() == 1);
  CHECK(QuotaGuard(limits(10'000, 500, 0), 0).lease_size() == 50);
  CHECK(QuotaGuard(limits(0, 0, 1000), 0).lease_size() == 50);
  QuotaGuard five(limits(10, 500, 0), 0);
  five.set_fallback_divisor(5);  // five live instances share the burst
  CHECK(five.lease_size() == 5);
}

TEST_CASE("quota lease: an empty lease admits from the local fallback; one caller asks") {
  // rps 10, burst 500, one instance: a burst of 20 while the first take is in flight is
  // not refused (the store's bucket has room; only the lease is not there yet).
  QuotaGuard g(limits(10, 500, 0), 0);
  g.set_shared(true);
  CHECK(g.shared());
  int ok = 0, asked = 0;
  for (int i = 0; i < 20; ++i) {
    QuotaAdmission a = g.admit(10, kNoon);
    ok += a.ok();
    asked += a.need_lease;
  }
  CHECK(ok == 20);
  CHECK(asked == 1);  // the take in flight is not sent again
  CHECK(g.snapshot(10, kNoon).refused_rate == 0);
  // The take pays the 20 fallback requests back to the store.
  CHECK(g.lease_size() == 25 + 20);
  g.grant(45, 45, QuotaRefusal::none, 0, 20, kNoon);
  CHECK(g.snapshot(20, kNoon).lease == doctest::Approx(25));
  CHECK(g.lease_size() == 25);
  ok = asked = 0;
  for (int i = 0; i < 25; ++i) {
    QuotaAdmission c = g.admit(21, kNoon);
    ok += c.ok();
    asked += c.need_lease;
  }
  CHECK(ok == 25);
  CHECK(asked == 1);  // below half of the lease: asked once while the take runs
  QuotaSnapshot s = g.snapshot(22, kNoon);
  CHECK(s.shared);
  CHECK(s.lease == doctest::Approx(0));
  CHECK(s.used_today == 45);            // the store's fleet-wide count, the lease included
  CHECK(g.daily_count().second == 45);  // this process's own count
}

TEST_CASE("quota lease: while a take is on its way, at most one lease is owed to the store") {
  QuotaGuard g(limits(10, 500, 0), 0);
  g.set_shared(true);
  int ok = 0;
  for (int i = 0; i < 100; ++i) ok += g.admit(0, kNoon).ok();
  CHECK(ok == 25);  // one lease's worth: the store's bucket may be empty
  CHECK(g.snapshot(0, kNoon).refused_rate == 75);
  // The store answered with nothing (its bucket is empty): the debt stays, so does the cap.
  g.grant(0, 100, QuotaRefusal::rate, 100, 1, kNoon);
  CHECK(g.admit(2, kNoon).refusal == QuotaRefusal::rate);
  QuotaAdmission a = g.admit(200, kNoon);  // the hold is over: asks, still capped
  CHECK(a.refusal == QuotaRefusal::rate);
  CHECK(a.need_lease);
  // A cool-down answer keeps the cap too; only an unreachable store lifts it.
  g.lease_failed(false);
  CHECK_FALSE(g.admit(201, kNoon).ok());
  g.lease_failed();
  CHECK(g.admit(202, kNoon).ok());
}

TEST_CASE("quota lease: the fallback in shared mode is the local bucket divided") {
  QuotaGuard g(limits(10, 40, 0), 0);
  g.set_fallback_divisor(4);  // the live instance count, set with each take
  g.set_shared(true);
  REQUIRE(g.admit(0, kNoon).need_lease);
  g.lease_failed();  // this worker's link is down: the divided local bucket decides
  int ok = 1;
  for (int i = 0; i < 100; ++i) ok += g.admit(0, kNoon).ok();
  CHECK(ok == 10);  // burst 40 / 4: this instance's share while it has no lease
  QuotaSnapshot s = g.snapshot(0, kNoon);
  CHECK(s.refused_rate == 91);
  CHECK(g.lease_size() == 1 + 10);
}

TEST_CASE("quota lease: a failed or unsent take never refuses; the next request asks again") {
  QuotaGuard g(limits(100, 500, 0), 0);
  g.set_shared(true);
  QuotaAdmission a = g.admit(0, kNoon);
  CHECK(a.ok());
  REQUIRE(a.need_lease);
  g.lease_failed();  // the worker's link is down: quota_take could not be sent
  QuotaAdmission b = g.admit(1, kNoon);
  CHECK(b.ok());
  CHECK(b.need_lease);
}

TEST_CASE("quota lease: the local bucket plays no part in shared mode") {
  QuotaGuard g(limits(10, 2, 0), 0);  // a local bucket of 2
  g.set_shared(true);
  CHECK(g.admit(0, kNoon).need_lease);
  g.grant(6, 6, QuotaRefusal::none, 0, 0, kNoon);  // 5 + the fallback request paid back
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
  CHECK(a.used_today == 1001);  // the store's 1000 and our fallback request, unpaid
  CHECK(g.snapshot(200, kNoon).refused_daily == 1);
  // The hold is over: ask again. Meanwhile the fallback's daily share is what the fleet
  // had left at the last answer: nothing.
  QuotaAdmission b = g.admit(5'100, kNoon);
  CHECK(b.refusal == QuotaRefusal::daily);
  CHECK(b.need_lease);
  // A cool-down answer from the store refuses with its own status.
  g.grant(0, 1000, QuotaRefusal::cooldown_402, 60'000, 5'200, kNoon);
  QuotaAdmission c = g.admit(5'300, kNoon);
  CHECK(c.refusal == QuotaRefusal::cooldown_402);
  CHECK(c.status == 402);
}

TEST_CASE("quota lease: local cool-downs still apply in shared mode") {
  QuotaGuard g(limits(100, 500, 0), 0);
  g.set_shared(true);
  g.admit(0, kNoon);
  g.grant(11, 11, QuotaRefusal::none, 0, 0, kNoon);  // 10 + the fallback request paid back
  g.upstream_status(429, 10, kNoon);
  QuotaAdmission a = g.admit(20, kNoon);
  CHECK(a.refusal == QuotaRefusal::cooldown_429);
  CHECK(g.snapshot(20, kNoon).lease == doctest::Approx(10));  // nothing spent
}

TEST_CASE("quota lease: leaving shared mode drops the lease; a late grant is ignored") {
  QuotaGuard g(limits(10, 4, 0), 0);
  g.set_shared(true);
  REQUIRE(g.admit(0, kNoon).need_lease);  // from the local bucket: 3 tokens left
  g.set_shared(false);
  g.grant(50, 50, QuotaRefusal::none, 0, 1, kNoon);  // answered after the store went down
  QuotaSnapshot s = g.snapshot(1, kNoon);
  CHECK_FALSE(s.shared);
  CHECK(s.lease == doctest::Approx(0));
  int ok = 0;
  for (int i = 0; i < 100; ++i) ok += g.admit(1, kNoon).ok();
  CHECK(ok == 3);  // the local bucket again
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

TEST_CASE("quota lease: losing the store never refuses for the switch alone (fleet count)") {
  // The fleet had used 600 of 1000 when the store went down with two instances live: this
  // one may still send the 50 its last lease covered and half of the 400 left, and saves
  // only its own count.
  QuotaGuard g(limits(0, 0, 1000), 0);
  g.set_shared(true);
  REQUIRE(g.admit(0, kNoon).need_lease);  // from the fallback: paid back by the take
  g.grant(51, 600, QuotaRefusal::none, 0, 1, kNoon);
  CHECK(g.snapshot(1, kNoon).used_today == 600);
  g.set_shared(false);
  g.set_fallback_divisor(2);
  int ok = 0;
  for (int i = 0; i < 1000; ++i) ok += g.admit(2, kNoon).ok();
  CHECK(ok == 50 + 200);
  QuotaAdmission a = g.admit(3, kNoon);
  CHECK(a.refusal == QuotaRefusal::daily);
  CHECK(a.used_today == 800);            // the fleet's 600 and this one's 200 beyond its lease
  CHECK(g.daily_count().second == 251);  // the state file: this process's requests
  // Back in shared mode the next grant is the truth again.
  g.set_shared(true);
  QuotaAdmission b = g.admit(4, kNoon);
  CHECK(b.refusal == QuotaRefusal::daily);  // the fallback share is spent
  CHECK(b.need_lease);
  g.grant(50, 700, QuotaRefusal::none, 0, 5, kNoon);
  CHECK(g.admit(6, kNoon).ok());
  CHECK(g.snapshot(6, kNoon).used_today == 700);
}

TEST_CASE("quota lease: a fleet count from yesterday does not carry over") {
  QuotaGuard g(limits(0, 0, 1000), 0);
  g.set_shared(true);
  g.admit(0, kNoon);
  g.grant(51, 990, QuotaRefusal::none, 0, 1, kNoon);
  g.set_shared(false);
  g.set_fallback_divisor(2);
  const uint64_t tomorrow = kNoon + kDayMs;
  QuotaAdmission a = g.admit(2, tomorrow);
  CHECK(a.ok());
  CHECK(a.used_today == 1);
}

TEST_CASE("quota lease: another instance's cool-down holds until its time, uncounted") {
  QuotaGuard g(limits(10, 500, 0), 0);
  CHECK(g.apply_remote_cooldown(429, kNoon + 5'000, 100, kNoon));
  QuotaAdmission a = g.admit(200, kNoon + 100);
  CHECK(a.refusal == QuotaRefusal::cooldown_429);
  CHECK(a.retry_after_s == 5);  // 4.9 s left, rounded up
  CHECK(g.admit(5'099, kNoon + 4'999).refusal == QuotaRefusal::cooldown_429);
  CHECK(g.admit(5'100, kNoon + 5'000).ok());
  QuotaSnapshot s = g.snapshot(5'100, kNoon + 5'000);
  CHECK(s.upstream_429 == 0);  // that instance counted its upstream answer
  // Our own back-off was not doubled: our first 429 pauses 1 s.
  QuotaTrip t = g.upstream_status(429, 6'000, kNoon + 6'000);
  CHECK(t.tripped);
  CHECK(t.cooldown_ms == kCooldown429FirstMs);
  // Over already, or not a cool-down status: nothing.
  CHECK_FALSE(g.apply_remote_cooldown(429, kNoon, 10'000, kNoon + 10'000));
  CHECK_FALSE(g.apply_remote_cooldown(500, kNoon + 20'000, 10'000, kNoon + 10'000));
  CHECK_FALSE(g.cooling(10'000, kNoon + 10'000));
  // A far-off time (another clock) holds at most the longest local pause.
  CHECK(g.apply_remote_cooldown(418, kNoon + 3'600'000, 10'000, kNoon + 10'000));
  CHECK(g.cooling(10'000 + kCooldown429MaxMs - 1, kNoon));
  CHECK_FALSE(g.cooling(10'000 + kCooldown429MaxMs, kNoon));
  CHECK(g.snapshot(0, kNoon).upstream_418 == 0);
  // A 402 closes the pool until midnight, uncounted.
  CHECK(g.apply_remote_cooldown(402, kNoon + ms_until_utc_midnight(kNoon), 80'000, kNoon));
  QuotaAdmission c = g.admit(80'000, kNoon);
  CHECK(c.refusal == QuotaRefusal::cooldown_402);
  CHECK(c.status == 402);
  CHECK(g.snapshot(80'000, kNoon).upstream_402 == 0);
}
