#include "lb/net/quota_check.h"

#include <cstdio>

#include "lb/net/log.h"
#include "lb/net/store_client.h"
#include "lb/net/wall_clock.h"

namespace lb::net {

QuotaAdmission admit_quota(const RuntimePool& pool, uv_loop_t* loop, StoreClient* store) {
  if (!pool.quota) return {};
  QuotaAdmission a = pool.quota->admit(uv_now(loop), wall_ms());
  // The one take in flight is ours: it is answered later (grant) and never waited for.
  if (a.need_lease && !(store && store->quota_take(pool.name, *pool.quota)))
    pool.quota->lease_failed();
  if (!a.ok())
    log_pool_limited(pool.name, "request answered %d by corral (%s), Retry-After %llu s", a.status,
                     a.refusal == QuotaRefusal::rate    ? "rate_limit rps/burst"
                     : a.refusal == QuotaRefusal::daily ? "rate_limit daily"
                                                        : "upstream cool-down",
                     static_cast<unsigned long long>(a.retry_after_s));
  if (a.warn_80) {
    QuotaLimits l = pool.quota->limits();
    log_pool(LogLevel::warn, pool.name,
             "%llu of the daily quota of %llu requests used (80%%); at the quota corral "
             "answers 429 until 00:00 UTC",
             static_cast<unsigned long long>(a.used_today),
             static_cast<unsigned long long>(l.daily));
  }
  return a;
}

void note_upstream_status(const RuntimePool& pool, int status, uv_loop_t* loop,
                          StoreClient* store) {
  if (!pool.quota) return;
  const uint64_t unix_ms = wall_ms();
  QuotaTrip t = pool.quota->upstream_status(status, uv_now(loop), unix_ms);
  if (!t.tripped) return;
  if (store) store->quota_cool(pool.name, t.status, unix_ms + t.cooldown_ms);
  // One line per cool-down, never per request: at most one a second.
  log_pool(LogLevel::warn, pool.name,
           "upstream answered %d; corral answers %d itself for %llu ms instead of sending "
           "more (Blockfrost bans an IP that keeps sending)",
           status, status == 402 ? 402 : 429, static_cast<unsigned long long>(t.cooldown_ms));
}

void quota_reply(const QuotaAdmission& a, QuotaReply& out) {
  switch (a.refusal) {
    case QuotaRefusal::rate:
      out.reason = "rate limit of this upstream reached (rate_limit rps/burst); retry later";
      break;
    case QuotaRefusal::daily:
      out.reason =
          "daily quota of this upstream reached (rate_limit daily); it resets at 00:00 UTC";
      break;
    case QuotaRefusal::cooldown_402:
      out.reason =
          "upstream daily limit reached (it answered 402); corral sends nothing more until 00:00 "
          "UTC";
      break;
    case QuotaRefusal::cooldown_429:
      out.reason = "upstream rate limited (it answered 429); corral pauses before sending more";
      break;
    case QuotaRefusal::none:
      out.reason = "";
      break;
  }
  int n = std::snprintf(out.buf, sizeof out.buf, "Retry-After: %llu\r\n",
                        static_cast<unsigned long long>(a.retry_after_s));
  out.headers = std::string_view(out.buf, n > 0 ? static_cast<size_t>(n) : 0);
}

}  // namespace lb::net
