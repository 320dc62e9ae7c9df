#pragma once
// The health state machine of one backend (DESIGN.md "Health"), pure: time comes in as
// `now_ms`, events come in as calls, and every call says whether the effective state
// flipped (Pingora's "did it flip"). Three independent inputs, the worst one wins:
//
//  1. Probe level, with hysteresis: each active probe (or a lag/staleness verdict folded
//     into it by the caller) reports a level up/draining/down. The state moves to a worse
//     level only after `fall` consecutive reports at that level or worse, and to a better
//     level only after `rise` consecutive reports at that level or better, so an
//     instance whose answers alternate does not flip on every probe (HAProxy rise/fall).
//     Passive hard failures seen on live traffic (connect refused or timed out, reset)
//     count as `down` reports toward `fall`.
//  2. Ejection: `consecutive_503` 503 answers (or response timeouts) in a row on live
//     traffic make the backend
//     draining for an ejection time of base_time * 2^(n-1) (n = ejections so far, capped
//     at max_time), as Envoy's outlier detection does. When the time is over it stays
//     draining until a probe reports it healthy. The caller passes whether the pool can
//     afford another ejection (max_percent); if not, the 503 streak is only counted.
//     A response timeout is never a `down` report: the request is the client's choice
//     (a heavy Kupo query), so a slow answer says "overloaded" at most, like a 503.
//     Decay: an ejection that starts max_eject_ms or more after the previous one ended
//     lasts base_time again (n restarts at 1).
//  3. Fork (issue 13): a backend the pool's fork vote put outside the majority is down,
//     whatever its probes say, until it agrees again.
//  4. Admin override (maintenance): a forced state, or none.
#include <cstdint>
#include <optional>

#include "lb/core/backend_state.h"

namespace health {

using lb::BackendState;

struct HealthParams {
  uint32_t rise = 2;
  uint32_t fall = 3;
  uint32_t consecutive_503 = 3;  // 0 = never eject on 503s
  uint64_t base_eject_ms = 10'000;
  uint64_t max_eject_ms = 300'000;
};

// Why the backend is in its state, for /status.
enum class Reason : uint8_t {
  healthy,
  probe_failing,   // probes (or passive failures) say down
  probe_behind,    // probes say draining (e.g. Kupo/Ogmios health 202, lag, staleness)
  ejected_503,     // consecutive 503s (or response timeouts): ejection running
  awaiting_probe,  // ejection time over, waiting for a healthy probe
  admin,           // operator override
  fork,            // on a different chain than the pool's majority (fork vote)
};
const char* reason_name(Reason r);

class BackendHealth {
 public:
  explicit BackendHealth(HealthParams params = {});

  // Every method returns true when state() changed.
  bool on_probe(BackendState level, uint64_t now_ms);
  bool on_passive_failure(uint64_t now_ms);  // connect refused or timed out / reset
  bool on_response(int status, uint64_t now_ms, bool may_eject);  // live traffic
  // No answer within timeouts.response: counts in the 503 streak, never toward down.
  bool on_response_timeout(uint64_t now_ms, bool may_eject);
  bool tick(uint64_t now_ms);  // ends ejections whose time is over
  bool set_admin(std::optional<BackendState> forced);
  bool set_forked(bool forked);            // the fork vote's mark
  void set_params(const HealthParams& p);  // reload: applies to the next events

  BackendState state() const;
  Reason reason() const;
  BackendState probe_state() const { return probe_state_; }
  bool ejected() const { return ejected_; }
  bool forked() const { return forked_; }
  bool awaiting_probe() const { return awaiting_probe_; }  // ejection over, no healthy probe yet
  std::optional<BackendState> admin() const { return admin_; }  // the override in force
  uint32_t ejections() const { return ejections_; }             // total ejections so far
  uint64_t eject_until_ms() const { return eject_until_ms_; }   // 0 when not ejected
  uint32_t consecutive_503() const { return streak_503_; }

 private:
  void report(BackendState level);  // one probe-level report through the hysteresis
  void expire(uint64_t now_ms);     // ends an ejection whose time is over
  void eject(uint64_t now_ms);
  void overloaded(uint64_t now_ms, bool may_eject);  // one more 503 or timeout in the streak

  HealthParams p_;
  BackendState probe_state_ = BackendState::up;  // start up: serve before the first probe
  // Hysteresis runs, indexed by level: at_least_[l] counts the latest consecutive reports
  // at level l or worse, at_most_[l] those at level l or better (see backend_health.cpp).
  uint32_t at_least_[3] = {0, 0, 0};
  uint32_t at_most_[3] = {0, 0, 0};
  bool ejected_ = false;
  bool awaiting_probe_ = false;
  uint64_t eject_until_ms_ = 0;
  uint32_t ejections_ = 0;
  uint32_t eject_run_ = 0;          // ejections since the multiplier was last reset
  uint64_t last_eject_end_ms_ = 0;  // when the latest ejection's time ran out
  uint32_t streak_503_ = 0;
  std::optional<BackendState> admin_;
  bool forked_ = false;
};

}  // namespace health
