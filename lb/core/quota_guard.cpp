// The quota guard (see quota_guard.h). The bucket is the classic token bucket (Turner's
// "leaky bucket as a meter", as in RFC 2697's single-rate meter without colours).
#include "lb/core/quota_guard.h"

#include <algorithm>
#include <cmath>

namespace lb {
namespace {

uint64_t ceil_seconds(uint64_t ms) { return std::max<uint64_t>(1, (ms + 999) / 1000); }

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
  tokens_ = std::min(limits_.burst,
                     tokens_ + static_cast<double>(now_ms - refilled_ms_) * limits_.rps / 1000.0);
  refilled_ms_ = now_ms;
}

QuotaAdmission QuotaGuard::admit(uint64_t now_ms, uint64_t unix_ms) {
  std::lock_guard lock(mu_);
  roll_day(unix_ms);
  refill(now_ms);
  QuotaAdmission a;
  auto refuse = [&](QuotaRefusal why, int status, uint64_t wait_ms, uint64_t& counter) {
    ++counter;
    a.refusal = why;
    a.status = status;
    a.retry_after_s = ceil_seconds(wait_ms);
    a.used_today = used_;
    return a;
  };
  if (day_402_ == day_)
    return refuse(QuotaRefusal::cooldown_402, 402, ms_until_utc_midnight(unix_ms),
                  refused_cooldown_);
  if (now_ms < until_429_ms_)
    return refuse(QuotaRefusal::cooldown_429, 429, until_429_ms_ - now_ms, refused_cooldown_);
  if (limits_.daily != 0 && used_ >= limits_.daily)
    return refuse(QuotaRefusal::daily, 429, ms_until_utc_midnight(unix_ms), refused_daily_);
  if (limits_.rps > 0) {
    if (tokens_ < 1.0) {
      double wait = (1.0 - tokens_) * 1000.0 / limits_.rps;
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
  s.tokens = limits_.rps > 0 && now_ms > refilled_ms_
                 ? std::min(limits_.burst, tokens_ + static_cast<double>(now_ms - refilled_ms_) *
                                                         limits_.rps / 1000.0)
                 : tokens_;
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
