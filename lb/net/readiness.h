#pragma once
// When corral tells systemd it is ready (issue 14): every listener is bound (the caller
// starts this after binding) and the first health probe round has run, so the first
// requests are placed on backends whose state is known. A dead or hung backend must not
// hold readiness back for ever: after `bound_ms` READY=1 goes out anyway, and that bound is
// at most kMaxWaitMs whatever the probe intervals (systemd's TimeoutStartSec= is 90 s).
// READY=1 therefore means: the first probes ran, or the bound elapsed.
#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

namespace lb::net {

class Readiness {
 public:
  // The longest start-up waits for the first probe round (a pool probed every 10 minutes
  // would otherwise wait two of them).
  static constexpr uint64_t kMaxWaitMs = 30000;
  // A wait longer than this asks systemd for the time (EXTEND_TIMEOUT_USEC=) first.
  static constexpr uint64_t kExtendAfterMs = 5000;

  // done(): the first probe round has finished. status(): the STATUS= text for READY=1.
  Readiness(uv_loop_t* loop, std::function<bool()> done, std::function<std::string()> status);
  ~Readiness();
  Readiness(const Readiness&) = delete;
  Readiness& operator=(const Readiness&) = delete;

  // Starts waiting; READY=1 is sent when done() holds or bound_ms have passed.
  void start(uint64_t bound_ms);
  // Stops waiting (a stop began before readiness); closes the timer.
  void close();
  bool ready() const { return ready_; }

  // How long start-up may wait for the first probe round: the latest a first probe
  // starts (within a fifth of its interval, see HealthMonitor::arm) plus its timeout,
  // over all pools, and a little slack for the answer to be handled; kMaxWaitMs at most.
  // Pure.
  static uint64_t bound_for(uint64_t interval_ms, uint64_t timeout_ms);

 private:
  static void on_timer(uv_timer_t* t);
  void check();

  uv_loop_t* loop_;
  std::function<bool()> done_;
  std::function<std::string()> status_;
  uv_timer_t* timer_ = nullptr;  // heap: closed asynchronously
  uint64_t deadline_ms_ = 0;
  bool ready_ = false;
};

}  // namespace lb::net
