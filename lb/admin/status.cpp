// GET /status: the JSON document of process, sessions, the shared pin store, pools, backends
// (with their health view and quota guard), recent state transitions and listeners.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "lb/admin/admin_server.h"
#include "lb/admin/exposition.h"
#include "lb/admin/json_writer.h"
#include "lb/admin/status_cache.h"
#include "lb/admin/status_store.h"
#include "lb/core/balancer.h"
#include "lb/net/wall_clock.h"

namespace lb::admin {
namespace {

// The pool kind as the config spells it.
const char* kind_name(config::PoolKind k) {
  switch (k) {
    case config::PoolKind::kupo:
      return "kupo";
    case config::PoolKind::ogmios:
      return "ogmios";
    case config::PoolKind::blockfrost:
      return "blockfrost";
    case config::PoolKind::http:
      return "http";
  }
  return "http";
}

// {"<code>": count} for each status code seen at least once.
void codes_json(JsonWriter& j, const net::CodeCounts& s) {
  j.begin_object();
  for (size_t code = 0; code < s.size(); ++code)
    if (uint64_t n = s[code]) j.key(std::to_string(code)).value(n);
  j.end_object();
}

// The quota guard of a rate-limited pool, for /status (lb/core/quota_guard.h).
void quota_json(JsonWriter& j, const lb::QuotaSnapshot& q, uint64_t unix_ms) {
  j.begin_object();
  j.key("rps").value(q.limits.rps);
  j.key("burst").value(q.limits.burst);
  j.key("daily").value(q.limits.daily);
  j.key("tokens").value(q.tokens);
  j.key("used_today").value(q.used_today);
  j.key("remaining_today");
  if (q.limits.daily != 0)
    j.value(q.remaining_today);
  else
    j.null();
  j.key("cooldown");
  if (q.cooldown_status != 0) {
    j.begin_object().key("status").value(static_cast<int64_t>(q.cooldown_status));
    j.key("until_unix_ms").value(q.cooldown_until_unix_ms);
    j.key("ms_left").value(q.cooldown_until_unix_ms - unix_ms).end_object();
  } else {
    j.null();
  }
  j.key("refused").begin_object();
  j.key("rate").value(q.refused_rate).key("daily").value(q.refused_daily);
  j.key("cooldown").value(q.refused_cooldown).end_object();
  j.key("upstream_limited").begin_object();
  j.key("402").value(q.upstream_402).key("429").value(q.upstream_429);
  j.key("418").value(q.upstream_418).end_object();
  j.end_object();
}

// All responses counted, whatever the code.
uint64_t total(const net::CodeCounts& s) {
  uint64_t n = 0;
  for (uint64_t c : s) n += c;
  return n;
}

// A backend's last minute: {"seconds" (the span the samples really cover: under 60 for
// the first minute after start or after the backend was added), "rps", "rate_503",
// "p99_ms" (null without timed responses)}; null before the first sample.
void window_json(JsonWriter& j, const std::optional<TrafficFigures>& f) {
  if (!f) {
    j.null();
    return;
  }
  j.begin_object();
  j.key("seconds").value(f->seconds);
  j.key("rps").value(f->rps);
  j.key("rate_503").value(f->rate_503);
  j.key("p99_ms");
  if (f->p99_ms)
    j.value(*f->p99_ms);
  else
    j.null();
  j.end_object();
}

// A pool's last 5 minutes at 5 s steps, oldest first, one array per figure.
void history_json(JsonWriter& j, const std::vector<TrafficFigures>& points) {
  j.begin_object();
  j.key("step_s").value(static_cast<uint64_t>(kHistoryStepMs / 1000));
  j.key("rps").begin_array();
  for (const TrafficFigures& f : points) j.value(f.rps);
  j.end_array();
  j.key("rate_503").begin_array();
  for (const TrafficFigures& f : points) j.value(f.rate_503);
  j.end_array();
  j.key("p99_ms").begin_array();
  for (const TrafficFigures& f : points) {
    if (f.p99_ms)
      j.value(*f.p99_ms);
    else
      j.null();
  }
  j.end_array();
  j.end_object();
}

}  // namespace

std::string AdminServer::status_json() const {
  auto rt = state_.runtime.load();
  SessionTableStats ss = state_.sessions.stats();
  JsonWriter j;
  j.begin_object();
  j.key("version").value(info_.version);
  j.key("config").value(rt->config.source);
  j.key("uptime_s").value((uv_now(loop_) - info_.started_ms) / 1000);
  j.key("started_unix_ms").value(info_.started_unix_ms);
  j.key("workers").value(info_.workers);
  j.key("connections").value(state_.connections.load());
  j.key("resident_bytes").value(resident_bytes());
  j.key("sessions").begin_object();
  j.key("size").value(ss.size);
  j.key("max").value(rt->config.sticky.max_sessions);
  j.key("expired").value(ss.expired);
  j.key("evicted").value(ss.evicted);
  // The table's real footprint (SessionTable::memory()); per session, null while empty.
  const SessionMemory mem = state_.sessions.memory();
  j.key("bytes").value(static_cast<uint64_t>(mem.bytes));
  j.key("bytes_per_session");
  if (mem.sessions != 0)
    j.value(static_cast<uint64_t>((mem.bytes + mem.sessions - 1) / mem.sessions));
  else
    j.null();
  j.end_object();
  j.key("store");
  store_status_json(j, *rt, state_);
  j.key("reloads").begin_object();
  j.key("ok").value(load(state_.reloads_ok));
  j.key("failed").value(load(state_.reloads_failed));
  j.key("last");
  if (state_.last_reload) {
    j.begin_object().key("result").value(state_.last_reload->ok ? "ok" : "failed");
    j.key("unix_ms").value(state_.last_reload->unix_ms).end_object();
  } else {
    j.null();
  }
  j.key("last_error");
  if (state_.last_reload_error.empty())
    j.null();
  else
    j.value(state_.last_reload_error);
  j.key("last_error_unix_ms");
  if (state_.last_reload_error.empty())
    j.null();
  else
    j.value(state_.last_reload_error_unix_ms);
  j.end_object();
  j.key("client_limiter").begin_object();
  j.key("buckets").value(static_cast<uint64_t>(state_.client_limiter.size()));
  j.key("max").value(static_cast<uint64_t>(state_.client_limiter.max_entries()));
  j.key("evicted").value(state_.client_limiter.evicted());
  j.end_object();
  j.key("remaps").begin_object();
  using BS = net::BackendShard;
  // Counted per backend, summed over every backend ever configured; one list of reasons
  // with corral_remaps_total (expired is the session table's).
  static constexpr std::pair<const char*, std::atomic<uint64_t> BS::*> kRemaps[] = {
      {"down", &BS::remaps_down},
      {"removed", &BS::remaps_removed},
      {"admin", &BS::remaps_admin},
      {"lag", &BS::remaps_lag},
      {"fork", &BS::remaps_fork},
      {"stale", &BS::remaps_stale},
      {"regression", &BS::remaps_regression}};
  for (const auto& reason : kRemaps) {  // not a structured binding: clang 14 cannot capture one
    uint64_t n = 0;
    state_.registry.for_each_in_pool(
        "", [&](const net::BackendStats& s) { n += s.sum(reason.second); });
    j.key(reason.first).value(n);
  }
  j.end_object();
  const uint64_t now = uv_now(loop_);
  j.key("pools").begin_array();
  for (const net::RuntimePool& p : rt->pools) {
    j.begin_object();
    j.key("name").value(p.name);
    j.key("kind").value(kind_name(p.kind));
    // Which headers are injected, never their values.
    j.key("set_headers").begin_object();
    for (const http::InjectedHeader& h : p.inject) j.key(h.name).value("set");
    j.end_object();
    j.key("backends").begin_array();
    for (const net::RuntimeBackend& b : p.backends) {
      const net::BackendStats& s = *b.stats;
      j.begin_object();
      j.key("name").value(b.name);
      j.key("address").value(b.address);
      j.key("state").value(lb::state_name(s.state.load()));
      j.key("resolved").value(b.resolved());
      j.key("addresses").value(net::describe(*b.addrs->get()));
      j.key("weight").value(b.weight);
      j.key("pinned_sessions").value(state_.sessions.pinned(b.ref));
      if (rt->config.sticky.store) j.key("pinned_fleet").value(pinned_fleet(state_, b.ref));
      // Gauges raised in one shard and lowered in another: a read between the two can sum
      // below 0, which is never true; clamped as /metrics does.
      j.key("in_flight").value(non_negative(s.sum(&BS::in_flight)));
      j.key("tunnels").value(non_negative(s.sum(&BS::tunnels)));
      j.key("tunnel_bytes").begin_object();
      j.key("to_backend").value(s.sum(&BS::tunnel_bytes_to_backend));
      j.key("to_client").value(s.sum(&BS::tunnel_bytes_to_client)).end_object();
      j.key("tunnel_closes").begin_object();
      j.key("1001").value(s.sum(&BS::tunnel_closes_1001));
      j.key("1012").value(s.sum(&BS::tunnel_closes_1012)).end_object();
      const net::CodeCounts codes = s.codes();
      j.key("requests").value(total(codes));
      j.key("responses");
      codes_json(j, codes);
      j.key("window");
      window_json(j, sampler_.backend(*b.stats, now));
      j.key("tip_slot").value(load(s.tip_slot));
      j.key("evict").value(lb::move_reason_name(s.evict.load(std::memory_order_relaxed)));
      if (std::optional<net::BackendHealthView> h = health_.backend(b.ref, now)) {
        j.key("slow_start").value(h->slow_start);
        j.key("health").begin_object();
        j.key("reason").value(h->reason);
        j.key("probe_state").value(lb::state_name(h->probe_state));
        j.key("last_probe").value(h->last_probe);
        j.key("lagging").value(h->lagging);
        j.key("lag_slots").value(h->lag_slots);
        j.key("ejections").value(h->ejections);
        j.key("ejected").value(h->ejected);
        j.key("eject_ms_left").value(h->eject_ms_left);
        j.key("consecutive_503").value(h->consecutive_503);
        j.key("override");
        if (h->admin)
          j.value(lb::state_name(*h->admin));
        else
          j.null();
        j.key("probes").begin_object();
        j.key("up").value(h->probes_up).key("draining").value(h->probes_draining);
        j.key("down").value(h->probes_down).end_object();
        j.end_object();
      }
      j.key("retried_503").value(s.sum(&BS::retried_503));
      j.key("connect_failures").value(s.sum(&BS::connect_failures));
      j.key("tls_failures").value(s.sum(&BS::tls_failures));
      j.key("timeouts").value(s.sum(&BS::timeouts));
      j.key("resets").value(s.sum(&BS::resets));
      j.key("client_aborts").value(s.sum(&BS::client_aborts));
      j.end_object();
    }
    j.end_array();
    j.key("history");
    history_json(j, sampler_.history(p.name));
    if (p.quota) {
      const uint64_t unix_now = net::wall_ms();
      j.key("quota");
      quota_json(j, p.quota->snapshot(now, unix_now), unix_now);
    }
    if (p.cache) {
      j.key("cache");
      cache_status_json(j, *p.cache);
    }
    j.end_object();
  }
  j.end_array();
  j.key("transitions").begin_array();
  for (const net::Transition& t : health_.transitions()) {
    j.begin_object().key("at_ms").value(t.at_ms).key("backend").value(t.backend);
    j.key("from").value(lb::state_name(t.from)).key("to").value(lb::state_name(t.to));
    j.key("why").value(t.why).end_object();
  }
  j.end_array();
  j.key("listeners").begin_array();
  for (const net::RuntimeListener& l : rt->listeners) {
    j.begin_object();
    j.key("name").value(l.name);
    j.key("listen").value(l.listen.text);
    j.key("tls").value(l.tls);
    using LS = net::ListenerShard;
    if (l.tls) j.key("tls_failures").value(l.stats->sum(&LS::tls_failures));
    j.key("proxy_protocol").value(l.proxy_protocol);
    if (l.proxy_protocol) {
      j.key("proxy_headers").begin_object();
      j.key("ok").value(l.stats->sum(&LS::proxy_ok)).key("bad").value(l.stats->sum(&LS::proxy_bad));
      j.key("timeout").value(l.stats->sum(&LS::proxy_timeout));
      j.key("closed").value(l.stats->sum(&LS::proxy_closed)).end_object();
    }
    j.key("open").value(non_negative(l.stats->sum(&LS::open)));
    j.key("accepted").value(l.stats->sum(&LS::accepted));
    j.key("rejected").value(l.stats->sum(&LS::rejected));
    j.key("local_responses");
    codes_json(j, l.stats->codes());
    j.end_object();
  }
  j.end_array();
  j.end_object();
  std::string out = j.str();
  out.push_back('\n');
  return out;
}

}  // namespace lb::admin
