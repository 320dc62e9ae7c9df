#pragma once
// Runs health checking on the control loop (DESIGN.md "Health"): one probe timer per
// backend (interval with ±10% jitter so a fleet is not probed in lockstep), lag folded in
// per pool, passive events from the workers, 503 ejections bounded by max_percent, and
// an operator override. The state machines (health::BackendHealth) live here; workers
// see only the resulting BackendStats::state.
#include <uv.h>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "health/backend_health.h"
#include "health/probe_result.h"
#include "lb/net/proxy_state.h"

namespace lb::net {

struct Transition {
  uint64_t at_ms = 0;  // wall clock, ms since epoch
  std::string backend;
  BackendState from = BackendState::up;
  BackendState to = BackendState::up;
  std::string why;
};

class HealthMonitor {
 public:
  struct Entry {
    std::string pool, name;
    size_t pool_index = 0;
    health::BackendHealth sm;
    health::ProbeResult last;
    bool probed = false;  // at least one probe answered
    bool lagging = false;
    uint64_t lag_slots = 0;  // behind the pool's best tip
    uint64_t probes_up = 0, probes_draining = 0, probes_down = 0;
    uint64_t transitions = 0;
    HealthMonitor* monitor = nullptr;
    BackendRef ref = 0;
    const RuntimeBackend* backend = nullptr;  // in rt_, refreshed by sync()
    std::unique_ptr<uv_timer_t> timer;
    bool in_flight = false;
    bool removed = false;
  };

  HealthMonitor(uv_loop_t* loop, ProxyState& state);
  ~HealthMonitor();
  // (Re)builds entries from the current runtime: kept backends keep their state machines.
  void sync();
  void stop();

  // Operator override by backend name; nullopt clears it. False if no such backend.
  bool set_admin(const std::string& name, std::optional<BackendState> forced);

  const Entry* find(BackendRef ref) const;
  const std::deque<Transition>& transitions() const { return transitions_; }

 private:
  static void on_probe_timer(uv_timer_t* t);
  static void on_async(uv_async_t* a);
  static void on_tick(uv_timer_t* t);
  void start_probe(Entry& e);
  void on_answer(BackendRef ref, health::ProbeResult r);
  void fold_lag(size_t pool_index);
  void apply_events();
  void publish(Entry& e, BackendState before, const char* why);
  void arm(Entry& e, bool first);
  bool may_eject(const Entry& e) const;

  uv_loop_t* loop_;
  ProxyState& state_;
  std::shared_ptr<const Runtime> rt_;
  std::map<BackendRef, std::unique_ptr<Entry>> entries_;
  std::deque<Transition> transitions_;  // the most recent, newest last
  std::vector<PassiveEvent> events_;
  uv_async_t async_{};
  uv_timer_t tick_{};
  bool stopped_ = false;
};

}  // namespace lb::net
