// GET /metrics: the Prometheus text exposition (issue 12's agreed names; the README's
// "Metrics" table lists them) of backends, health, quota guards, sessions, the shared pin
// store (metrics_store.cpp), response caches (metrics_cache.cpp), listeners, the process and its
// disks. Counters are per-worker shards summed here (lb/net/backend_stats.h): a scrape takes no
// lock the request path takes.
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lb/admin/admin_server.h"
#include "lb/admin/exposition.h"
#include "lb/admin/process_metrics.h"
#include "lb/admin/status_cache.h"
#include "lb/admin/status_store.h"
#include "lb/net/access_log.h"
#include "lb/net/wall_clock.h"

namespace lb::admin {
namespace {

using BS = net::BackendShard;
using LS = net::ListenerShard;

std::string pool_label(const net::RuntimePool& p) { return "pool=\"" + label(p.name) + "\""; }

std::string backend_labels(const net::RuntimePool& p, const net::RuntimeBackend& b) {
  return pool_label(p) + ",backend=\"" + label(b.name) + "\"";
}

std::string listener_label(const net::RuntimeListener& l) {
  return "listener=\"" + label(l.name) + "\"";
}

// corral_backend_state's value: ordered so that "< 2" means "not taking new users".
uint64_t state_value(lb::BackendState s) {
  switch (s) {
    case lb::BackendState::down:
      return 0;
    case lb::BackendState::draining:
      return 1;
    case lb::BackendState::up:
      return 2;
  }
  return 0;
}

// corral_request_duration_seconds: one cumulative series per bucket, then _sum and _count.
void duration_histogram(Exposition& e, const net::Runtime& rt) {
  e.help("corral_request_duration_seconds", "histogram",
         "Time from request sent to the backend to its response head.");
  for (const auto& p : rt.pools)
    for (const auto& b : p.backends) {
      const std::string bl = backend_labels(p, b);
      const net::LatencySnapshot h = b.stats->latency();
      uint64_t cum = 0;
      for (size_t i = 0; i < h.buckets.size(); ++i) {
        cum += h.buckets[i];
        const std::string le = i < net::kLatencyBucketsUs.size()
                                   ? seconds_text(net::kLatencyBucketsUs[i])
                                   : std::string("+Inf");
        e.line("corral_request_duration_seconds_bucket", bl + ",le=\"" + le + "\"", cum);
      }
      e.line("corral_request_duration_seconds_sum", bl, seconds_text(h.sum_us));
      e.line("corral_request_duration_seconds_count", bl, cum);
    }
}

// Per-pool sums over every backend the pool ever had (a reload that removes a backend
// must not make a counter go down).
template <class F>
uint64_t pool_sum(const net::ProxyState& st, const net::RuntimePool& p, F&& field) {
  uint64_t n = 0;
  st.registry.for_each_in_pool(p.name, [&](const net::BackendStats& s) { n += field(s); });
  return n;
}

// corral_tunnels, bytes and closes, and corral_remaps_total.
void tunnel_and_remap_metrics(Exposition& e, const net::Runtime& rt, const net::ProxyState& st) {
  e.help("corral_tunnels", "gauge", "Open WebSocket tunnels to the backend.");
  for (const auto& p : rt.pools)
    for (const auto& b : p.backends)
      e.line("corral_tunnels", backend_labels(p, b), non_negative(b.stats->sum(&BS::tunnels)));
  e.help("corral_tunnel_bytes_total", "counter", "Bytes through WebSocket tunnels, by direction.");
  for (const auto& p : rt.pools)
    for (const auto& b : p.backends)
      e.by_label("corral_tunnel_bytes_total", backend_labels(p, b), "direction",
                 {{"to_backend", b.stats->sum(&BS::tunnel_bytes_to_backend)},
                  {"to_client", b.stats->sum(&BS::tunnel_bytes_to_client)}});
  e.help("corral_tunnel_closes_total", "counter",
         "Close frames corral sent to WebSocket clients: 1012 (backend gone), 1001 (shutdown, "
         "idle).");
  for (const auto& p : rt.pools)
    e.by_label("corral_tunnel_closes_total", pool_label(p), "code",
               {{"1001", pool_sum(st, p, [](auto& s) { return s.sum(&BS::tunnel_closes_1001); })},
                {"1012", pool_sum(st, p, [](auto& s) { return s.sum(&BS::tunnel_closes_1012); })}});
  e.help("corral_remaps_total", "counter",
         "Users moved to another backend of the pool, by reason (down, removed, admin, lag, "
         "fork, stale, regression; expired: pins dropped after ttl idle).");
  for (const auto& p : rt.pools) {
    // Every backend the pool ever had, as pool_sum: a removed one's expiries stay counted.
    uint64_t expired = 0;
    st.registry.for_each_ref_in_pool(p.name,
                                     [&](BackendRef ref) { expired += st.sessions.expired(ref); });
    e.by_label(
        "corral_remaps_total", pool_label(p), "reason",
        {{"down", pool_sum(st, p, [](auto& s) { return s.sum(&BS::remaps_down); })},
         {"removed", pool_sum(st, p, [](auto& s) { return s.sum(&BS::remaps_removed); })},
         {"admin", pool_sum(st, p, [](auto& s) { return s.sum(&BS::remaps_admin); })},
         {"lag", pool_sum(st, p, [](auto& s) { return s.sum(&BS::remaps_lag); })},
         {"fork", pool_sum(st, p, [](auto& s) { return s.sum(&BS::remaps_fork); })},
         {"stale", pool_sum(st, p, [](auto& s) { return s.sum(&BS::remaps_stale); })},
         {"regression", pool_sum(st, p, [](auto& s) { return s.sum(&BS::remaps_regression); })},
         {"expired", expired}});
  }
  // Issue 13: answers older than their user's last slot, per pool.
  e.help("corral_user_regressions_prevented_total", "counter",
         "Answers older than the user's last seen checkpoint, discarded and re-sent to a "
         "backend at or past it.");
  for (const auto& p : rt.pools)
    e.line("corral_user_regressions_prevented_total", pool_label(p),
           pool_sum(st, p, [](auto& s) { return s.sum(&BS::regressions_prevented); }));
  e.help("corral_user_regressions_total", "counter",
         "Answers older than the user's last seen checkpoint that were forwarded: no backend "
         "was at the user's slot, or the request could not be re-sent.");
  for (const auto& p : rt.pools)
    e.line("corral_user_regressions_total", pool_label(p),
           pool_sum(st, p, [](auto& s) { return s.sum(&BS::regressions_forwarded); }));
}

// Listener counters, buffers, limiter and descriptor shortage.
void listener_metrics(Exposition& e, const net::Runtime& rt, net::ProxyState& st) {
  e.help("corral_buffer_bytes", "gauge",
         "Bytes of connection buffers held (in use or on free lists), all workers.");
  e.line("corral_buffer_bytes", "", st.buffers.bytes.load(std::memory_order_relaxed));
  e.help("corral_buffer_in_use_bytes", "gauge",
         "Bytes of connection buffers held by connections now (not on free lists).");
  e.line("corral_buffer_in_use_bytes", "", st.buffers.in_use_bytes());
  e.help("corral_buffer_waits_total", "counter",
         "Reads paused because limits.max_buffer_memory was reached.");
  e.line("corral_buffer_waits_total", "", st.buffers.refused.load(std::memory_order_relaxed));
  e.help("corral_connections_accepted_total", "counter", "Client connections accepted.");
  for (const auto& l : rt.listeners)
    e.line("corral_connections_accepted_total", listener_label(l), l.stats->sum(&LS::accepted));
  e.help("corral_connections_rejected_total", "counter", "Connections refused at max_connections.");
  for (const auto& l : rt.listeners)
    e.line("corral_connections_rejected_total", listener_label(l), l.stats->sum(&LS::rejected));
  e.help("corral_client_timeouts_total", "counter",
         "Clients cut off by limits.body_timeout (408) or limits.send_timeout.");
  for (const auto& l : rt.listeners)
    e.by_label(
        "corral_client_timeouts_total", listener_label(l), "timeout",
        {{"body", l.stats->sum(&LS::body_timeouts)}, {"send", l.stats->sum(&LS::send_timeouts)}});
  e.help("corral_client_limited_total", "counter",
         "Requests answered 429 by a route's client_rate_limit (the backend never saw them).");
  for (const auto& l : rt.listeners)
    for (size_t i = 0; i < l.routes.size() && i < l.limited.size(); ++i)
      if (l.routes[i].client_limit.enabled())
        e.line("corral_client_limited_total",
               listener_label(l) + ",route=\"" + label(l.routes[i].prefix) + "\"",
               load(*l.limited[i]));
  e.help("corral_client_limiter_buckets", "gauge",
         "Per-client token buckets held (bounded; the least recently seen is dropped).");
  e.line("corral_client_limiter_buckets", "", st.client_limiter.size());
  e.help("corral_tls_failures_total", "counter",
         "TLS listeners: connections that failed the handshake (a version or cipher not "
         "offered, plain HTTP to the TLS port) or sent a bad record.");
  for (const auto& l : rt.listeners)
    if (l.tls)
      e.line("corral_tls_failures_total", listener_label(l), l.stats->sum(&LS::tls_failures));
  e.help("corral_proxy_protocol_total", "counter",
         "proxy_protocol listeners: connections by how their PROXY header ended: ok, bad "
         "(garbled or unsupported), timeout (none complete in time), closed (before it ended).");
  for (const auto& l : rt.listeners)
    if (l.proxy_protocol)
      e.by_label("corral_proxy_protocol_total", listener_label(l), "result",
                 {{"ok", l.stats->sum(&LS::proxy_ok)},
                  {"bad", l.stats->sum(&LS::proxy_bad)},
                  {"timeout", l.stats->sum(&LS::proxy_timeout)},
                  {"closed", l.stats->sum(&LS::proxy_closed)}});
  e.help("corral_fd_exhausted_total", "counter",
         "Times corral ran out of file descriptors (EMFILE/ENFILE): accepting a client, or "
         "opening a connection to a backend (never counted as the backend's failure).");
  e.line("corral_fd_exhausted_total", "side=\"accept\"", load(st.fd_exhausted_accept));
  e.line("corral_fd_exhausted_total", "side=\"upstream\"", load(st.fd_exhausted));
}

// process_* (Prometheus' standard names) and corral_disk_*_bytes{path}.
void process_and_disk_metrics(Exposition& e, const net::Runtime& rt) {
  const ProcessMetrics pm = read_process_metrics();
  e.help("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  e.line("process_resident_memory_bytes", "", pm.resident_bytes);
  e.help("process_cpu_seconds_total", "counter", "Total user and system CPU time in seconds.");
  e.line_double("process_cpu_seconds_total", "", pm.cpu_seconds);
  e.help("process_start_time_seconds", "gauge",
         "Start time of the process since the Unix epoch in seconds.");
  e.line_double("process_start_time_seconds", "", pm.start_time_seconds);
  e.help("process_open_fds", "gauge", "Number of open file descriptors.");
  e.line("process_open_fds", "", pm.open_fds);
  e.help("process_max_fds", "gauge", "Maximum number of open file descriptors.");
  e.line("process_max_fds", "", pm.max_fds);

  // statvfs once per path; a path gone since the config was loaded has no sample.
  std::vector<std::pair<std::string, DiskSpace>> disks;
  for (const std::string& path : rt.config.monitor.disk_paths)
    if (std::optional<DiskSpace> d = disk_space(path))
      disks.emplace_back("path=\"" + label(path) + "\"", *d);
  if (disks.empty()) return;
  e.help("corral_disk_free_bytes", "gauge",
         "Bytes available to unprivileged users on the filesystem of monitor.disk_paths.");
  for (const auto& [l, d] : disks) e.line("corral_disk_free_bytes", l, d.free_bytes);
  e.help("corral_disk_total_bytes", "gauge", "Size of the filesystem of monitor.disk_paths.");
  for (const auto& [l, d] : disks) e.line("corral_disk_total_bytes", l, d.total_bytes);
}

}  // namespace

// The Blockfrost quota guard of each rate-limited pool (DESIGN.md's metric table):
// window "second" is the token bucket (used = tokens taken and not yet refilled), window
// "day" the UTC day's count.
void AdminServer::quota_metrics(std::string& o, const net::Runtime& rt) const {
  const uint64_t now = uv_now(loop_);
  const uint64_t unix_now = net::wall_ms();
  std::vector<std::pair<std::string, lb::QuotaSnapshot>> snaps;
  for (const auto& p : rt.pools)
    if (p.quota) snaps.emplace_back(pool_label(p), p.quota->snapshot(now, unix_now));
  if (snaps.empty()) return;
  Exposition e(o);
  e.help("corral_quota_used", "gauge",
         "Upstream quota used: window=second is the token bucket, window=day the UTC day.");
  for (const auto& [l, q] : snaps) {
    if (q.limits.rps > 0)
      e.line("corral_quota_used", l + ",window=\"second\"",
             static_cast<uint64_t>(q.limits.burst - std::floor(q.tokens)));
    if (q.limits.daily != 0) e.line("corral_quota_used", l + ",window=\"day\"", q.used_today);
  }
  e.help("corral_quota_remaining", "gauge",
         "Upstream quota left now: tokens, or today's requests.");
  for (const auto& [l, q] : snaps) {
    if (q.limits.rps > 0)
      e.line("corral_quota_remaining", l + ",window=\"second\"",
             static_cast<uint64_t>(std::floor(q.tokens)));
    if (q.limits.daily != 0)
      e.line("corral_quota_remaining", l + ",window=\"day\"", q.remaining_today);
  }
  e.help("corral_upstream_limited_total", "counter",
         "Upstream answers 402 (daily limit), 429 (rate limited) and 418 (banned).");
  for (const auto& [l, q] : snaps)
    e.by_label("corral_upstream_limited_total", l, "code",
               {{"402", q.upstream_402}, {"429", q.upstream_429}, {"418", q.upstream_418}});
  e.help("corral_quota_refused_total", "counter",
         "Requests corral answered itself (429, or 402 after an upstream 402) instead of "
         "spending upstream quota, by reason.");
  for (const auto& [l, q] : snaps)
    e.by_label(
        "corral_quota_refused_total", l, "reason",
        {{"rate", q.refused_rate}, {"daily", q.refused_daily}, {"cooldown", q.refused_cooldown}});
  e.help("corral_quota_cooldown_seconds", "gauge",
         "Seconds left in an upstream cool-down (after a 402, 429 or 418); 0 when none.");
  for (const auto& [l, q] : snaps)
    e.line("corral_quota_cooldown_seconds", l,
           q.cooldown_status ? (q.cooldown_until_unix_ms - unix_now + 999) / 1000 : uint64_t{0});
}

std::string AdminServer::metrics_text() const {
  auto rt = state_.runtime.load();
  SessionTableStats ss = state_.sessions.stats();
  std::string o;
  o.reserve(16384);
  Exposition e(o);
  // A family with one sample per backend: value(backend).
  auto per_backend = [&](std::string_view name, std::string_view type, std::string_view text,
                         auto&& value) {
    e.help(name, type, text);
    for (const auto& p : rt->pools)
      for (const auto& b : p.backends) e.line(name, backend_labels(p, b), value(b));
  };
  using B = net::RuntimeBackend;

  e.help("corral_build_info", "gauge", "Always 1; the version label names the running build.");
  e.line("corral_build_info", "version=\"" + label(info_.version) + "\"", uint64_t{1});

  e.help("corral_requests_total", "counter",
         "Responses per backend and status code (502/504 made by corral for that backend).");
  for (const auto& p : rt->pools)
    for (const auto& b : p.backends) {
      const net::CodeCounts codes = b.stats->codes();
      // 200 and 503 always have a series (0 until seen): rate() needs the counter to exist
      // before the first increase, and a panel of a backend never refused reads 0, not
      // "No data".
      for (size_t code = 100; code < codes.size(); ++code)
        if (codes[code] != 0 || code == 200 || code == 503)
          e.line("corral_requests_total",
                 backend_labels(p, b) + ",code=\"" + std::to_string(code) + "\"", codes[code]);
    }
  e.help("corral_local_responses_total", "counter",
         "Responses corral made itself (no route, method, bad request, no backend).");
  for (const auto& l : rt->listeners) {
    const net::CodeCounts codes = l.stats->codes();
    for (size_t code = 100; code < codes.size(); ++code)
      if (codes[code] != 0)
        e.line("corral_local_responses_total",
               listener_label(l) + ",code=\"" + std::to_string(code) + "\"", codes[code]);
  }
  duration_histogram(e, *rt);

  e.help("corral_upstream_failures_total", "counter",
         "Failed exchanges with the backend: connect (refused, unreachable), reset (closed "
         "mid-exchange), timeout (connect or response), tls (handshake, certificate).");
  for (const auto& p : rt->pools)
    for (const auto& b : p.backends)
      e.by_label("corral_upstream_failures_total", backend_labels(p, b), "reason",
                 {{"connect", b.stats->sum(&BS::connect_failures)},
                  {"reset", b.stats->sum(&BS::resets)},
                  {"timeout", b.stats->sum(&BS::timeouts)},
                  {"tls", b.stats->sum(&BS::tls_failures)}});
  per_backend("corral_backend_client_aborts_total", "counter",
              "Clients that went away mid-exchange.",
              [](const B& b) { return b.stats->sum(&BS::client_aborts); });

  per_backend("corral_backend_state", "gauge", "Backend state: 0 down, 1 draining, 2 up.",
              [](const B& b) { return state_value(b.stats->state.load()); });
  per_backend("corral_backend_tip_slot", "gauge", "Highest chain slot seen from the backend.",
              [](const B& b) { return b.stats->tip_slot.load(std::memory_order_relaxed); });
  // Prometheus wants each family's samples together: one pass per family.
  const uint64_t now = uv_now(loop_);
  using V = net::BackendHealthView;
  auto per_health = [&](std::string_view name, std::string_view type, std::string_view text,
                        auto&& emit) {
    e.help(name, type, text);
    for (const auto& p : rt->pools)
      for (const auto& b : p.backends)
        if (std::optional<V> h = health_.backend(b.ref, now)) emit(backend_labels(p, b), *h);
  };
  per_health("corral_backend_lag_slots", "gauge", "Slots behind the best tip in the pool.",
             [&](const std::string& l, const V& h) {
               e.line("corral_backend_lag_slots", l, h.lag_slots);
             });
  per_health("corral_probes_total", "counter", "Active health probes by level reported.",
             [&](const std::string& l, const V& h) {
               e.by_label(
                   "corral_probes_total", l, "result",
                   {{"up", h.probes_up}, {"draining", h.probes_draining}, {"down", h.probes_down}});
             });
  per_health(
      "corral_ejections_total", "counter", "Ejections after consecutive 503s.",
      [&](const std::string& l, const V& h) { e.line("corral_ejections_total", l, h.ejections); });
  per_health("corral_state_transitions_total", "counter", "Backend state changes.",
             [&](const std::string& l, const V& h) {
               e.line("corral_state_transitions_total", l, h.transitions);
             });
  // Issue 13: fork checks of the Cardano pools, by result.
  e.help("corral_fork_checks_total", "counter",
         "Fork-check rounds: agree, disagree (a minority marked after two), no_majority.");
  for (const auto& p : rt->pools) {
    if (p.kind != config::PoolKind::kupo && p.kind != config::PoolKind::ogmios) continue;
    const net::ForkChecks f = health_.fork_checks(p.name);
    e.by_label("corral_fork_checks_total", pool_label(p), "result",
               {{"agree", f.agree}, {"disagree", f.disagree}, {"no_majority", f.no_majority}});
  }
  e.help("corral_fork_live_checks_total", "counter",
         "Kupo fork-check rounds over live responses' checkpoints (X-Most-Recent-Checkpoint, "
         "ETag), by result.");
  for (const auto& p : rt->pools) {
    if (p.kind != config::PoolKind::kupo) continue;
    const net::ForkChecks f = health_.fork_checks(p.name, true);
    e.by_label("corral_fork_live_checks_total", pool_label(p), "result",
               {{"agree", f.agree}, {"disagree", f.disagree}, {"no_majority", f.no_majority}});
  }
  per_backend("corral_retried_503_total", "counter",
              "New users moved to another backend after a 503.",
              [](const B& b) { return b.stats->sum(&BS::retried_503); });

  per_backend("corral_sessions", "gauge", "Sessions (users) pinned to the backend.",
              [&](const B& b) { return state_.sessions.pinned(b.ref); });
  per_backend("corral_backend_in_flight", "gauge", "Requests in flight to the backend.",
              [](const B& b) { return non_negative(b.stats->sum(&BS::in_flight)); });
  tunnel_and_remap_metrics(e, *rt, state_);

  quota_metrics(o, *rt);

  // A gauge by meaning; typed untyped because promtool refuses the agreed "_total" suffix
  // on a gauge (Prometheus treats untyped samples as gauges).
  e.help("corral_sessions_total", "untyped", "Gauge: all pinned sessions in the table.");
  e.line("corral_sessions_total", "", ss.size);
  e.help("corral_sessions_expired_total", "counter", "Pins dropped after ttl idle.");
  e.line("corral_sessions_expired_total", "", ss.expired);
  e.help("corral_sessions_evicted_total", "counter", "Pins dropped by the max_sessions bound.");
  e.line("corral_sessions_evicted_total", "", ss.evicted);
  store_metrics(e, *rt, state_);
  cache_metrics(e, *rt);

  e.help("corral_config_reloads_total", "counter", "SIGHUP reloads by result.");
  e.by_label("corral_config_reloads_total", "", "result",
             {{"ok", load(state_.reloads_ok)}, {"failed", load(state_.reloads_failed)}});

  // Backend connections: pooled (idle or busy) plus WebSocket tunnels, of every backend
  // ever configured (a removed backend's connections finish their work).
  int64_t upstream = 0;
  state_.registry.for_each_in_pool("", [&](const net::BackendStats& s) {
    upstream += s.sum(&BS::upstream_open) + s.sum(&BS::tunnels);
  });
  e.help("corral_connections", "gauge",
         "Open connections: side=client from clients, side=backend to backends (pooled and "
         "tunnels).");
  e.by_label(
      "corral_connections", "", "side",
      {{"client", non_negative(state_.connections.load())}, {"backend", non_negative(upstream)}});

  listener_metrics(e, *rt, state_);
  process_and_disk_metrics(e, *rt);
  // Access log (lb/net/access_log): lines a full queue dropped, and the queue now.
  e.help("corral_access_log_dropped_total", "counter",
         "Access log lines dropped because the writer's queue was full (a slow disk or a "
         "reader that takes nothing); requests are never held up by the log.");
  e.line("corral_access_log_dropped_total", "", net::access_log_dropped());
  e.help("corral_access_log_queue_lines", "gauge",
         "Access log lines waiting for the writer thread.");
  e.line("corral_access_log_queue_lines", "", net::access_log_depth());
  return o;
}

}  // namespace lb::admin
