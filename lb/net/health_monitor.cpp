#include "lb/net/health_monitor.h"

#include <chrono>
#include <random>

#include "health/lag.h"
#include "lb/net/http_probe.h"
#include "lb/net/log.h"

namespace lb::net {
namespace {

constexpr size_t kMaxTransitions = 64;
constexpr uint64_t kTickMs = 100;

uint64_t wall_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

health::HealthParams params_of(const config::Pool& p) {
  health::HealthParams h;
  h.rise = p.health.rise;
  h.fall = p.health.fall;
  h.consecutive_503 = p.eject.consecutive_503;
  h.base_eject_ms = p.eject.base_time_ms;
  h.max_eject_ms = p.eject.max_time_ms;
  return h;
}

health::ProbeResult interpret(config::PoolKind kind, const config::Health& h,
                              const ProbeAnswer& a) {
  if (a.status == 0) return health::probe_failed(a.error);
  switch (kind) {
    case config::PoolKind::kupo:
      return health::parse_kupo_health(a.status, a.body);
    case config::PoolKind::ogmios:
      return health::parse_ogmios_health(a.status, a.body);
    case config::PoolKind::blockfrost:
      return health::parse_blockfrost_health(a.status, a.body);
    case config::PoolKind::http:
      return health::parse_http_health(a.status, h.expect_status);
  }
  return health::probe_failed("unknown kind");
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
  for (auto& [ref, e] : entries_) {
    uv_timer_t* t = e->timer.release();
    uv_close(reinterpret_cast<uv_handle_t*>(t),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }
}

void HealthMonitor::sync() {
  rt_ = state_.runtime.load();
  for (auto& [ref, e] : entries_) e->removed = true;
  for (size_t pi = 0; pi < rt_->pools.size(); ++pi) {
    const RuntimePool& pool = rt_->pools[pi];
    const config::Pool& pc = rt_->config.pools[pi];
    for (const RuntimeBackend& b : pool.backends) {
      auto& slot = entries_[b.ref];
      bool fresh = !slot;
      if (fresh) {
        slot = std::make_unique<Entry>();
        slot->monitor = this;
        slot->ref = b.ref;
        slot->timer = std::make_unique<uv_timer_t>();
        uv_timer_init(loop_, slot->timer.get());
        slot->timer->data = slot.get();
      }
      Entry& e = *slot;
      e.removed = false;
      e.pool = pool.name;
      e.name = b.name;
      e.pool_index = pi;
      e.backend = &b;
      e.sm.set_params(params_of(pc));
      if (!b.resolved) e.sm.on_probe(BackendState::down, uv_now(loop_));
      b.stats->state.store(e.sm.state());
      if (fresh) arm(e, true);
    }
  }
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (!it->second->removed) {
      ++it;
      continue;
    }
    uv_timer_t* t = it->second->timer.release();
    uv_close(reinterpret_cast<uv_handle_t*>(t),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    // An in-flight probe for a removed backend finds no entry and is dropped.
    it = entries_.erase(it);
  }
}

void HealthMonitor::arm(Entry& e, bool first) {
  const config::Health& h = rt_->config.pools[e.pool_index].health;
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t spread = h.interval_ms / 10;
  // The first probe comes soon (within one spread) so state is known early.
  uint64_t base = first ? 0 : h.interval_ms - spread;
  uint64_t delay = base + (spread ? rng() % (2 * spread + 1) : 0);
  uv_timer_start(e.timer.get(), &HealthMonitor::on_probe_timer, delay, 0);
}

void HealthMonitor::on_probe_timer(uv_timer_t* t) {
  auto* e = static_cast<Entry*>(t->data);
  e->monitor->start_probe(*e);
}

void HealthMonitor::start_probe(Entry& e) {
  if (stopped_ || e.in_flight) return;
  const RuntimeBackend* b = e.backend;
  if (!b->resolved) {
    arm(e, false);
    return;
  }
  const config::Pool& pc = rt_->config.pools[e.pool_index];
  std::string path = pc.kind == config::PoolKind::http ? pc.health.path : "/health";
  e.in_flight = true;
  BackendRef ref = e.ref;
  config::PoolKind kind = pc.kind;
  config::Health hc = pc.health;
  http_probe(loop_, b->addr, b->address, path, pc.health.timeout_ms,
             [this, ref, kind, hc](ProbeAnswer a) {
               if (stopped_) return;
               on_answer(ref, interpret(kind, hc, a));
             });
}

void HealthMonitor::on_answer(BackendRef ref, health::ProbeResult r) {
  auto it = entries_.find(ref);
  if (it == entries_.end()) return;
  Entry& e = *it->second;
  e.in_flight = false;
  e.probed = true;
  switch (r.level) {
    case BackendState::up:
      ++e.probes_up;
      break;
    case BackendState::draining:
      ++e.probes_draining;
      break;
    case BackendState::down:
      ++e.probes_down;
      break;
  }
  if (r.tip_slot) e.backend->stats->tip_slot.store(*r.tip_slot);
  e.last = std::move(r);
  fold_lag(e.pool_index);
  BackendState level = e.last.level;
  if (e.lagging && level == BackendState::up) level = BackendState::draining;
  BackendState before = e.sm.state();
  e.sm.on_probe(level, uv_now(loop_));
  publish(e, before, e.lagging ? "lagging" : e.last.detail.c_str());
  arm(e, false);
}

void HealthMonitor::fold_lag(size_t pool_index) {
  const RuntimePool& pool = rt_->pools[pool_index];
  const config::Health& h = rt_->config.pools[pool_index].health;
  std::vector<health::TipView> tips;
  std::vector<Entry*> es;
  for (const RuntimeBackend& b : pool.backends) {
    auto it = entries_.find(b.ref);
    if (it == entries_.end()) continue;
    Entry& e = *it->second;
    health::TipView v;
    if (e.probed) {
      v.tip_slot = e.last.tip_slot;
      v.seconds_since_last_block = e.last.seconds_since_last_block;
    }
    v.counted = e.probed && e.last.level != BackendState::down;
    tips.push_back(v);
    es.push_back(&e);
  }
  std::unique_ptr<bool[]> lagging(new bool[tips.size()]());
  std::optional<uint64_t> best =
      health::compute_lag(tips, h.max_lag_slots, h.stale_after_ms / 1000.0,
                          std::span<bool>(lagging.get(), tips.size()));
  for (size_t i = 0; i < es.size(); ++i) {
    es[i]->lagging = lagging[i];
    es[i]->lag_slots =
        best && tips[i].tip_slot && *best > *tips[i].tip_slot ? *best - *tips[i].tip_slot : 0;
  }
}

bool HealthMonitor::may_eject(const Entry& e) const {
  const RuntimePool& pool = rt_->pools[e.pool_index];
  size_t ejected = 0;
  for (const RuntimeBackend& b : pool.backends) {
    auto it = entries_.find(b.ref);
    if (it != entries_.end() && it->second->sm.ejected()) ++ejected;
  }
  uint32_t pct = rt_->config.pools[e.pool_index].eject.max_percent;
  return (ejected + 1) * 100 <= static_cast<size_t>(pct) * pool.backends.size();
}

void HealthMonitor::on_async(uv_async_t* a) {
  static_cast<HealthMonitor*>(a->data)->apply_events();
}

void HealthMonitor::apply_events() {
  state_.passive.drain(events_);
  uint64_t now = uv_now(loop_);
  for (const PassiveEvent& ev : events_) {
    auto it = entries_.find(ev.backend);
    if (it == entries_.end()) continue;
    Entry& e = *it->second;
    BackendState before = e.sm.state();
    if (ev.status == 0) {
      e.sm.on_passive_failure(now);
      publish(e, before, "failures on live traffic");
    } else {
      e.sm.on_response(ev.status, now, may_eject(e));
      publish(e, before, ev.status == 503 ? "consecutive 503s" : "answering again");
    }
  }
}

void HealthMonitor::on_tick(uv_timer_t* t) {
  auto* m = static_cast<HealthMonitor*>(t->data);
  uint64_t now = uv_now(m->loop_);
  for (auto& [ref, e] : m->entries_) {
    BackendState before = e->sm.state();
    e->sm.tick(now);
    m->publish(*e, before, "ejection over");
  }
}

void HealthMonitor::publish(Entry& e, BackendState before, const char* why) {
  BackendState now = e.sm.state();
  e.backend->stats->state.store(now);
  if (now == before) return;
  ++e.transitions;
  std::string reason = std::string(health::reason_name(e.sm.reason())) + ": " + why;
  logf(LogLevel::info, "backend %s/%s: %s -> %s (%s)", e.pool.c_str(), e.name.c_str(),
       state_name(before), state_name(now), reason.c_str());
  transitions_.push_back({wall_ms(), e.name, before, now, std::move(reason)});
  if (transitions_.size() > kMaxTransitions) transitions_.pop_front();
}

bool HealthMonitor::set_admin(const std::string& name, std::optional<BackendState> forced) {
  for (auto& [ref, e] : entries_) {
    if (e->name != name) continue;
    BackendState before = e->sm.state();
    e->sm.set_admin(forced);
    publish(*e, before, forced ? "operator" : "operator cleared");
    return true;
  }
  return false;
}

const HealthMonitor::Entry* HealthMonitor::find(BackendRef ref) const {
  auto it = entries_.find(ref);
  return it == entries_.end() ? nullptr : it->second.get();
}

}  // namespace lb::net
