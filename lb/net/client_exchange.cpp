// ClientConn, second half: routing, placement, and the exchange with one upstream. The
// decisions are lb/core's (balancer.h: who serves the user; retry_policy.h: what may be
// sent again); this file gathers their inputs and carries them out.
#include <charconv>
#include <vector>

#include "lb/core/key_extractor.h"
#include "lb/core/router.h"
#include "lb/http/head_writer.h"
#include "lb/net/client_conn.h"
#include "lb/net/log.h"
#include "lb/net/socket_address.h"
#include "lb/net/worker.h"

namespace lb::net {
namespace {

uint64_t now_us() { return uv_hrtime() / 1000; }

// Parses an unsigned decimal header value (X-Most-Recent-Checkpoint).
bool parse_u64(std::string_view s, uint64_t& out) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

Failure failure_of(UpstreamError e) {
  switch (e) {
    case UpstreamError::connect_failed:
      return Failure::connect_failed;
    case UpstreamError::connect_timeout:
      return Failure::connect_timeout;
    case UpstreamError::response_timeout:
      return Failure::response_timeout;
    case UpstreamError::closed_early:
      return Failure::closed_early;
    case UpstreamError::reset:
      return Failure::reset;
    case UpstreamError::bad_response:
      break;
  }
  return Failure::bad_response;
}

}  // namespace

void ClientConn::on_request_head() {
  if (rt_ != worker_.runtime()) {
    // A reload: adopt the new snapshot unless it dropped our listener, in which case
    // this request runs on the old one and the connection closes after it.
    const auto& next = worker_.runtime();
    const std::string& mine = rt_->listeners[listener_].name;
    size_t i = 0;
    while (i < next->listeners.size() && next->listeners[i].name != mine) ++i;
    if (i < next->listeners.size()) {
      rt_ = next;
      listener_ = static_cast<uint32_t>(i);
    } else {
      stop_ = true;
    }
  }
  RequestState& rs = *rs_;
  const http::MessageParser& parser = rs.parser;
  const RuntimeListener& listener = rt_->listeners[listener_];
  const config::Config& cfg = rt_->config;
  std::string_view method = parser.method();
  http10_ = parser.version_major() == 1 && parser.version_minor() == 0;
  keep_alive_ = parser.keep_alive() && !stop_ && !client_eof_;
  head_request_ = method == "HEAD";
  req_done_ = resp_started_ = resp_head_pending_ = false;
  stale_retries_ = failovers_ = retries_503_ = 0;
  pinned_ = fresh_user_ = false;
  body_bytes_ = 0;
  bool has_body = parser.chunked() || parser.content_length() > 0;

  if (parser.content_length() > cfg.limits.max_body_bytes) {
    reply_local(413, "request body larger than max_body_bytes", true);
    return;
  }
  if (HeadCheck bad = check_head(method); bad.status != 0) {
    // 501: WebSocket tunnelling is its own issue; refuse clearly rather than half-work.
    // The parser treats what follows an upgrade as another protocol, so (like a 400)
    // the connection ends here.
    if (bad.status == 400) log_limited("client %s: bad request (400): %s", ip_text(), bad.reason);
    reply_local(bad.status, bad.reason, true);
    return;
  }
  reframe_ = parser.chunked();
  body_over_limit_ = false;

  RequestView view{method, parser.target(), parser.headers(), {ip_, ip_len_}};
  Extraction ex = extract_key(cfg.sticky.keys, view);
  std::string_view target = ex.forward_target;
  if (ex.forward_needs_slash) {
    rs.scratch.assign("/").append(target);
    target = rs.scratch;
  }
  RouteMatch m = match_route(listener.routes, method, target);
  switch (m.admission) {
    case Admission::no_route:
      reply_local(404, "no route for this path", has_body);
      return;
    case Admission::method_not_allowed: {
      std::string allow = "Allow: ";
      for (size_t i = 0; i < m.route->methods.size(); ++i)
        allow.append(i ? ", " : "").append(m.route->methods[i]);
      allow.append("\r\n");
      reply_local(405, "method not allowed on this route", has_body, allow);
      return;
    }
    case Admission::write_blocked:
      log_limited("client %s: refused Kupo write %.*s %.*s", ip_text(),
                  static_cast<int>(method.size()), method.data(),
                  static_cast<int>(m.forward.size()), m.forward.data());
      reply_local(403, "Kupo write endpoints are not exposed", has_body);
      return;
    case Admission::ok:
      break;
  }

  const RuntimePool& pool = rt_->pools[m.route->pool];
  pool_ = &pool;
  if (ex.found) {
    pin_key_ = pool_session_key(ex.key, pool.salt);
    hash_ = pin_key_.lo;
  } else {
    // No key at all: spread by a per-worker counter; nothing to pin.
    static thread_local uint64_t seq = 0;
    hash_ = name_hash(std::string_view(reinterpret_cast<const char*>(&++seq), sizeof seq));
  }
  pinned_ = ex.found;
  Decision d = place_user(pool, kNoBackend);
  if (d.kind == Placement::none) {
    reply_local(503, "no backend available", has_body, "Retry-After: 5\r\n");
    return;
  }

  http::RequestHead head;
  head.method = method;
  head.path = m.forward;
  head.path_needs_slash = m.needs_slash;
  head.http10 = http10_;
  head.headers = parser.headers();
  char ip[48];
  format_ip(ip_, ip_len_, ip, sizeof ip);
  head.client_ip = ip;
  head.inject = pool.inject;
  head.chunked = reframe_;
  http::write_request_head(rs.req_head, head);
  start_exchange(pool, d.index);
}

Decision ClientConn::place_user(const RuntimePool& pool, BackendRef exclude, bool count_move) {
  SessionTable& sessions = worker_.state().sessions;
  uint64_t now = uv_now(worker_.loop());
  static thread_local std::vector<Candidate> cands;
  cands.resize(pool.backends.size());
  for (size_t i = 0; i < pool.backends.size(); ++i) {
    const RuntimeBackend& b = pool.backends[i];
    Candidate& c = cands[i];
    c.ref = b.ref;
    c.state = b.stats->state.load(std::memory_order_relaxed);
    c.reachable = b.resolved;
    c.admin = b.stats->admin.load(std::memory_order_relaxed);
    c.weight = b.weight;
    c.pinned = sessions.pinned(b.ref);
    c.tip_slot = b.stats->tip_slot.load(std::memory_order_relaxed);
    c.ramp_start_ms = b.stats->ramp_start_ms.load(std::memory_order_relaxed);
  }
  PlacementRequest r;
  r.hash = hash_;
  r.exclude = exclude;
  r.now_ms = now;
  if (pinned_) {
    // An expired pin is simply gone: that user is new.
    if (std::optional<Pin> pin = sessions.touch(pin_key_, now)) {
      r.has_pin = true;
      r.pinned_to = pin->backend;
      r.last_slot = pin->last_slot;
    }
  }
  PoolView view{cands, pool.selector.get(), rt_->config.sticky.balance_factor, pool.slow_start_ms};
  Decision d = place(view, r);
  if (d.kind == Placement::new_user || d.kind == Placement::moved) {
    const RuntimeBackend& b = pool.backends[d.index];
    if (pinned_) sessions.pin(pin_key_, b.ref, now);
    b.stats->new_pins.fetch_add(1, std::memory_order_relaxed);
    if (d.kind == Placement::moved && count_move) record_move(d.reason);
    // A new or moved user has no state on its new backend: its 503 may be retried.
    fresh_user_ = true;
  }
  return d;
}

void ClientConn::record_move(MoveReason why) {
  ProxyState& st = worker_.state();
  (why == MoveReason::removed ? st.remaps_removed
   : why == MoveReason::admin ? st.remaps_admin
                              : st.remaps_down)
      .fetch_add(1, std::memory_order_relaxed);
}

ClientConn::HeadCheck ClientConn::check_head(std::string_view method) const {
  // One pass over the fields. Request smuggling defence (RFC 9112 §6.1): one
  // Transfer-Encoding field, exactly "chunked", on HTTP/1.1 only; anything else a backend
  // might frame differently. Protocol switches are not proxied yet.
  const http::MessageParser& parser = rs_->parser;
  bool upgrade = parser.upgrade() || method == "CONNECT";
  int te = 0;
  for (const HeaderView& h : parser.headers()) {
    if (iequals(h.name, "upgrade")) upgrade = true;
    if (!iequals(h.name, "transfer-encoding")) continue;
    std::string_view v = h.value;
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    if (++te > 1 || !iequals(v, "chunked")) return {400, "unsupported Transfer-Encoding"};
  }
  if (upgrade) return {501, "protocol upgrade is not supported on this route"};
  if (te > 0 && http10_) return {400, "Transfer-Encoding on an HTTP/1.0 request"};
  return {};
}

void ClientConn::start_exchange(const RuntimePool& pool, size_t backend) {
  pool_ = &pool;
  backend_ = &pool.backends[backend];
  backend_->stats->in_flight.fetch_add(1, std::memory_order_relaxed);
  if (!req_done_) rs_->parser.resume_after_head();  // a retry finds it paused at the end
  worker_.deadlines().clear(deadline_);
  up_ = worker_.upstreams().take(backend_->ref);
  if (up_) {
    up_->bind(this);
    send_request_head();
    return;
  }
  phase_ = Phase::connecting;
  up_ = new UpstreamConn(worker_, backend_->ref);
  up_->connect(reinterpret_cast<const sockaddr*>(&backend_->addr), this, pool.timeouts.connect_ms);
}

void ClientConn::upstream_connected() { send_request_head(); }

void ClientConn::send_request_head() {
  sent_at_us_ = now_us();
  up_->expect_response(head_request_, pool_->timeouts.response_ms);
  if (req_done_) {
    // A retry: the request was parsed to its end already; the parser stays paused there.
    phase_ = Phase::waiting;
    up_->send(rs_->req_head);
    up_->start_response_timer();
    return;
  }
  phase_ = Phase::body;
  // The head goes out with the first body bytes in one write, or alone at the end of
  // process() (see req_head_pending_).
  req_head_pending_ = true;
  process();
}

void ClientConn::forward_body(const char* data, size_t len) {
  if (len == 0 || !up_) return;
  if (req_head_pending_) {
    req_head_pending_ = false;
    up_->send(rs_->req_head, {data, len});
  } else {
    up_->send({data, len});
  }
}

void ClientConn::on_chunk_data(void* self, const char* data, size_t len) {
  auto* c = static_cast<ClientConn*>(self);
  if (!c->reframe_ || len == 0 || c->phase_ != Phase::body) return;
  c->body_bytes_ += len;
  if (c->body_bytes_ > c->rt_->config.limits.max_body_bytes) c->body_over_limit_ = true;
  if (!c->up_ || c->body_over_limit_) return;
  // Our own framing: "<hex size>\r\n<data>\r\n", whatever the client's looked like.
  char line[20];
  int n = snprintf(line, sizeof line, "%zx\r\n", len);
  std::string_view parts[4];
  size_t np = 0;
  if (c->req_head_pending_) {
    c->req_head_pending_ = false;
    parts[np++] = c->rs_->req_head;
  }
  parts[np++] = {line, static_cast<size_t>(n)};
  parts[np++] = {data, len};
  parts[np++] = "\r\n";
  c->up_->send(parts, np);
}

void ClientConn::upstream_drained() { update_reading(); }

// ---- response -------------------------------------------------------------------------

RetryFacts ClientConn::retry_facts() const {
  const http::MessageParser& p = rs_->parser;
  RetryFacts f;
  f.method = p.method();
  f.request_sent = req_done_;
  f.whole = req_done_ && !p.chunked() && p.content_length() == 0;
  f.response_started = resp_started_;
  f.fresh_user = fresh_user_;
  f.stale_retries = stale_retries_;
  f.failovers = failovers_;
  f.retries_503 = retries_503_;
  return f;
}

void ClientConn::upstream_head(const http::MessageParser& r) {
  int status = r.status_code();
  bool interim = status >= 100 && status < 200;
  if (!interim) {
    BackendStats& st = *backend_->stats;
    st.latency.observe(now_us() - sent_at_us_);
    st.responses.count(status);
    // Remember the chain point this user has seen, so a move never goes backwards.
    HeaderLookup cp = find_header(r.headers(), "x-most-recent-checkpoint");
    uint64_t slot = 0;
    if (cp.found && parse_u64(cp.value, slot)) {
      st.raise_tip(slot);
      if (pinned_) worker_.state().sessions.record_slot(pin_key_, slot);
    }
    // Health hears of 503s, and of the first other answer after them; nothing else.
    if (status == 503) {
      st.streak_503.fetch_add(1, std::memory_order_relaxed);
      worker_.state().passive.post({backend_->ref, status});
    } else if (st.streak_503.load(std::memory_order_relaxed) != 0 &&
               st.streak_503.exchange(0, std::memory_order_relaxed) != 0) {
      worker_.state().passive.post({backend_->ref, status});
    }
    if (status == 503 &&
        decide_retry(Failure::status_503, retry_facts()) == RetryAction::failover) {
      // An overloaded backend and a user with no state there yet: try the next candidate
      // once instead (DESIGN.md "Health"); this 503 is read and dropped.
      swallow_ = true;
      return;
    }
  }
  bool framed = r.chunked() || r.has_content_length() || head_request_ || status == 204 ||
                status == 304 || interim;
  if (!interim && (!framed || !req_done_ || !keep_alive_ || stop_ || client_eof_))
    close_after_ = true;
  http::ResponseHead head;
  head.status = status;
  head.reason = r.reason();
  head.headers = r.headers();
  if (interim)
    head.connection = http::ClientConnection::implicit;
  else if (close_after_)
    head.connection = http::ClientConnection::close;
  else
    head.connection =
        http10_ ? http::ClientConnection::keep_alive : http::ClientConnection::implicit;
  http::write_response_head(rs_->resp_head, head);
  if (interim) {
    stream_->write(rs_->resp_head);  // the final head follows and reuses the string
    return;
  }
  resp_head_pending_ = true;
  resp_started_ = true;
}

void ClientConn::upstream_body(const char* data, size_t len) {
  if (swallow_) return;
  if (resp_head_pending_) {
    resp_head_pending_ = false;
    stream_->write(rs_->resp_head, {data, len});
  } else {
    stream_->write({data, len});
  }
  if (stream_->pending() >= worker_.max_pending() && up_) {
    up_->pause_reading();
    arm_timer();
  }
}

void ClientConn::upstream_read_end() {
  if (resp_head_pending_ && !swallow_) {
    resp_head_pending_ = false;
    stream_->write(rs_->resp_head);
  }
}

void ClientConn::upstream_done(bool reusable) {
  UpstreamConn* up = up_;
  up_ = nullptr;
  backend_->stats->in_flight.fetch_sub(1, std::memory_order_relaxed);
  // A connection whose request was not fully sent cannot carry another one.
  if (up) up->release(reusable && req_done_);
  if (swallow_) {
    swallow_ = false;
    ++retries_503_;
    backend_->stats->retried_503.fetch_add(1, std::memory_order_relaxed);
    if (!move_request(backend_->ref, false))
      reply_local(503, "backend overloaded", true, "Retry-After: 1\r\n");
    return;
  }
  if (!req_done_) {
    // The backend answered early (e.g. an error) before the body was all read: we cannot
    // find the next request's start reliably, so this connection ends here.
    close_after_ = true;
  }
  finish_exchange();
}

bool ClientConn::move_request(BackendRef failed, bool count_move) {
  Decision d = place_user(*pool_, failed, count_move);
  if (d.kind == Placement::none) return false;
  start_exchange(*pool_, d.index);
  return true;
}

void ClientConn::finish_exchange() {
  if (close_after_ || !req_done_) {
    end_response_and_close();
    return;
  }
  next_request();
  process();
}

void ClientConn::upstream_failed(UpstreamError e) {
  RetryFacts facts = retry_facts();
  facts.reused_connection = up_ && up_->reused();  // still valid: freed in its close callback
  up_ = nullptr;                                   // it closed itself
  BackendStats& st = *backend_->stats;
  RetryAction act = decide_retry(failure_of(e), facts);
  if (act == RetryAction::same) {
    // A parked keep-alive connection the backend had already closed: the request never
    // reached it, so send it again on a fresh connection.
    ++stale_retries_;
    phase_ = Phase::connecting;
    up_ = new UpstreamConn(worker_, backend_->ref);
    up_->connect(reinterpret_cast<const sockaddr*>(&backend_->addr), this,
                 pool_->timeouts.connect_ms);
    return;
  }
  bool connect = e == UpstreamError::connect_failed || e == UpstreamError::connect_timeout;
  bool timeout = e == UpstreamError::connect_timeout || e == UpstreamError::response_timeout;
  (e == UpstreamError::connect_failed ? st.connect_failures
   : timeout                          ? st.timeouts
                                      : st.resets)
      .fetch_add(1);
  logf(LogLevel::warn, "backend %s (%s): %s", backend_->name.c_str(), backend_->address.c_str(),
       upstream_error_name(e));
  // Health hears of failures that are the backend's: it could not be reached, or it had
  // the whole request and failed it. A backend that cuts off an upload it refuses is
  // not unhealthy, and a client must not be able to mark backends down that way.
  if (connect || req_done_) worker_.state().passive.post({backend_->ref, 0});
  if (act == RetryAction::failover) {
    // Nothing reached the backend, or the request got no answer at all and can be resent:
    // the user moves now rather than see a 502 while health catches up.
    ++failovers_;
    st.in_flight.fetch_sub(1, std::memory_order_relaxed);
    if (move_request(backend_->ref, true)) return;
    backend_ = nullptr;
    reply_local(502, "no reachable backend", true);
    return;
  }
  int status = timeout ? 504 : 502;
  if (!resp_started_) st.responses.count(status);
  fail_exchange(status, timeout ? "backend timed out" : "backend unreachable or failed");
}

void ClientConn::fail_exchange(int status, const char* reason) {
  if (up_) {
    up_->abort();
    up_ = nullptr;
  }
  if (backend_) backend_->stats->in_flight.fetch_sub(1, std::memory_order_relaxed);
  backend_ = nullptr;
  if (resp_started_) {
    // Part of the response is out: the only honest signal left is to cut the connection.
    close();
    return;
  }
  // The rest of the request body can no longer be delimited reliably unless done.
  reply_local(status, reason, true);
}

}  // namespace lb::net
