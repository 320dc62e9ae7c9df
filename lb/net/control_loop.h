#pragma once
// The control thread (DESIGN.md "Programs", "Reload"): owns the shared proxy state, the
// workers, the health monitor and the admin listener, and runs the control loop:
// SIGHUP reloads the config file, SIGTERM/SIGINT stop gracefully, a timer sweeps idle
// pins, backend host names are re-resolved (resolver.h), and the state file is read at start and
// written at stop. main() parses the arguments, loads the config and hands both over.
#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "lb/core/pin_snapshot.h"
#include "lb/net/proxy_state.h"

namespace lb::admin {
class AdminServer;
}

namespace lb::net {

class HealthMonitor;
class PassedSockets;
class Readiness;
class Resolver;
class StoreControl;
class Worker;
struct BoundSocket;

// Holds SIGHUP, SIGTERM, SIGINT and SIGUSR1 pending in the calling thread. Call it on main's first
// line, before any thread exists, so that every thread inherits the mask: a signal that
// arrives while corral starts waits instead of killing it (SIGHUP's default action), and
// ControlLoop::run() releases it once its handlers are in place, so it is handled then.
void hold_control_signals();

struct ControlOptions {
  std::string config_path;        // empty: the embedded config; SIGHUP has nothing to reload
  std::string version;            // for the log and /status
  std::function<void()> on_stop;  // runs when stopping starts (--demo closes its fleet)
};

class ControlLoop {
 public:
  ControlLoop(uv_loop_t* loop, const config::Config& cfg, ControlOptions options);
  ~ControlLoop();
  ControlLoop(const ControlLoop&) = delete;
  ControlLoop& operator=(const ControlLoop&) = delete;

  // Installs the signal handlers, loads the state file, binds the listeners and the
  // admin listener, starts health and the workers, releases held signals, announces
  // "running" and serves until SIGTERM/SIGINT; then lets the workers finish and writes
  // the state file. Returns the exit code: 0, or 1 when start-up fails.
  int run();

 private:
  static void on_signal(uv_signal_t* s, int signum);
  static void on_sweep(uv_timer_t* t);
  void start_signals();
  void check_fd_limit(const config::Config& cfg, unsigned nworkers);
  void load_state();
  // verbose: log the pins saved (at stop; the periodic quota flush is quiet unless it fails).
  void save_state(bool verbose = true);
  std::vector<QuotaRecord> quota_records() const;
  void flush_quotas();
  // Binds (or takes from systemd) one socket per worker for listener l into out. probe:
  // refuse an address another process listens on (listen_probe.h); false when corral owns
  // it already (a reload moving a listener to an address one of its own listeners holds).
  bool open_listener(const config::Listener& l, unsigned nworkers,
                     const std::vector<std::string>& names, bool probe,
                     std::vector<std::vector<BoundSocket>>& out, std::string& err);
  // SIGHUP: tells systemd (RELOADING=1, then READY=1 with the outcome) around reload_config.
  void reload();
  void reload_config();
  void reload_failed(const std::string& what);
  std::string ready_status() const;
  void stop(const char* why);

  uv_loop_t* loop_;
  ControlOptions options_;
  ProxyState state_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<HealthMonitor> health_;
  std::unique_ptr<Resolver> resolver_;  // re-resolves backend host names
  // sticky.store: fleet counts, the flush of queued writes, other instances' messages.
  // Destroyed at stop, so its links close while the loop still runs.
  std::unique_ptr<StoreControl> store_;
  std::unique_ptr<admin::AdminServer> admin_;
  std::unique_ptr<PassedSockets> passed_;  // socket activation (passed_sockets.h)
  std::unique_ptr<Readiness> readiness_;   // READY=1 for systemd (readiness.h)
  uv_signal_t sigint_{}, sigterm_{}, sighup_{}, sigusr1_{};
  uv_timer_t sweep_{};
  bool signals_started_ = false;
  bool stopping_ = false;
  bool fd_limit_checked_ = false;
  uint64_t fd_soft_limit_ = 0;  // RLIMIT_NOFILE in force after start
  unsigned sweeps_ = 0;
  std::vector<QuotaRecord> saved_quotas_;  // the daily counts the state file holds
};

}  // namespace lb::net
