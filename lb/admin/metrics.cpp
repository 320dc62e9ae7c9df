// GET /metrics: the Prometheus text exposition (DESIGN.md's metric table) of backends,
// health, quota guards, sessions, listeners and the process.
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lb/admin/admin_server.h"
#include "lb/admin/exposition.h"
#include "lb/net/access_log.h"
#include "lb/net/wall_clock.h"

namespace lb::admin {

// The Blockfrost quota guard of each rate-limited pool (DESIGN.md's metric table):
// window "second" is the token bucket (used = tokens taken and not yet refilled), window
// "day" the UTC day's count.
void AdminServer::quota_metrics(std::string& o, const net::Runtime& rt) const {
  const uint64_t now = uv_now(loop_);
  const uint64_t unix_now = net::wall_ms();
  std::vector<std::pair<std::string, lb::QuotaSnapshot>> snaps;
  for (const auto& p : rt.pools)
    if (p.quota)
      snaps.emplace_back("pool=\"" + label(p.name) + "\"", p.quota->snapshot(now, unix_now));
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
  o.reserve(8192);
  Exposition e(o);
  auto bl = [](const net::RuntimePool& p, const net::RuntimeBackend& b) {
    return "pool=\"" + label(p.name) + "\",backend=\"" + label(b.name) + "\"";
  };
  auto ll = [](const net::RuntimeListener& l) { return "listener=\"" + label(l.name) + "\""; };
  // A family with one sample per backend: value(backend).
  auto per_backend = [&](std::string_view name, std::string_view type, std::string_view text,
                         auto&& value) {
    e.help(name, type, text);
    for (const auto& p : rt->pools)
      for (const auto& b : p.backends) e.line(name, bl(p, b), value(b));
  };

  e.help("corral_requests_total", "counter",
         "Responses per backend and status code (502/504 made by corral for that backend).");
  for (const auto& p : rt->pools)
    for (const auto& b : p.backends)
      for (size_t code = 100; code < b.stats->responses.by_code.size(); ++code)
        if (uint64_t n = load(b.stats->responses.by_code[code]))
          e.line("corral_requests_total", bl(p, b) + ",code=\"" + std::to_string(code) + "\"", n);

  e.help("corral_local_responses_total", "counter",
         "Responses corral made itself (no route, method, bad request, no backend).");
  for (const auto& l : rt->listeners)
    for (size_t code = 100; code < l.stats->local.by_code.size(); ++code)
      if (uint64_t n = load(l.stats->local.by_code[code]))
        e.line("corral_local_responses_total", ll(l) + ",code=\"" + std::to_string(code) + "\"", n);

  e.help("corral_response_seconds", "histogram", "Time from request sent to response head.");
  for (const auto& p : rt->pools)
    for (const auto& b : p.backends) {
      const net::LatencyHistogram& h = b.stats->latency;
      uint64_t cum = 0;
      for (size_t i = 0; i < h.buckets.size(); ++i) {
        cum += load(h.buckets[i]);
        std::string le = i < net::kLatencyBucketsMs.size()
                             ? std::to_string(net::kLatencyBucketsMs[i] / 1000.0)
                             : std::string("+Inf");
        if (i < net::kLatencyBucketsMs.size()) le.erase(le.find_last_not_of('0') + 1);
        if (!le.empty() && le.back() == '.') le.push_back('0');
        e.line("corral_response_seconds_bucket", bl(p, b) + ",le=\"" + le + "\"", cum);
      }
      o.append("corral_response_seconds_sum{").append(bl(p, b)).append("} ");
      o.append(std::to_string(load(h.sum_us) / 1e6)).append("\n");
      e.line("corral_response_seconds_count", bl(p, b), cum);
    }

  e.help("corral_backend_up", "gauge", "Backend state: 1 for the state it is in.");
  for (const auto& p : rt->pools)
    for (const auto& b : p.backends)
      for (auto s : {lb::BackendState::up, lb::BackendState::draining, lb::BackendState::down})
        e.line("corral_backend_up", bl(p, b) + ",state=\"" + lb::state_name(s) + "\"",
               b.stats->state.load() == s ? 1 : 0);

  per_backend("corral_backend_tip_slot", "gauge", "Highest chain slot seen from the backend.",
              [](const net::RuntimeBackend& b) { return load(b.stats->tip_slot); });
  // Prometheus wants each family's samples together: one pass per family.
  const uint64_t now = uv_now(loop_);
  auto per_health = [&](std::string_view name, std::string_view type, std::string_view text,
                        auto&& emit) {
    e.help(name, type, text);
    for (const auto& p : rt->pools)
      for (const auto& b : p.backends)
        if (std::optional<net::BackendHealthView> h = health_.backend(b.ref, now))
          emit(bl(p, b), *h);
  };
  using V = net::BackendHealthView;
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
  per_backend("corral_retried_503_total", "counter",
              "New users moved to another backend after a 503.",
              [](const net::RuntimeBackend& b) { return load(b.stats->retried_503); });

  per_backend("corral_backend_pinned_sessions", "gauge", "Sessions pinned to the backend.",
              [&](const net::RuntimeBackend& b) { return state_.sessions.pinned(b.ref); });
  per_backend("corral_backend_in_flight", "gauge", "Requests in flight to the backend.",
              [](const net::RuntimeBackend& b) { return non_negative(b.stats->in_flight.load()); });
  per_backend("corral_tunnels", "gauge", "Open WebSocket tunnels to the backend.",
              [](const net::RuntimeBackend& b) { return non_negative(b.stats->tunnels.load()); });
  e.help("corral_tunnel_bytes_total", "counter", "Bytes through WebSocket tunnels, by direction.");
  for (const auto& p : rt->pools)
    for (const auto& b : p.backends) {
      e.line("corral_tunnel_bytes_total", bl(p, b) + ",direction=\"to_backend\"",
             load(b.stats->tunnel_bytes_to_backend));
      e.line("corral_tunnel_bytes_total", bl(p, b) + ",direction=\"to_client\"",
             load(b.stats->tunnel_bytes_to_client));
    }
  e.help("corral_tunnel_closes_total", "counter",
         "Close frames corral sent to WebSocket clients: 1012 (backend gone), 1001 (shutdown, "
         "idle).");
  for (const auto& p : rt->pools) {
    uint64_t c1001 = 0, c1012 = 0;  // removed backends' closes included
    state_.registry.for_each_in_pool(p.name, [&](const net::BackendStats& st) {
      c1001 += load(st.tunnel_closes_1001);
      c1012 += load(st.tunnel_closes_1012);
    });
    e.line("corral_tunnel_closes_total", "pool=\"" + label(p.name) + "\",code=\"1001\"", c1001);
    e.line("corral_tunnel_closes_total", "pool=\"" + label(p.name) + "\",code=\"1012\"", c1012);
  }
  struct Counter {
    const char* name;
    const char* text;
    std::atomic<uint64_t> net::BackendStats::*field;
  };
  for (const Counter& c :
       {Counter{"corral_backend_connect_failures_total", "Failed connections to the backend.",
                &net::BackendStats::connect_failures},
        Counter{"corral_backend_tls_failures_total",
                "TLS to the backend failed (handshake, certificate not verified).",
                &net::BackendStats::tls_failures},
        Counter{"corral_backend_timeouts_total", "Connect or response timeouts.",
                &net::BackendStats::timeouts},
        Counter{"corral_backend_resets_total", "Backend closed or reset mid-exchange.",
                &net::BackendStats::resets},
        Counter{"corral_backend_client_aborts_total", "Clients that went away mid-exchange.",
                &net::BackendStats::client_aborts}}) {
    per_backend(c.name, "counter", c.text,
                [&](const net::RuntimeBackend& b) { return load((*b.stats).*(c.field)); });
  }

  quota_metrics(o, *rt);

  e.help("corral_sessions", "gauge", "Pinned sessions in the table.");
  e.line("corral_sessions", "", ss.size);
  e.help("corral_sessions_expired_total", "counter", "Pins dropped after ttl idle.");
  e.line("corral_sessions_expired_total", "", ss.expired);
  e.help("corral_sessions_evicted_total", "counter", "Pins dropped by the max_sessions bound.");
  e.line("corral_sessions_evicted_total", "", ss.evicted);
  e.help("corral_remaps_total", "counter", "Users moved to another backend, by reason.");
  e.line("corral_remaps_total", "reason=\"down\"", load(state_.remaps_down));
  e.line("corral_remaps_total", "reason=\"removed\"", load(state_.remaps_removed));
  e.line("corral_remaps_total", "reason=\"admin\"", load(state_.remaps_admin));
  e.line("corral_remaps_total", "reason=\"expired\"", ss.expired);

  e.help("corral_config_reloads_total", "counter", "SIGHUP reloads by result.");
  e.line("corral_config_reloads_total", "result=\"ok\"", load(state_.reloads_ok));
  e.line("corral_config_reloads_total", "result=\"failed\"", load(state_.reloads_failed));

  e.help("corral_connections", "gauge", "Open client connections.");
  e.line("corral_connections", "", non_negative(state_.connections.load()));
  e.help("corral_buffer_bytes", "gauge",
         "Bytes of connection buffers held (in use or on free lists), all workers.");
  e.line("corral_buffer_bytes", "", state_.buffers.bytes.load(std::memory_order_relaxed));
  e.help("corral_buffer_in_use_bytes", "gauge",
         "Bytes of connection buffers held by connections now (not on free lists).");
  e.line("corral_buffer_in_use_bytes", "", state_.buffers.in_use_bytes());
  e.help("corral_buffer_waits_total", "counter",
         "Reads paused because limits.max_buffer_memory was reached.");
  e.line("corral_buffer_waits_total", "", state_.buffers.refused.load(std::memory_order_relaxed));
  e.help("corral_connections_accepted_total", "counter", "Client connections accepted.");
  for (const auto& l : rt->listeners)
    e.line("corral_connections_accepted_total", ll(l), load(l.stats->accepted));
  e.help("corral_connections_rejected_total", "counter", "Connections refused at max_connections.");
  for (const auto& l : rt->listeners)
    e.line("corral_connections_rejected_total", ll(l), load(l.stats->rejected));
  e.help("corral_client_timeouts_total", "counter",
         "Clients cut off by limits.body_timeout (408) or limits.send_timeout.");
  for (const auto& l : rt->listeners) {
    e.line("corral_client_timeouts_total", ll(l) + ",timeout=\"body\"",
           load(l.stats->body_timeouts));
    e.line("corral_client_timeouts_total", ll(l) + ",timeout=\"send\"",
           load(l.stats->send_timeouts));
  }
  e.help("corral_client_limited_total", "counter",
         "Requests answered 429 by a route's client_rate_limit (the backend never saw them).");
  for (const auto& l : rt->listeners)
    for (size_t i = 0; i < l.routes.size() && i < l.limited.size(); ++i)
      if (l.routes[i].client_limit.enabled())
        e.line("corral_client_limited_total",
               ll(l) + ",route=\"" + label(l.routes[i].prefix) + "\"", load(*l.limited[i]));
  e.help("corral_client_limiter_buckets", "gauge",
         "Per-client token buckets held (bounded; the least recently seen is dropped).");
  e.line("corral_client_limiter_buckets", "", state_.client_limiter.size());
  e.help("corral_tls_failures_total", "counter",
         "TLS listeners: connections that failed the handshake (a version or cipher not "
         "offered, plain HTTP to the TLS port) or sent a bad record.");
  for (const auto& l : rt->listeners)
    if (l.tls) e.line("corral_tls_failures_total", ll(l), load(l.stats->tls_failures));
  e.help("corral_fd_exhausted_total", "counter",
         "Times corral ran out of file descriptors (EMFILE/ENFILE): accepting a client, or "
         "opening a connection to a backend (never counted as the backend's failure).");
  e.line("corral_fd_exhausted_total", "side=\"accept\"", load(state_.fd_exhausted_accept));
  e.line("corral_fd_exhausted_total", "side=\"upstream\"", load(state_.fd_exhausted));
  e.help("corral_process_resident_memory_bytes", "gauge", "Resident set size of the process.");
  e.line("corral_process_resident_memory_bytes", "", resident_bytes());
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
