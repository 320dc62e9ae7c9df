// The admin listener itself: its connection limits, bearer-token check, routing of
// requests to the documents (status.cpp, metrics.cpp, sessions.cpp) and the operator
// endpoints POST /backends/NAME/{up,drain,down,auto} and POST /cache/purge (cache_purge.h).
#include "lb/admin/admin_server.h"

#include <algorithm>
#include <optional>
#include <span>

#include "lb/admin/cache_purge.h"
#include "lb/admin/dashboard.h"
#include "lb/admin/json_writer.h"
#include "lb/admin/sessions.h"
#include "lb/admin/token_compare.h"
#include "lb/core/header_view.h"
#include "lb/net/access_log.h"
#include "lb/net/log.h"
#include "lb/net/wall_clock.h"

namespace lb::admin {
namespace {

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

AdminServer::~AdminServer() { stop_sampling(); }

int AdminServer::listen(const std::string& host, uint16_t port) {
  int rc = server_.listen(host, port);
  if (rc != 0 || sample_timer_ != nullptr) return rc;
  sample_timer_ = new uv_timer_t;
  uv_timer_init(loop_, sample_timer_);
  sample_timer_->data = this;
  sampler_.sample(*state_.runtime.load(), uv_now(loop_));  // the baseline
  uv_timer_start(sample_timer_, &AdminServer::on_sample, kSampleMs, kSampleMs);
  return 0;
}

void AdminServer::close() {
  server_.close();
  stop_sampling();
}

void AdminServer::stop_sampling() {
  if (sample_timer_ == nullptr) return;
  uv_close(reinterpret_cast<uv_handle_t*>(sample_timer_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  sample_timer_ = nullptr;
}

void AdminServer::on_sample(uv_timer_t* t) {
  auto* self = static_cast<AdminServer*>(t->data);
  self->sampler_.sample(*self->state_.runtime.load(), uv_now(self->loop_));
}

void AdminServer::handle(const net::ServerRequest& req, net::Responder res) {
  if (is_dashboard_request(req)) {  // the page holds no data: no token needed (dashboard.h)
    serve_dashboard(res);
    return;
  }
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
  if (path == "/cache/purge") {  // POST only; any other method is told so (405)
    const size_t q = req.target.find('?');
    PurgeAnswer a =
        cache_purge(*rt, req.method,
                    q == std::string_view::npos ? std::string_view{} : req.target.substr(q + 1));
    if (a.allow_post)
      res.respond(a.status, "application/json", a.body, {{"Allow", "POST"}});
    else
      res.respond(a.status, "application/json", a.body);
    return;
  }
  if (req.method != "GET" && req.method != "HEAD") {
    res.respond(405, "application/json", "{\"error\":\"method not allowed\"}\n",
                {{"Allow", "GET, HEAD"}});
    return;
  }
  if (path == "/status") {
    res.respond(200, "application/json", status_json());
  } else if (path.starts_with("/sessions/")) {
    SessionsAnswer a =
        session_lookup(path.substr(10), state_.sessions, state_.registry,
                       net::access_log_session_seed(), uv_now(loop_), net::wall_ms());
    res.respond(a.status, "application/json", a.body);
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

}  // namespace lb::admin
