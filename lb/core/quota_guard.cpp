// The quota guard (see quota_guard.h). The bucket is the classic token bucket (Turner's
// "leaky bucket as a meter", as in RFC 2697's single-rate meter without colours).
#include "lb/core/quota_guard.h"

#include <algorithm>
#include <cmath>

namespace lb {
namespace {

uint64_t ceil_seconds(uint64_t ms) { return std::max<uint64_t>(1, (ms + 999) / 1000); }

// A refusal: nothing spent, counted under `counter`.
QuotaAdmission refused(QuotaRefusal why, int status, uint64_t wait_ms, uint64_t used,
                       uint64_t& counter) {
  ++counter;
  QuotaAdmission a;
  a.refusal = why;
  a.status = status;
  a.retry_after_s = ceil_seconds(wait_ms);
  a.used_today = used;
  return a;
}

constexpr uint64_t kMaxLease = 50;
constexpr uint64_t kMaxPayBack = 500;  // fallback requests paid back by one take, at most

// One take's lease. A lease is tokens this process holds unspent, so it stays small: about a
// tenth of a second at rps (about ten takes a second at most), or a twentieth of the burst
// shared among the live instances, whichever is more (so that a busy instance takes burst
// tokens in a few round trips instead of one at a time: rps 10, burst 500, one instance:
// 25), clamped to 1..50. All N instances together then hold at most a twentieth of the
// burst, never enough to starve the others. A burst that arrives while a take is in flight
// is not refused: it is admitted from the local fallback and paid back by the next take.
uint64_t lease_size_for(const QuotaLimits& l, uint64_t instances) {
  if (l.rps <= 0) return kMaxLease;  // only a daily quota: one take per 50 requests
  const double n = static_cast<double>(std::max<uint64_t>(instances, 1));
  const double want = std::max(l.rps / 10, l.burst / (20 * n));
  return std::clamp<uint64_t>(static_cast<uint64_t>(want), 1, kMaxLease);
}

}  // namespace

QuotaGuard::QuotaGuard(QuotaLimits limits, uint64_t now_ms)
    : limits_(limits), tokens_(limits.burst), refilled_ms_(now_ms) {}

void QuotaGuard::set_limits(QuotaLimits limits) {
  std::lock_guard lock(mu_);
  limits_ = limits;
  tokens_ = std::min(tokens_, limits.burst);
}

QuotaLimits QuotaGuard::limits() const {
  std::lock_guard lock(mu_);
  return limits_;
}

void QuotaGuard::roll_day(uint64_t unix_ms) {
  uint64_t day = utc_day(unix_ms);
  if (day == day_) return;
  // A new UTC day (or a clock stepped back over midnight): Blockfrost's count restarts.
  day_ = day;
  used_ = 0;
  warned_ = false;
  have_fleet_ = false;
  fleet_used_ = anchor_ = debt_ = 0;
}

// A monotonic clock read on another thread may be a little behind the last refill: time
// never runs backwards here, it just adds nothing.
void QuotaGuard::refill(uint64_t now_ms) {
  if (now_ms <= refilled_ms_) return;
  const QuotaLimits l = local_limits();
  tokens_ =
      std::min(l.burst, tokens_ + static_cast<double>(now_ms - refilled_ms_) * l.rps / 1000.0);
  refilled_ms_ = now_ms;
}

// The limits this process enforces on its own: the configured ones, divided by the fleet
// size while the store is down (each share at least one request).
QuotaLimits QuotaGuard::local_limits() const {
  QuotaLimits l = limits_;
  if (divisor_ <= 1) return l;
  const double d = static_cast<double>(divisor_);
  l.rps /= d;
  if (l.burst > 0) l.burst = std::max(1.0, l.burst / d);
  if (l.daily != 0) l.daily = std::max<uint64_t>(1, l.daily / divisor_);
  return l;
}

// Requests this process sent since the last grant that the store's count does not cover.
uint64_t QuotaGuard::spent_since_grant() const { return used_ > anchor_ ? used_ - anchor_ : 0; }

// The day's count as far as this process knows: the fleet's at the last grant plus what
// this process spent beyond it, or its own count before any grant today.
uint64_t QuotaGuard::fleet_used() const {
  return have_fleet_ ? fleet_used_ + spent_since_grant() : used_;
}

// The daily limit of the local path. After a grant today this process may spend its share
// (1/divisor) of what the fleet had left then: the fleet's count is never compared with a
// divided limit, so losing the store never refuses a request that the switch alone would
// (fleet 60,000 of 100,000, two instances: each may send 20,000 more, not 0).
bool QuotaGuard::local_daily_reached() const {
  if (limits_.daily == 0) return false;
  if (!have_fleet_) return used_ >= local_limits().daily;
  if (fleet_used_ >= limits_.daily) return true;
  const uint64_t share = std::max<uint64_t>(1, (limits_.daily - fleet_used_) / divisor_);
  return spent_since_grant() >= share;
}

// An admitted request, already counted in used_ (and the lease or bucket).
QuotaAdmission QuotaGuard::admitted() {
  QuotaAdmission a;
  a.used_today = fleet_used();
  // 80% of the quota: warn once a day, while a fifth of it is left to act on.
  if (limits_.daily != 0 && !warned_ && a.used_today * 5 >= limits_.daily * 4) {
    warned_ = true;
    a.warn_80 = true;
  }
  return a;
}

QuotaAdmission QuotaGuard::admit(uint64_t now_ms, uint64_t unix_ms) {
  std::lock_guard lock(mu_);
  roll_day(unix_ms);
  refill(now_ms);
  if (day_402_ == day_)
    return refused(QuotaRefusal::cooldown_402, 402, ms_until_utc_midnight(unix_ms), fleet_used(),
                   refused_cooldown_);
  if (now_ms < until_429_ms_)
    return refused(QuotaRefusal::cooldown_429, 429, until_429_ms_ - now_ms, fleet_used(),
                   refused_cooldown_);
  if (shared_) return admit_shared(now_ms, unix_ms);
  return admit_local(unix_ms);
}

// The local bucket and daily share (divided while the store is down or has no lease for us).
QuotaAdmission QuotaGuard::admit_local(uint64_t unix_ms) {
  const QuotaLimits l = local_limits();
  if (local_daily_reached())
    return refused(QuotaRefusal::daily, 429, ms_until_utc_midnight(unix_ms), fleet_used(),
                   refused_daily_);
  if (l.rps > 0) {
    if (tokens_ < 1.0) {
      double wait = (1.0 - tokens_) * 1000.0 / l.rps;
      return refused(QuotaRefusal::rate, 429, static_cast<uint64_t>(std::ceil(wait)), fleet_used(),
                     refused_rate_);
    }
    tokens_ -= 1.0;
  }
  ++used_;
  return admitted();
}

QuotaTrip QuotaGuard::upstream_status(int status, uint64_t now_ms, uint64_t unix_ms) {
  std::lock_guard lock(mu_);
  roll_day(unix_ms);
  QuotaTrip t;
  t.status = status;
  const bool cooling = day_402_ == day_ || now_ms < until_429_ms_;
  switch (status) {
    case 402:
      ++up_402_;
      if (day_402_ != day_) {
        day_402_ = day_;
        t.tripped = true;
        t.cooldown_ms = ms_until_utc_midnight(unix_ms);
      }
      break;
    case 429:
    case 418:
      ++(status == 429 ? up_429_ : up_418_);
      if (status == 418) backoff_ms_ = kCooldown429MaxMs;  // banned: the longest pause
      if (now_ms >= until_429_ms_) {
        until_429_ms_ = now_ms + backoff_ms_;
        t.tripped = true;
        t.cooldown_ms = backoff_ms_;
        backoff_ms_ = std::min(backoff_ms_ * 2, kCooldown429MaxMs);
      }
      break;
    default:
      if (!cooling) backoff_ms_ = kCooldown429FirstMs;
      break;
  }
  return t;
}

// Spends the local lease; the store's bucket and daily count did the limiting when the lease
// was granted. Never waits for the store: with an empty lease the request is refused only
// if the store said so (or a cool-down runs); otherwise the local fallback decides.
QuotaAdmission QuotaGuard::admit_shared(uint64_t now_ms, uint64_t unix_ms) {
  // Only one take in flight per pool and process: the caller that flips the flag sends it.
  bool asked = false;
  auto ask = [&] {
    if (take_in_flight_) return;
    take_in_flight_ = true;
    asked = true;
  };
  if (lease_ >= 1.0) {
    lease_ -= 1.0;
    // The fallback bucket follows this process's spending, so that it lets through only
    // this process's share when the lease runs out.
    if (local_limits().rps > 0) tokens_ = std::max(0.0, tokens_ - 1.0);
    ++used_;
    QuotaAdmission a = admitted();
    if (lease_ < static_cast<double>(lease_size_for(limits_, divisor_)) / 2 &&
        now_ms >= store_refused_until_ms_)
      ask();
    a.need_lease = asked;
    return a;
  }
  if (now_ms < store_refused_until_ms_) {
    const int status = store_refusal_ == QuotaRefusal::cooldown_402 ? 402 : 429;
    uint64_t& counter = store_refusal_ == QuotaRefusal::rate    ? refused_rate_
                        : store_refusal_ == QuotaRefusal::daily ? refused_daily_
                                                                : refused_cooldown_;
    return refused(store_refusal_, status, store_refused_until_ms_ - now_ms, fleet_used(), counter);
  }
  ask();
  // No lease yet (a take in flight, failed or unsent): the local fallback, paid back later.
  // While a take is merely on its way, at most one lease's worth is owed to the store, so
  // the fleet overspends its bucket by at most two leases per instance (the one in hand and
  // this debt) even when the store's bucket is empty; a take that failed (link down, slow,
  // unsent) lifts the cap: the store is unreachable from here and the divided local limits
  // are the fleet's whole protection, as when the store is down.
  if (!take_failed_ && debt_ >= lease_size_for(limits_, divisor_)) {
    QuotaAdmission r = refused(QuotaRefusal::rate, 429, 1000, fleet_used(), refused_rate_);
    r.need_lease = asked;
    return r;
  }
  QuotaAdmission a = admit_local(unix_ms);
  if (a.ok()) ++debt_;
  a.need_lease = asked;
  return a;
}

void QuotaGuard::set_shared(bool shared) {
  std::lock_guard lock(mu_);
  if (shared_ == shared) return;
  shared_ = shared;
  lease_ = 0;
  take_in_flight_ = take_failed_ = false;
  store_refusal_ = QuotaRefusal::none;
  store_refused_until_ms_ = 0;
}

bool QuotaGuard::shared() const {
  std::lock_guard lock(mu_);
  return shared_;
}

uint64_t QuotaGuard::lease_size() const {
  std::lock_guard lock(mu_);
  return lease_size_for(limits_, divisor_) + std::min(debt_, kMaxPayBack);
}

void QuotaGuard::grant(uint64_t tokens, uint64_t used_today, QuotaRefusal refusal,
                       uint64_t retry_after_ms, uint64_t now_ms, uint64_t unix_ms) {
  std::lock_guard lock(mu_);
  take_in_flight_ = take_failed_ = false;
  if (!shared_) return;  // the store went down meanwhile: local limits rule now
  roll_day(unix_ms);
  lease_ += static_cast<double>(tokens);
  // Fallback requests already went out: the store has now counted them.
  const uint64_t pay = std::min(debt_, static_cast<uint64_t>(lease_));
  lease_ -= static_cast<double>(pay);
  debt_ -= pay;
  have_fleet_ = true;
  fleet_used_ = used_today;
  anchor_ = used_ - debt_ + static_cast<uint64_t>(lease_);
  if (tokens == 0 && refusal != QuotaRefusal::none) {
    store_refusal_ = refusal;
    store_refused_until_ms_ = now_ms + std::max<uint64_t>(retry_after_ms, 1);
  } else {
    store_refusal_ = QuotaRefusal::none;
    store_refused_until_ms_ = 0;
  }
}

void QuotaGuard::lease_failed(bool unreachable) {
  std::lock_guard lock(mu_);
  take_in_flight_ = false;
  take_failed_ = unreachable;
}

void QuotaGuard::set_fallback_divisor(uint64_t n) {
  std::lock_guard lock(mu_);
  divisor_ = std::max<uint64_t>(n, 1);
  tokens_ = std::min(tokens_, local_limits().burst);
}

bool QuotaGuard::apply_remote_cooldown(int status, uint64_t until_unix_ms, uint64_t now_ms,
                                       uint64_t unix_ms) {
  std::lock_guard lock(mu_);
  roll_day(unix_ms);
  if (until_unix_ms <= unix_ms) return false;  // over already (or a clock far ahead)
  if (status == 402) {
    day_402_ = day_;  // Blockfrost's daily limit: closed until midnight whatever was sent
    return true;
  }
  if (status != 429 && status != 418) return false;
  // Another clock: never hold longer than the longest local pause.
  const uint64_t hold = std::min(until_unix_ms - unix_ms, kCooldown429MaxMs);
  until_429_ms_ = std::max(until_429_ms_, now_ms + hold);
  return true;
}

bool QuotaGuard::cooling(uint64_t now_ms, uint64_t unix_ms) const {
  std::lock_guard lock(mu_);
  return day_402_ == utc_day(unix_ms) || now_ms < until_429_ms_;
}

bool QuotaGuard::restore_daily(uint64_t day, uint64_t used, uint64_t unix_ms) {
  std::lock_guard lock(mu_);
  roll_day(unix_ms);
  if (day != day_) return false;
  used_ = std::max(used_, used);
  // The warning was given before the restart if the count was past 80% already.
  if (limits_.daily != 0 && used_ * 5 >= limits_.daily * 4) warned_ = true;
  return true;
}

// Not rolled to today (const): a count from yesterday reads as yesterday's, which a
// restart then ignores.
std::pair<uint64_t, uint64_t> QuotaGuard::daily_count() const {
  std::lock_guard lock(mu_);
  return {day_, used_};
}

QuotaSnapshot QuotaGuard::snapshot(uint64_t now_ms, uint64_t unix_ms) const {
  std::lock_guard lock(mu_);
  QuotaSnapshot s;
  s.limits = limits_;
  const uint64_t today = utc_day(unix_ms);
  s.day = today;
  s.used_today = day_ == today ? fleet_used() : 0;
  s.remaining_today = limits_.daily > s.used_today ? limits_.daily - s.used_today : 0;
  const QuotaLimits l = local_limits();
  s.tokens =
      l.rps > 0 && now_ms > refilled_ms_
          ? std::min(l.burst, tokens_ + static_cast<double>(now_ms - refilled_ms_) * l.rps / 1000.0)
          : tokens_;
  s.shared = shared_;
  s.lease = lease_;
  s.fallback_divisor = divisor_;
  if (day_402_ == today) {
    s.cooldown_status = 402;
    s.cooldown_until_unix_ms = unix_ms + ms_until_utc_midnight(unix_ms);
  } else if (now_ms < until_429_ms_) {
    s.cooldown_status = 429;
    s.cooldown_until_unix_ms = unix_ms + (until_429_ms_ - now_ms);
  }
  s.refused_rate = refused_rate_;
  s.refused_daily = refused_daily_;
  s.refused_cooldown = refused_cooldown_;
  s.upstream_402 = up_402_;
  s.upstream_429 = up_429_;
  s.upstream_418 = up_418_;
  return s;
}

}  // namespace lb
