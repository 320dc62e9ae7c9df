#include "lb/net/health_monitor.h"

#include <chrono>
#include <random>

#include "lb/core/balancer.h"
#include "lb/net/http_probe.h"
#include "lb/net/log.h"
#include "lb/net/quota_check.h"
#include "lb/net/wall_clock.h"

namespace lb::net {
namespace {

constexpr size_t kMaxTransitions = 64;
constexpr uint64_t kTickMs = 100;

void close_timer(std::unique_ptr<uv_timer_t> t) {
  uv_close(reinterpret_cast<uv_handle_t*>(t.release()),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

}  // namespace

HealthMonitor::HealthMonitor(uv_loop_t* loop, ProxyState& state) : loop_(loop), state_(state) {
  uv_async_init(loop, &async_, &HealthMonitor::on_async);
  async_.data = this;
  uv_timer_init(loop, &tick_);
  tick_.data = this;
  uv_timer_start(&tick_, &HealthMonitor::on_tick, kTickMs, kTickMs);
  state_.passive.set_wakeup(&async_);
  sync();
}

HealthMonitor::~HealthMonitor() { stop(); }

void HealthMonitor::stop() {
  if (stopped_) return;
  stopped_ = true;
  state_.passive.set_wakeup(nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
  for (auto& [ref, p] : probes_) close_timer(std::move(p->timer));
}

void HealthMonitor::sync() {
  rt_ = state_.runtime.load();
  const uint64_t now = uv_now(loop_);
  const bool reload = synced_;
  synced_ = true;

  // Pool records follow their pool's name; a pool that left the config takes its own.
  std::vector<Pool> next;
  for (size_t pi = 0; pi < rt_->pools.size(); ++pi) {
    const RuntimePool& rp = rt_->pools[pi];
    Pool pool;
    pool.name = rp.name;
    for (Pool& old : pools_)
      if (old.name == rp.name) {
        pool.policy = std::move(old.policy);
        pool.serving = old.serving;
        pool.forks = old.forks;
        pool.live_forks = old.live_forks;
        pool.round_slot = old.round_slot;
        // A round in flight answers for the old members: its answers are dropped.
      }
    pool.policy.set_params(health::pool_params(rt_->config.pools[pi]));
    std::vector<BackendRef> refs;
    for (const RuntimeBackend& b : rp.backends) refs.push_back(b.ref);
    pool.policy.set_members(refs, reload, now);
    next.push_back(std::move(pool));
  }
  pools_ = std::move(next);

  for (auto& [ref, p] : probes_) p->removed = true;
  syncing_ = true;
  for (size_t pi = 0; pi < rt_->pools.size(); ++pi) {
    const RuntimePool& rp = rt_->pools[pi];
    for (size_t bi = 0; bi < rp.backends.size(); ++bi) {
      const RuntimeBackend& b = rp.backends[bi];
      auto& slot = probes_[b.ref];
      const bool fresh = !slot;
      if (fresh) {
        slot = std::make_unique<Probe>();
        slot->monitor = this;
        slot->ref = b.ref;
        slot->timer = std::make_unique<uv_timer_t>();
        uv_timer_init(loop_, slot->timer.get());
        slot->timer->data = slot.get();
      }
      Probe& p = *slot;
      p.removed = false;
      p.pool = rp.name;
      p.name = b.name;
      p.pool_index = pi;
      p.member = bi;
      p.backend = &b;
      health::Change c;
      c.before = c.after = policy(p).at(bi).sm.state();
      if (!b.reachable())
        c = policy(p).on_probe(
            bi, health::probe_failed(b.resolved() ? "no TLS context" : "address not resolved"),
            now);
      publish(p, c);
      if (fresh) arm(p, true);
    }
  }
  for (auto it = probes_.begin(); it != probes_.end();) {
    if (!it->second->removed) {
      ++it;
      continue;
    }
    // An in-flight probe for a removed backend finds no entry and is dropped.
    close_timer(std::move(it->second->timer));
    it = probes_.erase(it);
  }
  syncing_ = false;
  for (size_t pi = 0; pi < pools_.size(); ++pi) {
    check_pool(pi);
    // A cache a reload added (or a renamed pool's) learns the tip now, not at the next probe.
    publish_best_tip(pi);
  }
}

// Warns once when a pool is left with no `up` backend (draining ones only: pinned users
// are still served) and once when every backend is down (nothing serves), and says when
// an `up` backend is back: once per change of condition, never per request.
void HealthMonitor::check_pool(size_t pi) {
  const RuntimePool& rp = rt_->pools[pi];
  Pool& pool = pools_[pi];
  size_t n[3] = {0, 0, 0};  // up, draining, down
  for (size_t i = 0; i < rp.backends.size(); ++i)
    ++n[static_cast<size_t>(pool.policy.at(i).sm.state())];
  Serving now = n[0] > 0 ? Serving::ok : n[1] > 0 ? Serving::no_up : Serving::none;
  if (now == pool.serving) return;
  Serving before = pool.serving;
  pool.serving = now;
  char up[24], draining[24], down[24];
  snprintf(up, sizeof up, "%zu", n[0]);
  snprintf(draining, sizeof draining, "%zu", n[1]);
  snprintf(down, sizeof down, "%zu", n[2]);
  LogField counts[] = {
      {"pool", pool.name}, {"up", up, true}, {"draining", draining, true}, {"down", down, true}};
  if (now == Serving::none)
    log_event(LogLevel::warn, "pool has no backend left: every backend is down",
              {counts[0], counts[1], counts[2], counts[3]});
  else if (now == Serving::no_up)
    log_event(LogLevel::warn, "pool has no up backend: only draining ones serve pinned users",
              {counts[0], counts[1], counts[2], counts[3]});
  else if (before != Serving::unknown)
    log_event(LogLevel::info, "pool has an up backend again",
              {counts[0], counts[1], counts[2], counts[3]});
}

void HealthMonitor::arm(Probe& p, bool first) {
  const config::Health& h = rt_->config.pools[p.pool_index].health;
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t spread = h.interval_ms / 10;
  // The first probe comes soon (within two spreads, interval/5) so state is known early.
  uint64_t base = first ? 0 : h.interval_ms - spread;
  uint64_t delay = base + (spread ? rng() % (2 * spread + 1) : 0);
  uv_timer_start(p.timer.get(), &HealthMonitor::on_probe_timer, delay, 0);
}

void HealthMonitor::on_probe_timer(uv_timer_t* t) {
  auto* p = static_cast<Probe*>(t->data);
  p->monitor->start_probe(*p);
}

void HealthMonitor::start_probe(Probe& p) {
  if (stopped_ || p.in_flight) return;
  const RuntimeBackend* b = p.backend;
  if (!b->reachable()) {
    // Nothing to connect to: a failed probe, so fall counts it toward down.
    on_answer(p.ref,
              health::probe_failed(b->resolved() ? "no TLS context" : "address not resolved"));
    return;
  }
  // A probe is a request: on a rate-limited pool it spends the quota like one, and gets
  // none while a cool-down runs or the quota is out (Blockfrost bans an IP that keeps
  // sending). The backend's state stays as it is until a probe can go.
  if (rt_->pools[p.pool_index].quota && !admit_quota(rt_->pools[p.pool_index], loop_).ok()) {
    arm(p, false);
    return;
  }
  p.in_flight = true;
  probe_address(p, b->addrs->get(), 0);
}

// Probes the backend's addresses in turn from the one that last connected: a refused
// connection moves on to the next address (a timeout does not, so a probe stays within
// its interval). An address that answers becomes the preferred one for live traffic too.
void HealthMonitor::probe_address(Probe& p, std::shared_ptr<const AddressBook::List> addrs,
                                  size_t tried) {
  const RuntimeBackend* b = p.backend;
  const config::Pool& pc = rt_->config.pools[p.pool_index];
  BackendRef ref = p.ref;
  config::PoolKind kind = pc.kind;
  int expect = pc.health.expect_status;
  uint32_t index = static_cast<uint32_t>((b->addrs->preferred() + tried) % addrs->size());
  ProbeTls tls;
  if (b->tls) tls = {b->tls_ctx, b->tls_name};
  // The pool's injected headers go with the probe: hosted Blockfrost wants its
  // project_id on /health too.
  std::string extra;
  for (const http::InjectedHeader& h : rt_->pools[p.pool_index].inject)
    extra.append(h.name).append(": ").append(h.value).append("\r\n");
  size_t pool_index = p.pool_index;
  http_probe(loop_, (*addrs)[index], b->address, health::probe_path(pc), pc.health.timeout_ms,
             b->tls ? &tls : nullptr, extra,
             [this, ref, kind, expect, addrs, tried, index, pool_index](ProbeAnswer a) {
               if (stopped_) return;
               if (a.status != 0 && pool_index < rt_->pools.size())
                 note_upstream_status(rt_->pools[pool_index], a.status, loop_);
               if (a.local) return probe_skipped(ref, a.error);
               auto it = probes_.find(ref);
               if (it != probes_.end() && a.connect_failed && tried + 1 < addrs->size())
                 return probe_address(*it->second, addrs, tried + 1);
               if (it != probes_.end() && a.status != 0)
                 it->second->backend->addrs->set_preferred(index);
               on_answer(ref, health::interpret_probe(kind, expect, a.status, a.body, a.error));
             });
}

bool HealthMonitor::first_round_done() const {
  for (const auto& [ref, p] : probes_)
    if (!p->answered) return false;
  return true;
}

void HealthMonitor::on_answer(BackendRef ref, health::ProbeResult r) {
  auto it = probes_.find(ref);
  if (it == probes_.end()) return;
  Probe& p = *it->second;
  p.in_flight = false;
  p.answered = true;
  if (r.tip_slot) p.backend->stats->tip_slot.store(*r.tip_slot);
  note_live_tips(p.pool_index);
  health::Change c = policy(p).on_probe(p.member, std::move(r), uv_now(loop_));
  publish(p, c);
  publish_evictions(p.pool_index);
  arm(p, false);
}

// A probe corral could not even start (out of file descriptors) is no verdict on the
// backend: the state stays, the operator hears of it, and the next probe comes as usual.
void HealthMonitor::probe_skipped(BackendRef ref, const std::string& why) {
  auto it = probes_.find(ref);
  if (it == probes_.end()) return;
  Probe& p = *it->second;
  p.in_flight = false;
  state_.fd_exhausted.fetch_add(1, std::memory_order_relaxed);
  log_backend_limited(p.pool, p.name, "probe not sent: %s (corral is out of file descriptors)",
                      why.c_str());
  arm(p, false);
}

void HealthMonitor::on_async(uv_async_t* a) {
  static_cast<HealthMonitor*>(a->data)->apply_events();
}

void HealthMonitor::apply_events() {
  state_.passive.drain(events_);
  uint64_t now = uv_now(loop_);
  for (const PassiveEvent& ev : events_) {
    auto it = probes_.find(ev.backend);
    if (it == probes_.end()) continue;
    Probe& p = *it->second;
    health::PoolHealth& h = policy(p);
    switch (ev.kind) {
      case PassiveKind::response:
        publish(p, h.on_response(p.member, ev.status, now));
        break;
      case PassiveKind::failure:
        publish(p, h.on_passive_failure(p.member, now));
        break;
      case PassiveKind::response_timeout:
        publish(p, h.on_response_timeout(p.member, now));
        break;
    }
  }
}

void HealthMonitor::on_tick(uv_timer_t* t) {
  auto* m = static_cast<HealthMonitor*>(t->data);
  uint64_t now = uv_now(m->loop_);
  for (auto& [ref, p] : m->probes_) m->publish(*p, m->policy(*p).tick(p->member, now));
  for (size_t pi = 0; pi < m->pools_.size(); ++pi) m->maybe_check_forks(pi, now);
}

// The slow-start mark is stored before the state, so a worker that sees `up` sees the
// ramp that comes with it.
void HealthMonitor::publish(const Probe& p, const health::Change& c) {
  const health::BackendRecord& r = pools_[p.pool_index].policy.at(p.member);
  BackendStats& s = *p.backend->stats;
  s.ramp_start_ms.store(r.ramp_start_ms);
  s.admin.store(r.sm.admin().has_value());
  s.state.store(c.after);
  if (!c.changed()) return;
  // "backend down" pool=kupo backend=kupo-2 from=up reason="..." (README "Logs").
  std::string msg = std::string("backend ") + state_name(c.after);
  log_event(c.after == BackendState::up ? LogLevel::info : LogLevel::warn, msg,
            {{"pool", p.pool},
             {"backend", p.name},
             {"from", state_name(c.before)},
             {"reason", c.why},
             {"slow_start", c.ramp_started ? "true" : "false"}});
  transitions_.push_back({wall_ms(), p.name, c.before, c.after, c.why});
  if (transitions_.size() > kMaxTransitions) transitions_.pop_front();
  if (!syncing_) check_pool(p.pool_index);
}

bool HealthMonitor::set_admin(const std::string& name, std::optional<BackendState> forced) {
  for (auto& [ref, p] : probes_) {
    if (p->name != name) continue;
    publish(*p, policy(*p).set_admin(p->member, forced, uv_now(loop_)));
    return true;
  }
  return false;
}

std::optional<BackendHealthView> HealthMonitor::backend(BackendRef ref, uint64_t now_ms) const {
  auto it = probes_.find(ref);
  if (it == probes_.end()) return std::nullopt;
  const Probe& p = *it->second;
  const health::PoolHealth& pool = pools_[p.pool_index].policy;
  const health::BackendRecord& r = pool.at(p.member);
  BackendHealthView v;
  v.state = r.sm.state();
  v.probe_state = r.sm.probe_state();
  v.reason = health::reason_name(r.sm.reason());
  v.last_probe = r.probed ? r.last.detail : std::string("not yet probed");
  v.lagging = r.lagging;
  v.lag_slots = r.lag_slots;
  v.ejections = r.sm.ejections();
  v.ejected = r.sm.ejected();
  v.eject_ms_left = r.sm.eject_until_ms() > now_ms ? r.sm.eject_until_ms() - now_ms : 0;
  v.consecutive_503 = r.sm.consecutive_503();
  v.probes_up = r.probes_up;
  v.probes_draining = r.probes_draining;
  v.probes_down = r.probes_down;
  v.transitions = r.transitions;
  v.admin = r.sm.admin();
  v.slow_start = lb::slow_start_factor(now_ms, r.ramp_start_ms, pool.params().slow_start_ms);
  return v;
}

}  // namespace lb::net
