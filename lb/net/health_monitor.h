#pragma once
// Runs health checking on the control loop (DESIGN.md "Health"), the libuv shell around
// the pure pool policy (health::PoolHealth): one probe timer per backend (interval with
// ±10% jitter so a fleet is not probed in lockstep), probe answers and the workers'
// passive events in, published states out. Workers see only BackendStats: the state,
// whether an operator forced it, and when its slow start began.
#include <uv.h>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "health/pool_policy.h"
#include "lb/net/health_view.h"
#include "lb/net/proxy_state.h"

namespace lb::net {

class HealthMonitor final : public HealthView {
 public:
  HealthMonitor(uv_loop_t* loop, ProxyState& state);
  ~HealthMonitor() override;
  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;

  // (Re)builds from the current runtime: kept backends keep their state machines; a
  // backend that a reload adds starts its slow start (the first call, at start, does not).
  void sync();
  void stop();
  // Every backend has had its first probe answered (or failed): start-up readiness.
  bool first_round_done() const;

  // HealthView
  bool set_admin(const std::string& name, std::optional<BackendState> forced) override;
  std::optional<BackendHealthView> backend(BackendRef ref, uint64_t now_ms) const override;
  const std::deque<Transition>& transitions() const override { return transitions_; }
  ForkChecks fork_checks(const std::string& pool, bool live = false) const override;

 private:
  // The libuv side of one backend: its probe timer and where its record lives.
  struct Probe {
    HealthMonitor* monitor = nullptr;
    BackendRef ref = 0;
    std::string pool, name;
    size_t pool_index = 0;  // in rt_->pools and pools_, refreshed by sync()
    size_t member = 0;      // in the pool's backends and policy, refreshed by sync()
    const RuntimeBackend* backend = nullptr;  // in rt_, refreshed by sync()
    std::unique_ptr<uv_timer_t> timer;
    bool in_flight = false;
    bool removed = false;
    bool answered = false;  // a first probe has come back (first_round_done)
  };
  // What the pool can serve with, for the once-per-change warnings (check_pool).
  enum class Serving : uint8_t { unknown, ok, no_up, none };
  struct ForkRound;  // a Kupo fork check in flight (fork_check.cpp)
  struct Pool {
    std::string name;
    health::PoolHealth policy;
    Serving serving = Serving::unknown;
    ForkChecks forks;       // probe rounds by result, kept across reloads
    ForkChecks live_forks;  // live-traffic rounds by result, kept across reloads
    // The slot the last live round (Kupo) compared: the next one needs newer evidence, so
    // one observation never counts twice.
    uint64_t round_slot = 0;
    uint64_t next_fork_ms = 0;         // when the next fork round may start
    std::shared_ptr<ForkRound> round;  // in flight; null when idle
  };

  static void on_probe_timer(uv_timer_t* t);
  static void on_async(uv_async_t* a);
  static void on_tick(uv_timer_t* t);
  void start_probe(Probe& p);
  void probe_address(Probe& p, std::shared_ptr<const AddressBook::List> addrs, size_t tried);
  void probe_skipped(BackendRef ref, const std::string& why);
  void on_answer(BackendRef ref, health::ProbeResult r);
  void apply_events();
  void publish(const Probe& p, const health::Change& c);
  void arm(Probe& p, bool first);
  void check_pool(size_t pool_index);
  // Chain-aware health (issue 13): live tips in, evictions out, fork rounds.
  void note_live_tips(size_t pool_index);
  void publish_evictions(size_t pool_index);
  // The pool's best tip into its cache (slot-bound rules), when it has one; 0 = unknown.
  void publish_best_tip(size_t pool_index);
  void maybe_check_forks(size_t pool_index, uint64_t now_ms);
  void start_kupo_round(size_t pool_index, uint64_t slot);
  void live_fork_round(size_t pool_index, uint64_t max_slot);
  // `slot`: the compared slot (0 for Kupo probes: fork_check_slot's).
  void finish_fork_round(size_t pool_index, std::span<const health::Ballot> ballots,
                         health::ForkSource source, uint64_t slot = 0);
  health::PoolHealth& policy(const Probe& p) { return pools_[p.pool_index].policy; }

  uv_loop_t* loop_;
  ProxyState& state_;
  std::shared_ptr<const Runtime> rt_;
  std::vector<Pool> pools_;  // indexed like rt_->pools
  std::map<BackendRef, std::unique_ptr<Probe>> probes_;
  std::deque<Transition> transitions_;  // the most recent, newest last
  std::vector<PassiveEvent> events_;
  uv_async_t async_{};
  uv_timer_t tick_{};
  bool synced_ = false;   // the first sync() (process start) has run
  bool syncing_ = false;  // inside sync(): pools are checked once at its end
  bool stopped_ = false;
};

}  // namespace lb::net
