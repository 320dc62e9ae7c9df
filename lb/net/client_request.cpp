// ClientConn, second half: routing and head rewriting, the request body on its way to
// the exchange (lb/net/exchange), and the answer on its way back to the client.
#include <array>
#include <cstring>
#include <optional>

#include "lb/core/key_extractor.h"
#include "lb/core/path_normalizer.h"
#include "lb/core/router.h"
#include "lb/http/head_writer.h"
#include "lb/http/request_checks.h"
#include "lb/http/response_framing.h"
#include "lb/http/ws_handshake.h"
#include "lb/net/client_conn.h"
#include "lb/net/log.h"
#include "lb/net/quota_check.h"
#include "lb/net/socket_address.h"
#include "lb/net/tunnel.h"
#include "lb/net/worker.h"

namespace lb::net {
namespace {

// `in` with Host set to an absolute-form target's authority (added when the client sent
// none), written into `out`: a copy of the views, not of the bytes.
std::span<const HeaderView> set_host(RequestState::HostFields& out, std::span<const HeaderView> in,
                                     std::string_view authority) {
  size_t n = 0;
  bool found = false;
  for (const HeaderView& h : in) {
    out[n] = h;
    if (iequals(h.name, "host")) {
      out[n].value = authority;
      found = true;
    }
    ++n;
  }
  if (!found) out[n++] = {"Host", authority};
  return {out.data(), n};
}

// Drops every field named `name` from a written response head: a backend's own
// expose_backend field must not reach the client beside corral's.
void erase_field(std::string& head, std::string_view name) {
  size_t line = head.find("\r\n");  // the end of the status line
  while (line != std::string::npos) {
    size_t start = line + 2;
    size_t end = head.find("\r\n", start);
    if (end == std::string::npos || end == start) return;  // the blank line: done
    std::string_view field(head.data() + start, end - start);
    if (field.size() > name.size() && field[name.size()] == ':' &&
        iequals(field.substr(0, name.size()), name)) {
      head.erase(start, end + 2 - start);
      continue;  // `line` still ends the previous field
    }
    line = end;
  }
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
  begin_access();
  const http::MessageParser& parser = rs.parser;
  const RuntimeListener& listener = rt_->listeners[listener_];
  const config::Config& cfg = rt_->config;
  std::string_view method = parser.method();
  http10_ = parser.version_major() == 1 && parser.version_minor() == 0;
  keep_alive_ = parser.keep_alive() && !stop_ && !client_eof_;
  head_request_ = method == "HEAD";
  req_done_ = resp_started_ = resp_head_pending_ = false;
  body_bytes_ = 0;
  bool has_body = parser.chunked() || parser.content_length() > 0;

  // A chunked body (data and extensions) and each of its chunks are held to the same cap.
  rs.parser.set_max_body(cfg.limits.max_body_bytes);
  if (parser.content_length() > cfg.limits.max_body_bytes) {
    reply_local(413, "request body larger than max_body_bytes", true);
    return;
  }
  rs.ws_key_len = 0;
  if (HeadCheck bad = check_head(method); bad.status != 0) {
    // The parser treats what follows CONNECT as another protocol, so (like a 400) the
    // connection ends here.
    if (bad.status == 400) log_limited("client %s: bad request (400): %s", ip_text(), bad.reason);
    reply_local(bad.status, bad.reason, true);
    return;
  }
  reframe_ = parser.chunked();
  body_over_limit_ = false;

  // The target is normalised in place (lb/core/path_normalizer): its bytes lie in the read
  // buffer, held until this head is handled, and the normal form is never longer. Key
  // extraction, routing and the Kupo write guard then see the bytes the backend gets.
  std::string_view raw_target = parser.target();
  NormalizedTarget nt = normalize_target(const_cast<char*>(raw_target.data()), raw_target.size());
  // The authority of an absolute-form target becomes the Host the backend sees, so it
  // obeys the same rule as a Host field.
  if (!nt.error && !nt.authority.empty() && !http::host_valid(nt.authority))
    nt.error = "invalid authority in the request target";
  if (nt.error) {
    log_limited("client %s: bad request (400): %s", ip_text(), nt.error);
    reply_local(400, nt.error, true);
    return;
  }
  // Absolute-form: the authority replaces the Host field (RFC 9112 §3.2.2).
  std::span<const HeaderView> headers = parser.headers();
  if (!nt.authority.empty()) {
    if (!rs.host_fields) rs.host_fields = std::make_unique<RequestState::HostFields>();
    headers = set_host(*rs.host_fields, headers, nt.authority);
  }
  RequestView view{method, nt.origin, headers, {ip_, ip_len_}};
  Extraction ex = extract_key(cfg.sticky.keys, view);
  rs.access.has_session = ex.found;
  rs.access.session = ex.key;
  std::string_view target = ex.forward_target;
  if (ex.forward_needs_slash) {
    rs.scratch.assign("/").append(target);
    target = rs.scratch;
  }
  RouteMatch m = match_route(listener.routes, method, target);
  if (m.route) {
    rs.access.route = m.route->prefix;
    rs.expose_backend = m.route->expose_backend;
  }
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
  if (m.route->client_limit.enabled() && !admit_client(*m.route, m.route - listener.routes.data(),
                                                       ex.found ? &ex.key : nullptr, has_body))
    return;

  const bool upgrade = parser.upgrade() || http::wants_upgrade(headers);
  if (upgrade && !accept_upgrade(*m.route, headers, has_body)) return;

  const RuntimePool& pool = rt_->pools[m.route->pool];
  RequestState::PendingHead& ph = rs.head;
  ph.method = method;
  ph.forward = m.forward;
  ph.needs_slash = m.needs_slash;
  ph.headers = headers;
  ph.has_body = has_body;
  ph.upgrade = upgrade;
  ph.websocket_route = m.route->websocket;  // [flights]
  ph.pool = &pool;
  ph.has_key = ex.found;
  if (ex.found) ph.key = ex.key;
  fill_solo_ = false;
  // issue 16: a cacheable GET or HEAD is looked up before placement; a hit is answered
  // here and places nobody, nor does a miss that follows a fill flight (client_cache.cpp).
  if (pool.cache && try_cache(pool, method, m, headers, has_body, ex.found ? &ex.key : nullptr))
    return;
  place_request();
}

void ClientConn::place_request() {
  RequestState& rs = *rs_;
  RequestState::PendingHead& ph = rs.head;
  const RuntimePool& pool = *ph.pool;
  const SessionKey* key = ph.has_key ? &ph.key : nullptr;
  Exchange& exchange = rs.exchange;
  exchange.begin(worker_, *this, *rt_, pool, key);
  rs.access.pool = pool.name;
  if (key) {  // from here the line names the user's pin, as GET /sessions/<hash> does
    rs.access.session = exchange.pin_key();
    rs.access.pinned = true;
  }
  Decision d;
  if (!exchange.place(d)) {
    // Waiting for the shared store (at most sticky.store.timeout): the head's bytes stay
    // held; reading goes on so a client that hangs up is noticed, and header_timeout
    // still bounds the wait.
    phase_ = Phase::placing;
    arm_timer();
    return;
  }
  finish_head(d);
}

void ClientConn::finish_head(const Decision& d) {
  RequestState& rs = *rs_;
  const RequestState::PendingHead& ph = rs.head;
  const RuntimePool& pool = *ph.pool;
  if (d.kind == Placement::none) {
    reply_local(503, "no backend available", ph.has_body, "Retry-After: 5\r\n");
    return;
  }
  // [flights] an identical GET already under way on this backend: joined, no quota.
  Flight* join = flight_to_join(d);
  // A pool with rate_limit: refused here, the request never reaches the backend and costs
  // no quota (lb/core/quota_guard.h); admitted, it is counted.
  if (QuotaAdmission q =
          join ? QuotaAdmission{} : admit_quota(pool, worker_.loop(), worker_.store());
      !q.ok()) {
    QuotaReply reply;
    quota_reply(q, reply);
    reply_local(q.status, reply.reason, ph.has_body, reply.headers);
    return;
  }

  http::RequestHead head;
  head.method = ph.method;
  head.path = ph.forward;
  head.path_needs_slash = ph.needs_slash;
  head.http10 = http10_;
  head.headers = ph.headers;
  char ip[48];
  format_ip(ip_, ip_len_, ip, sizeof ip);
  head.client_ip = ip;
  head.inject = pool.inject;
  head.remove = pool.remove_request;
  rs.remove_response = pool.remove_response;
  head.chunked = reframe_;
  head.upgrade = ph.upgrade;
  http::write_request_head(rs.req_head, head);
  rs.parser.resume_after_head();  // the body (if any) is parsed as it goes out
  // A handshake has no body: it is whole, and what follows it belongs to the tunnel.
  if (ph.upgrade) req_done_ = true;
  disarm_timer();  // the exchange's deadlines run now
  phase_ = Phase::connecting;
  if (flight_start(join, d)) return;  // [flights] led or joined
  rs.exchange.start(d.index);
}

// The store answered a parked placement: the request goes on, then whatever was read
// meanwhile (body bytes, a pipelined request) is processed.
void ClientConn::exchange_placed(const Decision& d) {
  if (closing_ || phase_ != Phase::placing) return;
  finish_head(d);
  if (closing_) return;
  stream_->hold_input(false);
  process();
}

void ClientConn::forward_body(std::string_view data) {
  if (!data.empty()) rs_->exchange.send_body(&data, 1);
}

void ClientConn::on_chunk_data(void* self, const char* data, size_t len) {
  auto* c = static_cast<ClientConn*>(self);
  if (!c->reframe_ || len == 0 || c->phase_ != Phase::body) return;
  c->body_bytes_ += len;
  if (c->body_bytes_ > c->rt_->config.limits.max_body_bytes) c->body_over_limit_ = true;
  if (!c->exchanging() || c->body_over_limit_) return;
  // Our own framing: "<hex size>\r\n<data>\r\n", whatever the client's looked like.
  char line[20];
  int n = snprintf(line, sizeof line, "%zx\r\n", len);
  std::string_view parts[3] = {{line, static_cast<size_t>(n)}, {data, len}, "\r\n"};
  c->rs_->exchange.send_body(parts, 3);
}

// ---- the exchange's side --------------------------------------------------------------

void ClientConn::exchange_sending() {
  if (req_done_) {  // a whole request went out (a resend): the answer is awaited
    phase_ = Phase::waiting;
    return;
  }
  phase_ = Phase::body;
  arm_timer();  // a client that stops sending its body times out (idle_timeout)
  process();    // body bytes already read go out now, with the head
}

void ClientConn::exchange_drained() { update_reading(); }

void ClientConn::exchange_head(const http::MessageParser& r) {
  if (resume_) return resume_head(r);  // [flights] a detached waiter's own answer
  int status = r.status_code();
  // The exchange took this response, so it is allowed; lb/http/response_framing says how
  // it ends: only a read-until-close body forces this connection closed.
  http::ResponseFacts facts;
  facts.status = status;
  facts.version_major = r.version_major();
  facts.head_request = head_request_;
  facts.upgrade_requested = rs_->ws_key_len != 0;
  facts.has_content_length = r.has_content_length();
  facts.content_length = r.content_length();
  facts.headers = r.headers();
  if (status == 101) {
    // The tunnel starts in exchange_switched, right after; the 101 goes out then.
    http::ResponseHead head;
    head.status = status;
    head.reason = r.reason();
    head.headers = r.headers();
    head.upgrade = true;
    head.remove = rs_->remove_response;
    http::write_response_head(rs_->resp_head, head);
    note_backend_answer(status);
    resp_started_ = true;
    return;
  }
  http::ResponseFraming framing = http::frame_response(facts);
  bool interim = framing.interim;
  bool framed = framing.body != http::BodyFraming::until_close;
  if (!interim && (!framed || !req_done_ || !keep_alive_ || stop_ || client_eof_))
    close_after_ = true;
  http::ResponseHead head;
  head.status = status;
  head.reason = r.reason();
  head.headers = r.headers();
  head.remove = rs_->remove_response;
  if (interim)
    head.connection = http::ClientConnection::implicit;
  else if (close_after_)
    head.connection = http::ClientConnection::close;
  else
    head.connection =
        http10_ ? http::ClientConnection::keep_alive : http::ClientConnection::implicit;
  http::write_response_head(rs_->resp_head, head);
  if (interim) {
    note_sent(rs_->resp_head.size());
    stream_->write(rs_->resp_head);  // the final head follows and reuses the string
    note_output();
    return;
  }
  note_backend_answer(status);
  fill_head(r);  // issue 16: a miss's answer is also kept for the cache
  resp_head_pending_ = true;
  resp_started_ = true;
}

// A final answer (or a 101) from the backend: the access log's status and backend, and the
// route's expose_backend header (the backend's name, never its address) in the head.
void ClientConn::note_backend_answer(int status) {
  RequestState& rs = *rs_;
  const RuntimeBackend* b = rs.exchange.backend();
  rs.access.status = status;
  if (b) rs.access.backend = b->name;
  if (rs.expose_backend.empty() || !b) return;
  erase_field(rs.resp_head, rs.expose_backend);
  std::string line;
  line.reserve(rs.expose_backend.size() + b->name.size() + 4);
  line.append(rs.expose_backend).append(": ").append(b->name).append("\r\n");
  // The head ends with the blank line: the field goes just before it.
  rs.resp_head.insert(rs.resp_head.size() - 2, line);
}

void ClientConn::exchange_body(const char* data, size_t len) {
  if (resume_) return resume_body(data, len);  // [flights]
  fill_body(data, len);
  note_sent(len);
  if (resp_head_pending_) {
    resp_head_pending_ = false;
    note_sent(rs_->resp_head.size());
    stream_->write(rs_->resp_head, {data, len});
  } else {
    stream_->write({data, len});
  }
  note_output();
  if (stream_->pending() >= worker_.max_pending()) {
    rs_->exchange.pause_response();
    arm_timer();
  }
}

void ClientConn::exchange_read_end() {
  if (resp_head_pending_) {
    resp_head_pending_ = false;
    note_sent(rs_->resp_head.size());
    stream_->write(rs_->resp_head);
    note_output();
  }
}

void ClientConn::exchange_switched(std::unique_ptr<Stream> upstream) {
  const RuntimeBackend& b = *rs_->exchange.backend();
  TunnelSetup setup;
  setup.backend = b.ref;
  setup.stats = b.stats;
  setup.listener = listener_stats_;
  setup.pin_key = rs_->exchange.pin_key();
  setup.pinned = rs_->exchange.pinned();
  setup.idle_ms = rt_->config.limits.tunnel_idle_timeout_ms;
  setup.send_ms = rt_->config.limits.send_timeout_ms;
  note_sent(rs_->resp_head.size());
  if (rs_->access.active) {
    // The tunnel's line is written when it closes, with the bytes it carried.
    rs_->access.active = false;
    setup.access = std::make_unique<OwnedAccessRecord>(access_record());
    setup.access->base.msg = "tunnel";
    setup.access->taken_us = uv_hrtime() / 1000;
  }
  stream_->write(rs_->resp_head);
  // The tunnel takes both streams and this connection's place in the counts; this object
  // goes (the exchange calling us touches nothing after this call).
  Tunnel::open(worker_, std::move(stream_), std::move(upstream), std::move(setup));
  closing_ = true;
  worker_.deadlines().clear(deadline_);
  give_request_state();
  delete this;
}

void ClientConn::exchange_done() {
  if (resume_ && !resume_done()) return;  // [flights] cut: the rest did not match
  if (!req_done_) {
    // The backend answered early (e.g. an error) before the body was all read: we cannot
    // find the next request's start reliably, so this connection ends here.
    close_after_ = true;
  }
  finish_fill();  // issue 16: the whole answer is here; store it if it may be
  finish_exchange();
}

void ClientConn::exchange_failed(int status, const char* reason, std::string_view extra_headers) {
  if (resume_) resume_cut();  // [flights]
  fail_exchange(status, reason, extra_headers);
}

void ClientConn::finish_exchange() {
  if (close_after_ || !req_done_) {
    end_response_and_close();
    return;
  }
  next_request();
  process();
}

void ClientConn::fail_exchange(int status, const char* reason, std::string_view extra_headers) {
  rs_->exchange.abort();
  if (resp_started_) {
    // Part of the response is out: the only honest signal left is to cut the connection.
    close();
    return;
  }
  // The rest of the request body can no longer be delimited reliably unless done.
  reply_local(status, reason, true, extra_headers);
}

}  // namespace lb::net
