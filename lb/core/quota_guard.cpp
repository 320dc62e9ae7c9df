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

uint64_t lease_size_for(double rps) {
  if (rps <= 0) return 50;  // only a daily quota: one take per 50 requests
  return std::clamp<uint64_t>(static_cast<uint64_t>(rps / 10), 1, 50);
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

QuotaAdmission QuotaGuard::admit(uint64_t now_ms, uint64_t unix_ms) {
  std::lock_guard lock(mu_);
  roll_day(unix_ms);
  refill(now_ms);
  QuotaAdmission a;
  auto refuse = [&](QuotaRefusal why, int status, uint64_t wait_ms, uint64_t& counter) {
    return refused(why, status, wait_ms, used_, counter);
  };
  if (day_402_ == day_)
    return refuse(QuotaRefusal::cooldown_402, 402, ms_until_utc_midnight(unix_ms),
                  refused_cooldown_);
  if (now_ms < until_429_ms_)
    return refuse(QuotaRefusal::cooldown_429, 429, until_429_ms_ - now_ms, refused_cooldown_);
  if (shared_) return admit_shared(now_ms);
  const QuotaLimits l = local_limits();
  if (l.daily != 0 && used_ >= l.daily)
    return refuse(QuotaRefusal::daily, 429, ms_until_utc_midnight(unix_ms), refused_daily_);
  if (l.rps > 0) {
    if (tokens_ < 1.0) {
      double wait = (1.0 - tokens_) * 1000.0 / l.rps;
      return refuse(QuotaRefusal::rate, 429, static_cast<uint64_t>(std::ceil(wait)), refused_rate_);
    }
    tokens_ -= 1.0;
  }
  ++used_;
  // 80% of the quota: warn once a day, while a fifth of it is left to act on.
  if (limits_.daily != 0 && !warned_ && used_ * 5 >= limits_.daily * 4) {
    warned_ = true;
    a.warn_80 = true;
  }
  a.used_today = used_;
  return a;
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
// was granted. Never waits for the store: with an empty lease the request is refused.
QuotaAdmission QuotaGuard::admit_shared(uint64_t now_ms) {
  QuotaAdmission a;
  // Only one take in flight per pool and process: the caller that flips the flag sends it.
  auto ask = [&] {
    if (take_in_flight_) return;
    take_in_flight_ = true;
    a.need_lease = true;
  };
  if (lease_ < 1.0) {
    if (now_ms < store_refused_until_ms_) {
      const int status = store_refusal_ == QuotaRefusal::cooldown_402 ? 402 : 429;
      uint64_t& counter = store_refusal_ == QuotaRefusal::rate    ? refused_rate_
                          : store_refusal_ == QuotaRefusal::daily ? refused_daily_
                                                                  : refused_cooldown_;
      return refused(store_refusal_, status, store_refused_until_ms_ - now_ms, used_, counter);
    }
    ask();
    QuotaAdmission r = refused(QuotaRefusal::rate, 429, 1000, used_, refused_rate_);
    r.need_lease = a.need_lease;
    return r;
  }
  lease_ -= 1.0;
  // used_ is the store's count, which already includes the whole lease.
  if (limits_.daily != 0 && !warned_ && used_ * 5 >= limits_.daily * 4) {
    warned_ = true;
    a.warn_80 = true;
  }
  a.used_today = used_;
  if (lease_ < static_cast<double>(lease_size_for(limits_.rps)) / 2 &&
      now_ms >= store_refused_until_ms_)
    ask();
  return a;
}

void QuotaGuard::set_shared(bool shared) {
  std::lock_guard lock(mu_);
  if (shared_ == shared) return;
  shared_ = shared;
  lease_ = 0;
  take_in_flight_ = false;
  store_refusal_ = QuotaRefusal::none;
  store_refused_until_ms_ = 0;
}

bool QuotaGuard::shared() const {
  std::lock_guard lock(mu_);
  return shared_;
}

uint64_t QuotaGuard::lease_size() const {
  std::lock_guard lock(mu_);
  return lease_size_for(limits_.rps);
}

void QuotaGuard::grant(uint64_t tokens, uint64_t used_today, QuotaRefusal refusal,
                       uint64_t retry_after_ms, uint64_t now_ms, uint64_t unix_ms) {
  std::lock_guard lock(mu_);
  take_in_flight_ = false;
  if (!shared_) return;  // the store went down meanwhile: local limits rule now
  roll_day(unix_ms);
  lease_ += static_cast<double>(tokens);
  used_ = used_today;
  if (tokens == 0 && refusal != QuotaRefusal::none) {
    store_refusal_ = refusal;
    store_refused_until_ms_ = now_ms + std::max<uint64_t>(retry_after_ms, 1);
  } else {
    store_refusal_ = QuotaRefusal::none;
    store_refused_until_ms_ = 0;
  }
}

void QuotaGuard::lease_failed() {
  std::lock_guard lock(mu_);
  take_in_flight_ = false;
}

void QuotaGuard::set_fallback_divisor(uint64_t n) {
  std::lock_guard lock(mu_);
  divisor_ = std::max<uint64_t>(n, 1);
  tokens_ = std::min(tokens_, local_limits().burst);
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
  s.used_today = day_ == today ? used_ : 0;
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
