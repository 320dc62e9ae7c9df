#pragma once
// The Blockfrost quota guard of one pool (DESIGN.md "Why it exists", issue 11): every user
// behind corral shares its one egress IP and one project, so corral keeps the count for all
// of them and stops before Blockfrost does. Three limits, checked in this order before a
// request is sent:
//   - an upstream cool-down: the first 402 closes the pool until the next UTC midnight; the
//     first 429 for 1 s, doubling on each further 429 up to 60 s (back to 1 s after an
//     answer that is neither); a 418 (banned) for the full 60 s. Blockfrost bans an IP that
//     keeps sending past 402/429, so during a cool-down corral answers for it;
//   - the daily quota, counted per UTC day (Blockfrost's plans count in UTC);
//   - a token bucket: `rps` tokens a second up to `burst` (Blockfrost: 10/s, burst 500).
// Pure and thread-safe: one guard is shared by every worker of the process behind a small
// mutex (a few arithmetic operations per request). Time comes in as two parameters: now_ms
// (monotonic: the bucket and the 429 cool-down) and unix_ms (wall clock: the UTC day).
#include <cstdint>
#include <mutex>
#include <utility>

namespace lb {

struct QuotaLimits {
  double rps = 0;      // tokens a second; 0 = no bucket
  double burst = 0;    // bucket capacity (>= 1 when rps > 0)
  uint64_t daily = 0;  // requests per UTC day; 0 = no daily quota
  bool operator==(const QuotaLimits&) const = default;
};

// Why a request was refused (none: it may be sent, and it was counted).
enum class QuotaRefusal : uint8_t { none, rate, daily, cooldown_402, cooldown_429 };

struct QuotaAdmission {
  QuotaRefusal refusal = QuotaRefusal::none;
  int status = 0;              // what the client gets when refused: 429, or 402 after a 402
  uint64_t retry_after_s = 0;  // whole seconds, at least 1, when refused
  bool warn_80 = false;        // this request reached 80% of the daily quota (once a day)
  uint64_t used_today = 0;
  // Shared mode (issue 15): the local lease ran low and this caller got the one take that
  // may be in flight: it must send quota_take for lease_size() tokens and report the answer
  // with grant() or lease_failed(). May be set on a refusal too.
  bool need_lease = false;
  bool ok() const { return refusal == QuotaRefusal::none; }
};

// What an upstream answer did to the guard.
struct QuotaTrip {
  bool tripped = false;  // a cool-down started with this answer
  int status = 0;
  uint64_t cooldown_ms = 0;
};

// A consistent view for /status and /metrics.
struct QuotaSnapshot {
  QuotaLimits limits;
  uint64_t day = 0;  // UTC day number (days since 1970-01-01)
  uint64_t used_today = 0;
  uint64_t remaining_today = 0;  // 0 when there is no daily quota
  double tokens = 0;             // in the bucket now
  int cooldown_status = 0;       // 402 or 429 while a cool-down runs, else 0
  uint64_t cooldown_until_unix_ms = 0;
  uint64_t refused_rate = 0, refused_daily = 0, refused_cooldown = 0;
  bool shared = false;  // spending leases from the shared store
  double lease = 0;     // tokens left in the local lease (shared mode)
  uint64_t fallback_divisor = 1;
  uint64_t upstream_402 = 0, upstream_429 = 0, upstream_418 = 0;
};

inline constexpr uint64_t kDayMs = 86'400'000;
inline constexpr uint64_t kCooldown429FirstMs = 1000;
inline constexpr uint64_t kCooldown429MaxMs = 60'000;

// The UTC day of a wall-clock time (Unix time has no leap seconds: every day is 86400 s).
inline uint64_t utc_day(uint64_t unix_ms) { return unix_ms / kDayMs; }
// Milliseconds from unix_ms to the next UTC midnight (a full day at midnight itself).
inline uint64_t ms_until_utc_midnight(uint64_t unix_ms) { return kDayMs - unix_ms % kDayMs; }

class QuotaGuard {
 public:
  // The bucket starts full, like Blockfrost's.
  QuotaGuard(QuotaLimits limits, uint64_t now_ms);

  // A reload: counts and cool-downs stay; the bucket is clamped to the new burst.
  void set_limits(QuotaLimits limits);
  QuotaLimits limits() const;

  // Decides whether one request may be sent now. Admitted: a token is taken and the daily
  // count goes up. Refused: nothing is spent, so a refused request costs no quota.
  QuotaAdmission admit(uint64_t now_ms, uint64_t unix_ms);

  // Hears a final upstream answer: 402, 429 and 418 are counted and may trip a cool-down
  // (answers to requests sent before it began do not extend it); any other status ends
  // the 429 back-off once no cool-down runs.
  QuotaTrip upstream_status(int status, uint64_t now_ms, uint64_t unix_ms);

  // Whether a cool-down runs now (health probes wait it out too: they are requests).
  bool cooling(uint64_t now_ms, uint64_t unix_ms) const;

  // Restores the daily count saved by a previous run, if it was saved on the same UTC day;
  // returns whether it was taken.
  bool restore_daily(uint64_t day, uint64_t used, uint64_t unix_ms);

  // The daily count to save: (day, used). Changes whenever a request is admitted.
  std::pair<uint64_t, uint64_t> daily_count() const;

  QuotaSnapshot snapshot(uint64_t now_ms, uint64_t unix_ms) const;

  // --- Shared mode (issue 15): the bucket and the daily count live in the store, and this
  // process spends leases taken from it (store_scripts::quota_take). Cool-downs stay local
  // (the store shares them through quota_cool + pub/sub: apply_remote_cooldown()).
  // No request fails because the store failed: while the lease is empty because a take is
  // in flight, failed or could not be sent, admit() falls back to the local bucket and
  // daily share divided by the fallback divisor (the live instance count), and asks the
  // next take to pay those requests back to the store. Only an explicit store refusal
  // ('rate'/'daily') or a cool-down refuses.

  // Turns shared mode on (store up) or off (store down: the local bucket and daily share
  // apply, divided by the fallback divisor). Turning it off drops the lease and any take in
  // flight; the fleet's count at the last grant is kept for the fallback's daily share.
  void set_shared(bool shared);
  bool shared() const;

  // Tokens one take asks for: the lease (see lease_size_for in the .cpp) plus the requests
  // admitted from the local fallback since the last grant, which the store has not counted.
  uint64_t lease_size() const;

  // The answer to the take that admit() asked for: `tokens` added to the lease (first paying
  // back fallback requests); `used_today` is the store's fleet-wide count, kept apart from
  // this process's own count (the state file saves this process's); a refusal ('rate' or
  // 'daily' when tokens is 0) holds for retry_after_ms, during which admit() refuses the
  // same way without asking again.
  void grant(uint64_t tokens, uint64_t used_today, QuotaRefusal refusal, uint64_t retry_after_ms,
             uint64_t now_ms, uint64_t unix_ms);

  // The take failed (store error, timeout, not sent): the next admit() may ask again, and
  // until a take is answered the local fallback is not capped at one lease of debt.
  // unreachable=false: the store answered, without a lease (a cool-down), so the cap stays.
  void lease_failed(bool unreachable = true);

  // The live instance count: while the store is down, or while this process has no lease,
  // the local bucket and the rest of the fleet's daily quota are divided by it, so the
  // fleet stays within the plan (1 = undivided).
  void set_fallback_divisor(uint64_t n);

  // Another instance's upstream cool-down (quota_cool, pub/sub or a quota_take 'cool'
  // answer): held until until_unix_ms (a 429/418 at most 60 s from now; a 402 until UTC
  // midnight). Unlike upstream_status() it neither counts an upstream answer (that instance
  // counted it) nor doubles this process's 429 back-off. Returns whether it holds now.
  bool apply_remote_cooldown(int status, uint64_t until_unix_ms, uint64_t now_ms, uint64_t unix_ms);

 private:
  QuotaAdmission admit_shared(uint64_t now_ms, uint64_t unix_ms);  // mu_ held
  QuotaAdmission admit_local(uint64_t unix_ms);                    // mu_ held, bucket refilled
  QuotaAdmission admitted();                                       // mu_ held
  QuotaLimits local_limits() const;                                // mu_ held
  bool local_daily_reached() const;                                // mu_ held
  uint64_t spent_since_grant() const;                              // mu_ held
  uint64_t fleet_used() const;                                     // mu_ held
  void roll_day(uint64_t unix_ms);                                 // mu_ held
  void refill(uint64_t now_ms);                                    // mu_ held

  mutable std::mutex mu_;
  QuotaLimits limits_;
  double tokens_ = 0;
  uint64_t refilled_ms_ = 0;
  uint64_t day_ = 0;
  uint64_t used_ = 0;  // admitted by this process today (what the state file saves)
  bool warned_ = false;
  uint64_t day_402_ = UINT64_MAX;  // the UTC day a 402 closed, if any
  uint64_t until_429_ms_ = 0;      // monotonic end of the 429/418 cool-down
  uint64_t backoff_ms_ = kCooldown429FirstMs;
  uint64_t refused_rate_ = 0, refused_daily_ = 0, refused_cooldown_ = 0;
  uint64_t up_402_ = 0, up_429_ = 0, up_418_ = 0;
  bool shared_ = false;
  double lease_ = 0;
  bool take_in_flight_ = false;
  bool take_failed_ = false;  // the last take failed: the store is unreachable from here
  QuotaRefusal store_refusal_ = QuotaRefusal::none;
  uint64_t store_refused_until_ms_ = 0;
  uint64_t divisor_ = 1;
  // The fleet's count at the last grant today (have_fleet_), and the value of used_ that
  // count covers (used_ then, plus the lease it granted, minus unpaid fallback requests).
  bool have_fleet_ = false;
  uint64_t fleet_used_ = 0;
  uint64_t anchor_ = 0;
  uint64_t debt_ = 0;  // shared mode: admitted from the local fallback, not yet paid back
};

}  // namespace lb
