#include "lb/net/control_loop.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "config/diff.h"
#include "config/loader.h"
#include "config/stable_read.h"
#include "lb/admin/admin_server.h"
#include "lb/net/access_log.h"
#include "lb/net/fd_limit.h"
#include "lb/net/file_exposure.h"
#include "lb/net/health_monitor.h"
#include "lb/net/listen_probe.h"
#include "lb/net/log.h"
#include "lb/net/log_config.h"
#include "lb/net/passed_sockets.h"
#include "lb/net/readiness.h"
#include "lb/net/resolver.h"
#include "lb/net/runtime.h"
#include "lb/net/sd_notify.h"
#include "lb/net/socket_address.h"
#include "lb/net/state_file.h"
#include "lb/net/store_control.h"
#include "lb/net/wall_clock.h"
#include "lb/net/worker.h"

namespace lb::net {
namespace {

constexpr uint64_t kSweepMs = 1000;
// Daily quota counts reach the state file this often (in sweeps) while they change, so a
// crash loses at most this much of the day's count.
constexpr unsigned kQuotaFlushSweeps = 10;
// Reload reads the config until two reads this far apart agree, this many reads at most
// (about 2 s for a writer to finish).
constexpr int kReloadReads = 20;
constexpr uint64_t kReloadGapMs = 100;
// After stop_timeout the workers are joined and the state file written: this long at most.
constexpr uint64_t kStopMarginMs = 5000;

sigset_t control_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR1);
  return set;
}

std::vector<std::string> listener_names(const config::Config& cfg) {
  std::vector<std::string> out;
  for (const config::Listener& l : cfg.listeners) out.push_back(l.name);
  return out;
}

std::vector<ListenerAddress> listener_addresses(const config::Config& cfg) {
  std::vector<ListenerAddress> out;
  for (const config::Listener& l : cfg.listeners)
    out.push_back({l.name, l.listen.host, l.listen.port});
  return out;
}

}  // namespace

void hold_control_signals() {
  sigset_t set = control_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

ControlLoop::ControlLoop(uv_loop_t* loop, const config::Config& cfg, ControlOptions options)
    : loop_(loop),
      options_(std::move(options)),
      state_(cfg.sticky.max_sessions, cfg.sticky.ttl_ms) {
  apply_log_config(cfg.log);  // before any line the config's format applies to
  state_.runtime.store(build_runtime(cfg, state_.registry));
}

ControlLoop::~ControlLoop() {
  // A start-up that failed leaves the handlers registered with libuv; a late signal must
  // not reach freed handles.
  if (signals_started_ && !stopping_)
    for (uv_signal_t* s : {&sigint_, &sigterm_, &sighup_, &sigusr1_}) uv_signal_stop(s);
}

bool ControlLoop::open_listener(const config::Listener& l, unsigned nworkers,
                                const std::vector<std::string>& names, bool probe,
                                std::vector<std::vector<BoundSocket>>& out, std::string& err) {
  std::vector<int> fds;
  std::string where;
  if (PassedSocket* ps = passed_->find(l.name, l.listen.host, l.listen.port, names)) {
    // systemd's socket, as it is: every worker polls a duplicate of the one socket.
    if (!PassedSockets::duplicate(*ps, nworkers, fds, err)) {
      err = "listener " + l.name + ": " + err;
      return false;
    }
    ps->used = true;
    where = format_endpoint(ps->addr);
    // Matched by name, the socket is served wherever systemd bound it: a different
    // configured address would otherwise be ignored without a word.
    if (l.listen.port != 0 && !PassedSockets::bound_to(*ps, l.listen.host, l.listen.port))
      logf(LogLevel::warn,
           "listener %s: the socket passed by systemd (name %s) is bound to %s, not to the "
           "configured listen %s; serving on %s (the socket unit owns the address)",
           l.name.c_str(), ps->name.c_str(), where.c_str(),
           endpoint_text(l.listen.host, l.listen.port).c_str(), where.c_str());
    logf(LogLevel::info, "listener %s uses the socket passed by systemd (fd %d, name %s)",
         l.name.c_str(), ps->fd, ps->name.c_str());
  } else {
    if (probe) {
      if (std::string busy = probe_listen_address(l.listen.host, l.listen.port); !busy.empty()) {
        err = "listener \"" + l.name + "\" " + endpoint_text(l.listen.host, l.listen.port) + ": " +
              busy;
        return false;
      }
    }
    uint16_t port = 0;
    if (!bind_reuseport(l.listen.host, l.listen.port, 1024, nworkers, fds, port, err)) {
      err = "listener " + l.name + ": " + err;
      return false;
    }
    where = endpoint_text(l.listen.host, port);
  }
  for (unsigned i = 0; i < nworkers; ++i) out[i].push_back({l.name, fds[i]});
  logf(LogLevel::info, "listening %s %s", l.name.c_str(), where.c_str());
  return true;
}

void ControlLoop::start_signals() {
  for (auto [sig, h] : {std::pair{SIGINT, &sigint_}, std::pair{SIGTERM, &sigterm_},
                        std::pair{SIGHUP, &sighup_}, std::pair{SIGUSR1, &sigusr1_}}) {
    uv_signal_init(loop_, h);
    h->data = this;
    uv_signal_start(h, &ControlLoop::on_signal, sig);
  }
  signals_started_ = true;
}

int ControlLoop::run() {
  // Handlers first: from here on a held signal has somewhere to go.
  start_signals();
  const config::Config& cfg = state_.runtime.load()->config;
  if (!cfg.state_file.empty()) load_state();

  unsigned nworkers = cfg.workers == 0 ? 1 : cfg.workers;
  check_fd_limit(cfg, nworkers);
  std::vector<std::vector<BoundSocket>> sockets(nworkers);
  passed_ = std::make_unique<PassedSockets>();
  if (std::string err; !passed_->take_from_environment(err)) {
    logf(LogLevel::error, "%s", err.c_str());
    return 1;
  }
  const std::vector<std::string> names = listener_names(cfg);
  for (const config::Listener& l : cfg.listeners) {
    std::string err;
    if (!open_listener(l, nworkers, names, true, sockets, err)) {
      logf(LogLevel::error, "%s", err.c_str());
      return 1;
    }
  }
  // A socket systemd passed that no listener takes would queue connections nobody
  // accepts: refuse to start rather than ignore it.
  for (const PassedSocket& ps : passed_->sockets())
    if (!ps.used) {
      logf(LogLevel::error, "%s", PassedSockets::unmatched_error(ps).c_str());
      return 1;
    }

  health_ = std::make_unique<HealthMonitor>(loop_, state_);
  admin_ = std::make_unique<admin::AdminServer>(
      loop_, state_, *health_,
      admin::ProcessInfo{nworkers, uv_now(loop_), wall_ms(), options_.version});
  // The admin socket binds without SO_REUSEPORT, so anybody listening there makes its
  // own bind fail: no probe needed, only the listeners' wording for it.
  if (int rc = admin_->listen(cfg.admin.listen.host, cfg.admin.listen.port); rc != 0) {
    logf(LogLevel::error, "admin listener %s: %s",
         endpoint_text(cfg.admin.listen.host, cfg.admin.listen.port).c_str(),
         rc == UV_EADDRINUSE ? kAddressInUse : uv_strerror(rc));
    return 1;
  }
  logf(LogLevel::info, "admin listening %s:%u", cfg.admin.listen.host.c_str(), admin_->port());
  warn_exposed(cfg);  // secret files others can read, an open admin listener
  // Said once, so that an operator wondering where corral_disk_free_bytes went finds why.
  if (cfg.monitor.disk_paths.empty())
    logf(LogLevel::info,
         "disk metrics are off: no state_file and no monitor.disk_paths; set "
         "monitor: {disk_paths: [DIR]} to export corral_disk_free_bytes for DIR");

  // Before the workers: the instance id is made here, and they read it.
  store_ = std::make_unique<StoreControl>(loop_, state_);
  store_->configure(*state_.runtime.load());
  // Worker threads inherit the held mask, so signals reach only this thread's handlers.
  for (unsigned i = 0; i < nworkers; ++i) {
    workers_.push_back(std::make_unique<Worker>(state_, i));
    workers_.back()->start(std::move(sockets[i]));
  }
  resolver_ = std::make_unique<Resolver>(loop_, state_);
  resolver_->start();
  uv_timer_init(loop_, &sweep_);
  sweep_.data = this;
  uv_timer_start(&sweep_, &ControlLoop::on_sweep, kSweepMs, kSweepMs);

  // A signal held since main's first line is delivered now; libuv queues it for the loop,
  // which handles it right after the announcement.
  sigset_t set = control_signals();
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  logf(LogLevel::info, "corral %s running: %u worker(s), config %s", options_.version.c_str(),
       nworkers, cfg.source.c_str());
  uint64_t bound_ms = 0;
  for (const config::Pool& p : cfg.pools)
    bound_ms = std::max(bound_ms, Readiness::bound_for(p.health.interval_ms, p.health.timeout_ms));
  readiness_ = std::make_unique<Readiness>(
      loop_, [this] { return health_->first_round_done(); }, [this] { return ready_status(); });
  readiness_->start(bound_ms);

  uv_run(loop_, UV_RUN_DEFAULT);  // returns once stop() closed the control handles
  for (auto& w : workers_) w->join();
  access_log_shutdown();  // the workers wrote their last lines
  save_state();
  uv_run(loop_, UV_RUN_DEFAULT);
  logf(LogLevel::info, "stopped");
  return 0;
}

// Raises the descriptor limit once (at start) and warns when the config could need more
// descriptors than the process may open: running out is corral's own failure (503s,
// refused clients), so the operator should hear of it before traffic does.
void ControlLoop::check_fd_limit(const config::Config& cfg, unsigned nworkers) {
  if (!fd_limit_checked_) {
    fd_limit_checked_ = true;
    FdLimit lim = raise_fd_limit();
    fd_soft_limit_ = lim.soft;
    if (!lim.error.empty()) logf(LogLevel::warn, "file descriptor limit: %s", lim.error.c_str());
    if (lim.soft != lim.before)
      logf(LogLevel::info, "file descriptor limit %llu (raised from %llu to the hard limit)",
           static_cast<unsigned long long>(lim.soft), static_cast<unsigned long long>(lim.before));
    else
      logf(LogLevel::info, "file descriptor limit %llu (the hard limit is %llu)",
           static_cast<unsigned long long>(lim.soft), static_cast<unsigned long long>(lim.hard));
  }
  const uint64_t need = fds_needed(cfg, nworkers, admin::kMaxConnections);
  if (fd_soft_limit_ != 0 && need > fd_soft_limit_)
    logf(LogLevel::warn,
         "limits.max_connections %llu may need up to %llu file descriptors (each client, its "
         "upstream connection, idle upstream pools, probes, admin) but the limit is %llu: "
         "raise it (ulimit -n, systemd LimitNOFILE=) or lower max_connections; when they run "
         "out clients get 503",
         static_cast<unsigned long long>(cfg.limits.max_connections),
         static_cast<unsigned long long>(need), static_cast<unsigned long long>(fd_soft_limit_));
}

// Pins from the previous run (DESIGN.md "Reload"): kept for backends still configured.
void ControlLoop::load_state() {
  const config::Config& cfg = state_.runtime.load()->config;
  auto resolve = [&](std::string_view name) -> std::optional<BackendRef> {
    size_t slash = name.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    return state_.registry.find(std::string(name.substr(0, slash)),
                                std::string(name.substr(slash + 1)));
  };
  LoadReport r = load_pins(cfg.state_file, state_.sessions, resolve, uv_now(loop_), wall_ms(),
                           cfg.sticky.ttl_ms);
  // Daily counts from the same UTC day carry on, so a restart hands out no fresh quota.
  const uint64_t unix_now = wall_ms();
  for (const QuotaRecord& q : r.quotas) {
    std::shared_ptr<QuotaGuard> g = state_.registry.find_quota(q.pool);
    if (g && g->restore_daily(q.day, q.used, unix_now))
      logf(LogLevel::info, "state file %s: pool %s has used %llu requests today (UTC)",
           cfg.state_file.c_str(), q.pool.c_str(), static_cast<unsigned long long>(q.used));
  }
  saved_quotas_ = quota_records();
  if (!r.error.empty())
    logf(LogLevel::warn, "state file %s: %s; ignored", cfg.state_file.c_str(), r.error.c_str());
  else if (r.missing)
    logf(LogLevel::info, "state file %s: none yet", cfg.state_file.c_str());
  else
    logf(LogLevel::info,
         "state file %s: loaded %zu pins (dropped %zu for removed backends, %zu expired)",
         cfg.state_file.c_str(), r.loaded, r.dropped_unknown, r.dropped_expired);
}

// The daily count of every rate-limited pool with one (pools without a daily quota have
// nothing to carry over).
std::vector<QuotaRecord> ControlLoop::quota_records() const {
  std::vector<QuotaRecord> out;
  state_.registry.for_each_quota([&](const std::string& pool, QuotaGuard& g) {
    if (g.limits().daily == 0) return;
    auto [day, used] = g.daily_count();
    out.push_back(QuotaRecord{pool, day, used});
  });
  return out;
}

// Every kQuotaFlushSweeps: the state file is rewritten when a daily count moved since it
// was last written. Pins go with it (one file, one atomic rename), so they survive a crash
// too, as of the last flush.
void ControlLoop::flush_quotas() {
  const std::string& path = state_.runtime.load()->config.state_file;
  if (path.empty()) return;
  std::vector<QuotaRecord> now = quota_records();
  if (now == saved_quotas_) return;
  save_state(false);
}

void ControlLoop::save_state(bool verbose) {
  const std::string& path = state_.runtime.load()->config.state_file;
  if (path.empty()) return;
  std::vector<QuotaRecord> quotas = quota_records();
  std::string err = save_pins(
      path, state_.sessions, [&](BackendRef ref) { return state_.registry.name_of(ref); },
      uv_now(loop_), wall_ms(), quotas);
  if (err.empty()) saved_quotas_ = std::move(quotas);
  if (err.empty() && !verbose) return;
  if (err.empty())
    logf(LogLevel::info, "state file %s: saved %llu pins", path.c_str(),
         static_cast<unsigned long long>(state_.sessions.stats().size));
  else
    logf(LogLevel::error, "state file %s: %s", path.c_str(), err.c_str());
}

void ControlLoop::reload_failed(const std::string& what) {
  state_.reloads_failed.fetch_add(1);
  const uint64_t unix_ms = wall_ms();
  state_.last_reload = ReloadRecord{false, unix_ms};
  state_.last_reload_error = what;
  state_.last_reload_error_unix_ms = unix_ms;
  logf(LogLevel::error, "config reload failed: %s", what.c_str());
}

// What `systemctl status` shows while corral serves.
std::string ControlLoop::ready_status() const {
  auto rt = state_.runtime.load();
  size_t up = 0, total = 0;
  for (const RuntimePool& p : rt->pools)
    for (const RuntimeBackend& b : p.backends) {
      ++total;
      up += b.stats->state.load() == BackendState::up;
    }
  return "serving " + std::to_string(rt->config.listeners.size()) + " listener(s) on " +
         std::to_string(workers_.size()) + " worker(s); " + std::to_string(up) + " of " +
         std::to_string(total) + " backends up";
}

void ControlLoop::reload() {
  if (options_.config_path.empty()) {
    logf(LogLevel::warn, "SIGHUP: running on the embedded config, nothing to reload");
    return;
  }
  // Before start-up readiness, the pending READY=1 covers the reload too.
  const bool tell = readiness_ && readiness_->ready();
  if (tell) notify_reloading("reloading " + options_.config_path);
  const uint64_t failed_before = state_.reloads_failed.load();
  reload_config();
  if (!tell) return;
  if (state_.reloads_failed.load() != failed_before)
    notify_ready("reload failed, running the previous config: " + state_.last_reload_error);
  else
    notify_ready("config reloaded; " + ready_status());
}

// A bad file changes nothing; a good one is published to every worker at once. Listeners
// with the same name and address keep their sockets; new ones are bound before anything
// is published, so a port in use fails the reload (one another process listens on is caught
// by the probe bind; an address one of corral's own listeners holds is not probed).
void ControlLoop::reload_config() {
  // A file caught half-written must not load: wait until two reads agree. Blocking the
  // control thread briefly is fine here (workers keep serving; probes wait a moment).
  config::StableRead text = config::read_stable(
      options_.config_path, kReloadReads, kReloadGapMs,
      [](uint64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); });
  if (!text.error.empty())
    return reload_failed(options_.config_path + ": " + text.error +
                         "; keeping the running config (replace the file atomically: write a "
                         "temporary file, then rename it)");
  config::LoadResult r = config::load_file_text(options_.config_path, text.body);
  if (!r.config) {
    std::string what = r.errors.front().str();
    if (r.errors.size() > 1) what += " (and " + std::to_string(r.errors.size() - 1) + " more)";
    return reload_failed(what);
  }
  const config::Config& next = *r.config;
  const config::Config& prev = state_.runtime.load()->config;
  unsigned n = static_cast<unsigned>(workers_.size());
  std::vector<std::vector<BoundSocket>> add(n);
  std::vector<std::string> remove;
  auto same = [](const config::Listener& a, const config::Listener& b) {
    return a.name == b.name && a.listen.text == b.listen.text;
  };
  for (const config::Listener& l : prev.listeners) {
    bool kept = false;
    for (const config::Listener& m : next.listeners) kept = kept || same(l, m);
    if (!kept) remove.push_back(l.name);
  }
  // A passed socket the new config leaves without its listener (dropped or renamed) would
  // keep queueing connections nobody accepts: refused, as at start.
  if (PassedSocket* ps = passed_->unmatched(listener_addresses(next)))
    return reload_failed(PassedSockets::unmatched_error(*ps));
  const std::vector<std::string> names = listener_names(next);
  for (const config::Listener& l : next.listeners) {
    bool kept = false, owned = false;
    for (const config::Listener& m : prev.listeners) {
      kept = kept || same(l, m);
      owned = owned || (m.listen.host == l.listen.host && m.listen.port == l.listen.port);
    }
    if (kept) continue;
    std::string err;
    if (!open_listener(l, n, names, !owned, add, err)) {
      for (auto& per_worker : add)
        for (BoundSocket& b : per_worker) ::close(b.fd);
      return reload_failed(options_.config_path + ": " + err);
    }
  }
  if (next.workers != prev.workers || next.admin.listen.text != prev.admin.listen.text)
    logf(LogLevel::warn, "reload: workers and admin.listen apply at the next start");
  const std::string changes = config::join_changes(config::describe_changes(prev, next));
  state_.sessions.set_limits(next.sticky.max_sessions, next.sticky.ttl_ms);
  // The running snapshot lends its TLS contexts to listeners whose pair did not change.
  state_.runtime.store(build_runtime(next, state_.registry, state_.runtime.load().get()));
  health_->sync();
  if (store_) store_->configure(*state_.runtime.load());
  apply_log_config(next.log);
  for (unsigned i = 0; i < n; ++i) workers_[i]->reload(std::move(add[i]), remove);
  state_.reloads_ok.fetch_add(1);
  state_.last_reload = ReloadRecord{true, wall_ms()};  // the last failure stays on record
  for (const std::string& name : remove)
    logf(LogLevel::info, "listener %s closed; its connections finish", name.c_str());
  logf(LogLevel::info, "config reloaded from %s: %s", options_.config_path.c_str(),
       changes.c_str());
  check_fd_limit(state_.runtime.load()->config, n);
  warn_exposed(state_.runtime.load()->config);
}

void ControlLoop::stop(const char* why) {
  if (stopping_) return;
  stopping_ = true;
  logf(LogLevel::info, "%s: stopping; finishing in-flight requests", why);
  uint64_t deadline = state_.runtime.load()->config.stop_timeout_ms;
  // systemd's TimeoutStopSec= (30 s in the unit) would kill a longer stop_timeout half-way:
  // the stop asks for what it needs.
  notify_stopping(std::string(why) + ": stopping, finishing in-flight requests",
                  deadline + kStopMarginMs);
  if (readiness_) readiness_->close();
  for (auto& w : workers_) w->stop(deadline);
  for (uv_signal_t* s : {&sigint_, &sigterm_, &sighup_, &sigusr1_})
    uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sweep_), nullptr);
  admin_->close();
  health_->stop();
  resolver_->stop();
  store_.reset();  // its links and timer close while the loop runs on
  if (options_.on_stop) options_.on_stop();
}

void ControlLoop::on_signal(uv_signal_t* s, int signum) {
  auto* c = static_cast<ControlLoop*>(s->data);
  if (signum == SIGHUP) {
    c->reload();
  } else if (signum == SIGUSR1) {
    // logrotate renamed the access log: the writer opens the file by its name again.
    logf(LogLevel::info, "SIGUSR1: reopening the access log");
    access_log_reopen();
  } else {
    c->stop(signum == SIGINT ? "SIGINT" : "SIGTERM");
  }
}

void ControlLoop::on_sweep(uv_timer_t* t) {
  auto* c = static_cast<ControlLoop*>(t->data);
  c->state_.sessions.sweep(uv_now(c->loop_), 4096);
  if (++c->sweeps_ % kQuotaFlushSweeps == 0) c->flush_quotas();
}

}  // namespace lb::net
