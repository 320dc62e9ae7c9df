#include "health/backend_health.h"

#include <algorithm>
#include <limits>

namespace health {

namespace {

constexpr size_t kLevels = 3;  // up, draining, down

size_t index(BackendState s) { return static_cast<size_t>(s); }
BackendState level_at(size_t i) { return static_cast<BackendState>(i); }

// Runs saturate: a backend that stays down for years must not wrap around to "healthy".
uint32_t bump(uint32_t n) { return n == std::numeric_limits<uint32_t>::max() ? n : n + 1; }

// base * 2^(run-1), capped at max, without overflow (Envoy: base_ejection_time times the
// number of ejections, capped by max_ejection_time; we double, as DESIGN.md says).
uint64_t eject_duration(uint64_t base, uint64_t max, uint32_t run) {
  uint64_t d = std::min(base, max);
  for (uint32_t i = 1; i < run && d < max; ++i) d = d > max / 2 ? max : d * 2;
  return d;
}

}  // namespace

const char* reason_name(Reason r) {
  switch (r) {
    case Reason::healthy:
      return "healthy";
    case Reason::probe_failing:
      return "probe_failing";
    case Reason::probe_behind:
      return "probe_behind";
    case Reason::ejected_503:
      return "ejected_503";
    case Reason::awaiting_probe:
      return "awaiting_probe";
    case Reason::admin:
      return "admin";
    case Reason::fork:
      return "fork";
  }
  return "unknown";
}

BackendHealth::BackendHealth(HealthParams params) : p_(params) {}

// Hysteresis over three levels (HAProxy's rise/fall, generalised). For every level l we
// keep two runs over the latest reports: at_least_[l] (consecutive reports at l or worse)
// and at_most_[l] (consecutive reports at l or better). A report that goes the other way
// breaks the run, which is the "reset the pending count" rule. Then:
//   - the state worsens to the worst level l whose at_least_ run has reached `fall`:
//     the target is the mildest level of the streak, since only that level has `fall`
//     reports "at that level or worse" (up->draining after draining,down,down);
//   - otherwise it improves to the best level l whose at_most_ run has reached `rise`:
//     the target is the worst level of the streak (down->draining after draining,up).
// A report cannot satisfy both: the first needs it worse than the state, the second
// better. Runs are not cleared on a transition, so a streak that has already moved the
// state one step carries on to the next as soon as it qualifies: with fall=3,
// draining,down,down,down goes draining at the 3rd report and down at the 4th, because
// the last three reports are then "down or worse". Counting restarted per step would
// need six reports and contradict the rule. rise/fall of 0 behave as 1.
void BackendHealth::report(BackendState level) {
  const size_t r = index(level);
  for (size_t l = 0; l < kLevels; ++l) {
    at_least_[l] = r >= l ? bump(at_least_[l]) : 0;
    at_most_[l] = r <= l ? bump(at_most_[l]) : 0;
  }
  const uint32_t fall = std::max<uint32_t>(p_.fall, 1);
  const uint32_t rise = std::max<uint32_t>(p_.rise, 1);
  const size_t cur = index(probe_state_);
  for (size_t l = kLevels - 1; l > cur; --l) {
    if (at_least_[l] >= fall) {
      probe_state_ = level_at(l);
      return;
    }
  }
  for (size_t l = 0; l < cur; ++l) {
    if (at_most_[l] >= rise) {
      probe_state_ = level_at(l);
      return;
    }
  }
}

// The ejection is over once its time has come, whoever notices first (tick or any other
// event), so that a healthy probe right after the deadline counts even if tick() has not
// run yet. The backend stays draining: the time only says when it may be looked at again.
void BackendHealth::expire(uint64_t now_ms) {
  if (!ejected_ || now_ms < eject_until_ms_) return;
  ejected_ = false;
  awaiting_probe_ = true;
  last_eject_end_ms_ = eject_until_ms_;
  eject_until_ms_ = 0;
}

// Envoy's outlier detection lowers its multiplier step by step while a host stays
// healthy; we use the simpler rule of the header: a backend that went max_eject_ms
// without an ejection starts again from base_time.
void BackendHealth::eject(uint64_t now_ms) {
  const bool decayed = eject_run_ > 0 && now_ms >= last_eject_end_ms_ &&
                       now_ms - last_eject_end_ms_ >= p_.max_eject_ms;
  eject_run_ = decayed ? 1 : bump(eject_run_);
  ejections_ = bump(ejections_);
  const uint64_t d = eject_duration(p_.base_eject_ms, p_.max_eject_ms, eject_run_);
  eject_until_ms_ = now_ms > std::numeric_limits<uint64_t>::max() - d
                        ? std::numeric_limits<uint64_t>::max()
                        : now_ms + d;
  ejected_ = true;
  awaiting_probe_ = false;
  streak_503_ = 0;  // Envoy resets the consecutive counters on ejection too
}

bool BackendHealth::on_probe(BackendState level, uint64_t now_ms) {
  const BackendState before = state();
  expire(now_ms);
  report(level);
  // Only a probe after the ejection time can end the wait: one during the ejection says
  // nothing about whether the overload is over.
  if (awaiting_probe_ && level == BackendState::up) awaiting_probe_ = false;
  return state() != before;
}

bool BackendHealth::on_passive_failure(uint64_t now_ms) {
  const BackendState before = state();
  expire(now_ms);
  report(BackendState::down);
  return state() != before;
}

// 503s keep arriving from the pinned users of an ejected or awaiting backend; they are
// counted (consecutive_503() stays truthful) but do not start a new ejection until the
// backend is back in service, so an overload does not stretch its own back-off.
void BackendHealth::overloaded(uint64_t now_ms, bool may_eject) {
  streak_503_ = bump(streak_503_);
  if (p_.consecutive_503 > 0 && streak_503_ >= p_.consecutive_503 && may_eject && !ejected_ &&
      !awaiting_probe_)
    eject(now_ms);
}

bool BackendHealth::on_response(int status, uint64_t now_ms, bool may_eject) {
  const BackendState before = state();
  expire(now_ms);
  if (status != 503)
    streak_503_ = 0;
  else
    overloaded(now_ms, may_eject);
  return state() != before;
}

// A backend that answers probes but not one client's request in time is busy, not gone:
// the timeout joins the 503 streak (ejection within max_percent) and leaves the probe
// level alone, so no client can mark a healthy backend down by asking something slow.
bool BackendHealth::on_response_timeout(uint64_t now_ms, bool may_eject) {
  const BackendState before = state();
  expire(now_ms);
  overloaded(now_ms, may_eject);
  return state() != before;
}

bool BackendHealth::tick(uint64_t now_ms) {
  const BackendState before = state();
  expire(now_ms);
  return state() != before;
}

bool BackendHealth::set_admin(std::optional<BackendState> forced) {
  const BackendState before = state();
  admin_ = forced;
  return state() != before;
}

bool BackendHealth::set_forked(bool forked) {
  const BackendState before = state();
  forked_ = forked;
  return state() != before;
}

void BackendHealth::set_params(const HealthParams& p) { p_ = p; }

BackendState BackendHealth::state() const {
  if (admin_) return *admin_;
  if (forked_) return BackendState::down;
  BackendState s = probe_state_;
  if (ejected_ || awaiting_probe_) s = lb::worst(s, BackendState::draining);
  return s;
}

// The cause of the effective state: the override, then down, then the draining causes,
// ejection first because it carries a deadline the operator can read in /status.
Reason BackendHealth::reason() const {
  if (admin_) return Reason::admin;
  if (forked_) return Reason::fork;
  if (probe_state_ == BackendState::down) return Reason::probe_failing;
  if (ejected_) return Reason::ejected_503;
  if (awaiting_probe_) return Reason::awaiting_probe;
  if (probe_state_ == BackendState::draining) return Reason::probe_behind;
  return Reason::healthy;
}

}  // namespace health
