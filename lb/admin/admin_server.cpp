#include "lb/admin/admin_server.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <span>

#include "lb/admin/json_writer.h"
#include "lb/admin/token_compare.h"
#include "lb/core/header_view.h"
#include "lb/net/log.h"
#include "lb/net/wall_clock.h"

namespace lb::admin {
namespace {

uint64_t resident_bytes() {
  FILE* f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  int n = fscanf(f, "%lu %lu", &size, &resident);
  fclose(f);
  return n == 2 ? resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) : 0;
}

uint64_t load(const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); }

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

// Prometheus label values escape \, " and newline.
std::string label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out.append("\\n");
      continue;
    }
    out.push_back(c);
  }
  return out;
}

void codes_json(JsonWriter& j, const net::StatusCounters& s) {
  j.begin_object();
  for (size_t code = 0; code < s.by_code.size(); ++code)
    if (uint64_t n = load(s.by_code[code])) j.key(std::to_string(code)).value(n);
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

uint64_t total(const net::StatusCounters& s) {
  uint64_t n = 0;
  for (const auto& c : s.by_code) n += load(c);
  return n;
}

// "Authorization: Bearer <token>" (RFC 6750 §2.1; the scheme is case-insensitive, RFC 9110
// §11.1), the token compared in constant time whatever the guess.
bool bearer_ok(std::span<const HeaderView> headers, const std::string& token) {
  HeaderLookup auth = find_header(headers, "authorization");
  if (!auth.found) return false;
  std::string_view v = auth.value;
  if (v.size() < 7 || !iequals(v.substr(0, 6), "bearer") || v[6] != ' ') return false;
  v.remove_prefix(7);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return token_equals(v, token);
}

net::ServerOptions admin_options() {
  net::ServerOptions o;
  o.header_timeout_ms = kHeaderTimeoutMs;
  o.max_connections = kMaxConnections;
  return o;
}

}  // namespace

AdminServer::AdminServer(uv_loop_t* loop, net::ProxyState& state, net::HealthView& health,
                         ProcessInfo info)
    : loop_(loop),
      state_(state),
      health_(health),
      info_(std::move(info)),
      server_(
          loop,
          [this](const net::ServerRequest& req, net::Responder res) {
            handle(req, std::move(res));
          },
          admin_options()) {}

int AdminServer::listen(const std::string& host, uint16_t port) {
  return server_.listen(host, port);
}

void AdminServer::handle(const net::ServerRequest& req, net::Responder res) {
  auto rt = state_.runtime.load();
  const std::string& token = rt->config.admin.token;
  if (!token.empty() && !bearer_ok(req.headers, token)) {
    // Neither the token sent nor the one expected is logged.
    net::log_limited("admin: %.*s %.*s refused (401): missing or wrong bearer token",
                     static_cast<int>(req.method.size()), req.method.data(),
                     static_cast<int>(std::min<size_t>(req.target.size(), 200)), req.target.data());
    res.respond(401, "application/json", "{\"error\":\"bearer token required\"}\n",
                {{"WWW-Authenticate", "Bearer"}});
    return;
  }
  std::string_view path = req.target.substr(0, req.target.find('?'));
  if (req.method == "POST" && path.starts_with("/backends/")) {
    set_backend_state(path.substr(10), res);
    return;
  }
  if (req.method != "GET" && req.method != "HEAD") {
    res.respond(405, "application/json", "{\"error\":\"method not allowed\"}\n",
                {{"Allow", "GET, HEAD"}});
    return;
  }
  if (path == "/status") {
    res.respond(200, "application/json", status_json());
  } else if (path == "/metrics") {
    res.respond(200, "text/plain; version=0.0.4; charset=utf-8", metrics_text());
  } else {
    res.respond(404, "application/json", "{\"error\":\"not found\"}\n");
  }
}

void AdminServer::set_backend_state(std::string_view rest, net::Responder& res) {
  // rest = "<backend>/<up|drain|down|auto>"
  size_t slash = rest.find('/');
  std::string name(rest.substr(0, slash));
  std::string_view action = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  std::optional<lb::BackendState> to;
  if (action == "up")
    to = lb::BackendState::up;
  else if (action == "drain")
    to = lb::BackendState::draining;
  else if (action == "down")
    to = lb::BackendState::down;
  else if (action != "auto") {
    res.respond(400, "application/json",
                "{\"error\":\"expected /backends/NAME/up|drain|down|auto\"}\n");
    return;
  }
  if (!health_.set_admin(name, to)) {
    res.respond(404, "application/json", "{\"error\":\"no such backend\"}\n");
    return;
  }
  JsonWriter j;
  j.begin_object().key("backend").value(name).key("override");
  if (to)
    j.value(lb::state_name(*to));
  else
    j.null();
  j.end_object();
  res.respond(200, "application/json", j.str() + "\n");
}

std::string AdminServer::status_json() const {
  auto rt = state_.runtime.load();
  SessionTableStats ss = state_.sessions.stats();
  JsonWriter j;
  j.begin_object();
  j.key("version").value(info_.version);
  j.key("config").value(rt->config.source);
  j.key("uptime_s").value((uv_now(loop_) - info_.started_ms) / 1000);
  j.key("workers").value(info_.workers);
  j.key("connections").value(state_.connections.load());
  j.key("resident_bytes").value(resident_bytes());
  j.key("sessions").begin_object();
  j.key("size").value(ss.size);
  j.key("max").value(rt->config.sticky.max_sessions);
  j.key("expired").value(ss.expired);
  j.key("evicted").value(ss.evicted);
  j.key("bytes_per_session").value(static_cast<uint64_t>(state_.sessions.bytes_per_session()));
  j.end_object();
  j.key("reloads").begin_object();
  j.key("ok").value(load(state_.reloads_ok));
  j.key("failed").value(load(state_.reloads_failed));
  j.key("last_error");
  if (state_.last_reload_error.empty())
    j.null();
  else
    j.value(state_.last_reload_error);
  j.end_object();
  j.key("client_limiter").begin_object();
  j.key("buckets").value(static_cast<uint64_t>(state_.client_limiter.size()));
  j.key("max").value(static_cast<uint64_t>(state_.client_limiter.max_entries()));
  j.key("evicted").value(state_.client_limiter.evicted());
  j.end_object();
  j.key("remaps").begin_object();
  j.key("down").value(load(state_.remaps_down));
  j.key("removed").value(load(state_.remaps_removed));
  j.key("admin").value(load(state_.remaps_admin));
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
      j.key("in_flight").value(static_cast<int64_t>(s.in_flight.load()));
      j.key("tunnels").value(static_cast<int64_t>(s.tunnels.load()));
      j.key("tunnel_bytes").begin_object();
      j.key("to_backend").value(load(s.tunnel_bytes_to_backend));
      j.key("to_client").value(load(s.tunnel_bytes_to_client)).end_object();
      j.key("tunnel_closes").begin_object();
      j.key("1001").value(load(s.tunnel_closes_1001));
      j.key("1012").value(load(s.tunnel_closes_1012)).end_object();
      j.key("requests").value(total(s.responses));
      j.key("responses");
      codes_json(j, s.responses);
      j.key("tip_slot").value(load(s.tip_slot));
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
      j.key("retried_503").value(load(s.retried_503));
      j.key("connect_failures").value(load(s.connect_failures));
      j.key("tls_failures").value(load(s.tls_failures));
      j.key("timeouts").value(load(s.timeouts));
      j.key("resets").value(load(s.resets));
      j.key("client_aborts").value(load(s.client_aborts));
      j.end_object();
    }
    j.end_array();
    if (p.quota) {
      const uint64_t unix_now = net::wall_ms();
      j.key("quota");
      quota_json(j, p.quota->snapshot(now, unix_now), unix_now);
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
    if (l.tls) j.key("tls_failures").value(load(l.stats->tls_failures));
    j.key("open").value(static_cast<int64_t>(l.stats->open.load()));
    j.key("accepted").value(load(l.stats->accepted));
    j.key("rejected").value(load(l.stats->rejected));
    j.key("local_responses");
    codes_json(j, l.stats->local);
    j.end_object();
  }
  j.end_array();
  j.end_object();
  std::string out = j.str();
  out.push_back('\n');
  return out;
}

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
  auto line = [&o](std::string_view name, const std::string& labels, auto v) {
    o.append(name).append("{").append(labels).append("} ").append(std::to_string(v)).append("\n");
  };
  auto help = [&o](std::string_view name, std::string_view type, std::string_view text) {
    o.append("# HELP ").append(name).append(" ").append(text).append("\n");
    o.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  };
  help("corral_quota_used", "gauge",
       "Upstream quota used: window=second is the token bucket, window=day the UTC day.");
  for (const auto& [l, q] : snaps) {
    if (q.limits.rps > 0)
      line("corral_quota_used", l + ",window=\"second\"",
           static_cast<uint64_t>(q.limits.burst - std::floor(q.tokens)));
    if (q.limits.daily != 0) line("corral_quota_used", l + ",window=\"day\"", q.used_today);
  }
  help("corral_quota_remaining", "gauge", "Upstream quota left now: tokens, or today's requests.");
  for (const auto& [l, q] : snaps) {
    if (q.limits.rps > 0)
      line("corral_quota_remaining", l + ",window=\"second\"",
           static_cast<uint64_t>(std::floor(q.tokens)));
    if (q.limits.daily != 0)
      line("corral_quota_remaining", l + ",window=\"day\"", q.remaining_today);
  }
  help("corral_upstream_limited_total", "counter",
       "Upstream answers 402 (daily limit), 429 (rate limited) and 418 (banned).");
  for (const auto& [l, q] : snaps) {
    line("corral_upstream_limited_total", l + ",code=\"402\"", q.upstream_402);
    line("corral_upstream_limited_total", l + ",code=\"429\"", q.upstream_429);
    line("corral_upstream_limited_total", l + ",code=\"418\"", q.upstream_418);
  }
  help("corral_quota_refused_total", "counter",
       "Requests corral answered itself (429, or 402 after an upstream 402) instead of "
       "spending upstream quota, by reason.");
  for (const auto& [l, q] : snaps) {
    line("corral_quota_refused_total", l + ",reason=\"rate\"", q.refused_rate);
    line("corral_quota_refused_total", l + ",reason=\"daily\"", q.refused_daily);
    line("corral_quota_refused_total", l + ",reason=\"cooldown\"", q.refused_cooldown);
  }
  help("corral_quota_cooldown_seconds", "gauge",
       "Seconds left in an upstream cool-down (after a 402, 429 or 418); 0 when none.");
  for (const auto& [l, q] : snaps)
    line("corral_quota_cooldown_seconds", l,
         q.cooldown_status ? (q.cooldown_until_unix_ms - unix_now + 999) / 1000 : uint64_t{0});
}

std::string AdminServer::metrics_text() const {
  auto rt = state_.runtime.load();
  SessionTableStats ss = state_.sessions.stats();
  std::string o;
  o.reserve(8192);
  auto line = [&o](std::string_view name, const std::string& labels, uint64_t v) {
    o.append(name);
    if (!labels.empty()) o.append("{").append(labels).append("}");
    o.append(" ").append(std::to_string(v)).append("\n");
  };
  auto help = [&o](std::string_view name, std::string_view type, std::string_view text) {
    o.append("# HELP ").append(name).append(" ").append(text).append("\n");
    o.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  };
  auto bl = [](const net::RuntimePool& p, const net::RuntimeBackend& b) {
    return "pool=\"" + label(p.name) + "\",backend=\"" + label(b.name) + "\"";
  };

  help("corral_requests_total", "counter",
       "Responses per backend and status code (502/504 made by corral for that backend).");
  for (const auto& p : rt->pools)
    for (const auto& b : p.backends)
      for (size_t code = 100; code < b.stats->responses.by_code.size(); ++code)
        if (uint64_t n = load(b.stats->responses.by_code[code]))
          line("corral_requests_total", bl(p, b) + ",code=\"" + std::to_string(code) + "\"", n);

  help("corral_local_responses_total", "counter",
       "Responses corral made itself (no route, method, bad request, no backend).");
  for (const auto& l : rt->listeners)
    for (size_t code = 100; code < l.stats->local.by_code.size(); ++code)
      if (uint64_t n = load(l.stats->local.by_code[code]))
        line("corral_local_responses_total",
             "listener=\"" + label(l.name) + "\",code=\"" + std::to_string(code) + "\"", n);

  help("corral_response_seconds", "histogram", "Time from request sent to response head.");
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
        line("corral_response_seconds_bucket", bl(p, b) + ",le=\"" + le + "\"", cum);
      }
      o.append("corral_response_seconds_sum{").append(bl(p, b)).append("} ");
      o.append(std::to_string(load(h.sum_us) / 1e6)).append("\n");
      line("corral_response_seconds_count", bl(p, b), cum);
    }

  help("corral_backend_up", "gauge", "Backend state: 1 for the state it is in.");
  for (const auto& p : rt->pools)
    for (const auto& b : p.backends)
      for (auto s : {lb::BackendState::up, lb::BackendState::draining, lb::BackendState::down})
        line("corral_backend_up", bl(p, b) + ",state=\"" + lb::state_name(s) + "\"",
             b.stats->state.load() == s ? 1 : 0);

  help("corral_backend_tip_slot", "gauge", "Highest chain slot seen from the backend.");
  for (const auto& p : rt->pools)
    for (const auto& b : p.backends)
      line("corral_backend_tip_slot", bl(p, b), load(b.stats->tip_slot));
  // Prometheus wants each family's samples together: one pass per family.
  const uint64_t now = uv_now(loop_);
  auto per_health = [&](std::string_view name, std::string_view type, std::string_view text,
                        auto&& emit) {
    help(name, type, text);
    for (const auto& p : rt->pools)
      for (const auto& b : p.backends)
        if (std::optional<net::BackendHealthView> h = health_.backend(b.ref, now))
          emit(bl(p, b), *h);
  };
  using V = net::BackendHealthView;
  per_health(
      "corral_backend_lag_slots", "gauge", "Slots behind the best tip in the pool.",
      [&](const std::string& l, const V& h) { line("corral_backend_lag_slots", l, h.lag_slots); });
  per_health("corral_probes_total", "counter", "Active health probes by level reported.",
             [&](const std::string& l, const V& h) {
               line("corral_probes_total", l + ",result=\"up\"", h.probes_up);
               line("corral_probes_total", l + ",result=\"draining\"", h.probes_draining);
               line("corral_probes_total", l + ",result=\"down\"", h.probes_down);
             });
  per_health(
      "corral_ejections_total", "counter", "Ejections after consecutive 503s.",
      [&](const std::string& l, const V& h) { line("corral_ejections_total", l, h.ejections); });
  per_health("corral_state_transitions_total", "counter", "Backend state changes.",
             [&](const std::string& l, const V& h) {
               line("corral_state_transitions_total", l, h.transitions);
             });
  help("corral_retried_503_total", "counter", "New users moved to another backend after a 503.");
  for (const auto& p : rt->pools)
    for (const auto& b : p.backends)
      line("corral_retried_503_total", bl(p, b), load(b.stats->retried_503));

  help("corral_backend_pinned_sessions", "gauge", "Sessions pinned to the backend.");
  for (const auto& p : rt->pools)
    for (const auto& b : p.backends)
      line("corral_backend_pinned_sessions", bl(p, b), state_.sessions.pinned(b.ref));
  help("corral_backend_in_flight", "gauge", "Requests in flight to the backend.");
  for (const auto& p : rt->pools)
    for (const auto& b : p.backends)
      line("corral_backend_in_flight", bl(p, b),
           static_cast<uint64_t>(std::max<int64_t>(0, b.stats->in_flight.load())));
  help("corral_tunnels", "gauge", "Open WebSocket tunnels to the backend.");
  for (const auto& p : rt->pools)
    for (const auto& b : p.backends)
      line("corral_tunnels", bl(p, b),
           static_cast<uint64_t>(std::max<int64_t>(0, b.stats->tunnels.load())));
  help("corral_tunnel_bytes_total", "counter", "Bytes through WebSocket tunnels, by direction.");
  for (const auto& p : rt->pools)
    for (const auto& b : p.backends) {
      line("corral_tunnel_bytes_total", bl(p, b) + ",direction=\"to_backend\"",
           load(b.stats->tunnel_bytes_to_backend));
      line("corral_tunnel_bytes_total", bl(p, b) + ",direction=\"to_client\"",
           load(b.stats->tunnel_bytes_to_client));
    }
  help("corral_tunnel_closes_total", "counter",
       "Close frames corral sent to WebSocket clients: 1012 (backend gone), 1001 (shutdown, "
       "idle).");
  for (const auto& p : rt->pools) {
    uint64_t c1001 = 0, c1012 = 0;  // removed backends' closes included
    state_.registry.for_each_in_pool(p.name, [&](const net::BackendStats& st) {
      c1001 += load(st.tunnel_closes_1001);
      c1012 += load(st.tunnel_closes_1012);
    });
    line("corral_tunnel_closes_total", "pool=\"" + label(p.name) + "\",code=\"1001\"", c1001);
    line("corral_tunnel_closes_total", "pool=\"" + label(p.name) + "\",code=\"1012\"", c1012);
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
    help(c.name, "counter", c.text);
    for (const auto& p : rt->pools)
      for (const auto& b : p.backends) line(c.name, bl(p, b), load((*b.stats).*(c.field)));
  }

  quota_metrics(o, *rt);

  help("corral_sessions", "gauge", "Pinned sessions in the table.");
  line("corral_sessions", "", ss.size);
  help("corral_sessions_expired_total", "counter", "Pins dropped after ttl idle.");
  line("corral_sessions_expired_total", "", ss.expired);
  help("corral_sessions_evicted_total", "counter", "Pins dropped by the max_sessions bound.");
  line("corral_sessions_evicted_total", "", ss.evicted);
  help("corral_remaps_total", "counter", "Users moved to another backend, by reason.");
  line("corral_remaps_total", "reason=\"down\"", load(state_.remaps_down));
  line("corral_remaps_total", "reason=\"removed\"", load(state_.remaps_removed));
  line("corral_remaps_total", "reason=\"admin\"", load(state_.remaps_admin));
  line("corral_remaps_total", "reason=\"expired\"", ss.expired);

  help("corral_config_reloads_total", "counter", "SIGHUP reloads by result.");
  line("corral_config_reloads_total", "result=\"ok\"", load(state_.reloads_ok));
  line("corral_config_reloads_total", "result=\"failed\"", load(state_.reloads_failed));

  help("corral_connections", "gauge", "Open client connections.");
  line("corral_connections", "",
       static_cast<uint64_t>(std::max<int64_t>(0, state_.connections.load())));
  help("corral_buffer_bytes", "gauge",
       "Bytes of connection buffers held (in use or on free lists), all workers.");
  line("corral_buffer_bytes", "", state_.buffers.bytes.load(std::memory_order_relaxed));
  help("corral_buffer_in_use_bytes", "gauge",
       "Bytes of connection buffers held by connections now (not on free lists).");
  line("corral_buffer_in_use_bytes", "", state_.buffers.in_use_bytes());
  help("corral_buffer_waits_total", "counter",
       "Reads paused because limits.max_buffer_memory was reached.");
  line("corral_buffer_waits_total", "", state_.buffers.refused.load(std::memory_order_relaxed));
  help("corral_connections_accepted_total", "counter", "Client connections accepted.");
  for (const auto& l : rt->listeners)
    line("corral_connections_accepted_total", "listener=\"" + label(l.name) + "\"",
         load(l.stats->accepted));
  help("corral_connections_rejected_total", "counter", "Connections refused at max_connections.");
  for (const auto& l : rt->listeners)
    line("corral_connections_rejected_total", "listener=\"" + label(l.name) + "\"",
         load(l.stats->rejected));
  help("corral_client_timeouts_total", "counter",
       "Clients cut off by limits.body_timeout (408) or limits.send_timeout.");
  for (const auto& l : rt->listeners) {
    line("corral_client_timeouts_total", "listener=\"" + label(l.name) + "\",timeout=\"body\"",
         load(l.stats->body_timeouts));
    line("corral_client_timeouts_total", "listener=\"" + label(l.name) + "\",timeout=\"send\"",
         load(l.stats->send_timeouts));
  }
  help("corral_client_limited_total", "counter",
       "Requests answered 429 by a route's client_rate_limit (the backend never saw them).");
  for (const auto& l : rt->listeners)
    for (size_t i = 0; i < l.routes.size() && i < l.limited.size(); ++i)
      if (l.routes[i].client_limit.enabled())
        line("corral_client_limited_total",
             "listener=\"" + label(l.name) + "\",route=\"" + label(l.routes[i].prefix) + "\"",
             load(*l.limited[i]));
  help("corral_client_limiter_buckets", "gauge",
       "Per-client token buckets held (bounded; the least recently seen is dropped).");
  line("corral_client_limiter_buckets", "", state_.client_limiter.size());
  help("corral_tls_failures_total", "counter",
       "TLS listeners: connections that failed the handshake (a version or cipher not "
       "offered, plain HTTP to the TLS port) or sent a bad record.");
  for (const auto& l : rt->listeners)
    if (l.tls)
      line("corral_tls_failures_total", "listener=\"" + label(l.name) + "\"",
           load(l.stats->tls_failures));
  help("corral_fd_exhausted_total", "counter",
       "Times corral ran out of file descriptors (EMFILE/ENFILE): accepting a client, or "
       "opening a connection to a backend (never counted as the backend's failure).");
  line("corral_fd_exhausted_total", "side=\"accept\"", load(state_.fd_exhausted_accept));
  line("corral_fd_exhausted_total", "side=\"upstream\"", load(state_.fd_exhausted));
  help("corral_process_resident_memory_bytes", "gauge", "Resident set size of the process.");
  line("corral_process_resident_memory_bytes", "", resident_bytes());
  return o;
}

}  // namespace lb::admin
