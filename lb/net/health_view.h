#pragma once
// What the admin listener may know of health (DESIGN.md "Observability"): a read-only
// view per backend and the recent transitions, plus the one command it gives (an
// operator's override). The health monitor implements it; the admin server never sees
// the monitor's state machines or timers.
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "lb/core/backend_ref.h"
#include "lb/core/backend_state.h"

namespace lb::net {

struct Transition {
  uint64_t at_ms = 0;  // wall clock, ms since epoch
  std::string backend;
  BackendState from = BackendState::up;
  BackendState to = BackendState::up;
  std::string why;
};

// One backend's health as /status and /metrics show it.
struct BackendHealthView {
  BackendState state = BackendState::up;  // as published to the workers
  BackendState probe_state = BackendState::up;
  const char* reason = "healthy";  // health::reason_name
  std::string last_probe;          // "not yet probed" before the first answer
  bool lagging = false;
  uint64_t lag_slots = 0;
  uint32_t ejections = 0;
  bool ejected = false;
  uint64_t eject_ms_left = 0;
  uint32_t consecutive_503 = 0;
  uint64_t probes_up = 0, probes_draining = 0, probes_down = 0;
  uint64_t transitions = 0;
  std::optional<BackendState> admin;  // the operator's override in force
  double slow_start = 1.0;            // share of new users while ramping; 1 = not ramping
};

// Fork-check rounds of one pool so far, by result: the probes' rounds
// (corral_fork_checks_total{pool,result}) or live traffic's (corral_fork_live_checks_total).
struct ForkChecks {
  uint64_t agree = 0, disagree = 0, no_majority = 0;
};

class HealthView {
 public:
  virtual ~HealthView() = default;
  // The view of a backend of the current config at now_ms (the control loop's uv_now);
  // nullopt for a ref health does not follow.
  virtual std::optional<BackendHealthView> backend(BackendRef ref, uint64_t now_ms) const = 0;
  // The most recent state changes, newest last.
  virtual const std::deque<Transition>& transitions() const = 0;
  // The operator's override by backend name (POST /backends/NAME/...); nullopt clears
  // it. False if no backend has that name.
  virtual bool set_admin(const std::string& name, std::optional<BackendState> forced) = 0;
  // Fork-check rounds of a pool by result (the probes', or live traffic's when `live`);
  // zeros for a pool never checked.
  virtual ForkChecks fork_checks(const std::string& pool, bool live = false) const {
    (void)pool;
    (void)live;
    return {};
  }
};

}  // namespace lb::net
