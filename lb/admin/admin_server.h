#pragma once
// The admin listener (DESIGN.md "Observability"): GET /status (JSON), GET /metrics
// (Prometheus text format), GET /sessions/<hash> (one user's pin, sessions.h), POST
// /backends/NAME/{up,drain,down,auto} (maintenance: a drained backend keeps its users and
// takes no new ones; a down one hands its users over; auto gives the backend back to its
// health checks), POST /cache/purge[?pool=NAME][&prefix=/path/] (drops cached answers,
// cache_purge.h). Runs on the control loop, reads health
// through net::HealthView only, binds loopback by default and requires "Authorization: Bearer
// <token>" when a token is configured.
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

#include "lb/admin/traffic_sampler.h"
#include "lb/net/health_view.h"
#include "lb/net/http_server.h"
#include "lb/net/proxy_state.h"

namespace lb::admin {

// The admin listener's own limits (issue 9 item 11): a client has this long to send a
// request head (then 408 and close), and at most this many connections are open at once
// (more are answered 503 and closed), so a slow or flooding admin client cannot hold
// corral's descriptors or memory.
inline constexpr uint64_t kHeaderTimeoutMs = 10'000;
inline constexpr size_t kMaxConnections = 64;
// How often the rolling /status figures sample the backends' counters.
inline constexpr uint64_t kSampleMs = 1000;

struct ProcessInfo {
  unsigned workers = 1;
  uint64_t started_ms = 0;       // uv_now at start
  uint64_t started_unix_ms = 0;  // wall clock at start
  std::string version;
};

class AdminServer {
 public:
  AdminServer(uv_loop_t* loop, net::ProxyState& state, net::HealthView& health, ProcessInfo info);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;
  // Listens and, once listening, samples every backend's counters each kSampleMs for the
  // rolling figures of /status (traffic_sampler.h).
  int listen(const std::string& host, uint16_t port);
  uint16_t port() const { return server_.port(); }
  void close();

  // The documents, also used by tests.
  std::string status_json() const;
  std::string metrics_text() const;
  void quota_metrics(std::string& out, const net::Runtime& rt) const;

 private:
  void handle(const net::ServerRequest& req, net::Responder res);
  void set_backend_state(std::string_view rest, net::Responder& res);
  static void on_sample(uv_timer_t* t);
  void stop_sampling();

  uv_loop_t* loop_;
  net::ProxyState& state_;
  net::HealthView& health_;
  ProcessInfo info_;
  net::HttpServer server_;
  TrafficSampler sampler_;
  uv_timer_t* sample_timer_ = nullptr;  // freed in its close callback
};

}  // namespace lb::admin
