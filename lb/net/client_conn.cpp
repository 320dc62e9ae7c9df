#include "lb/net/client_conn.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "lb/core/bounded_load.h"
#include "lb/core/key_extractor.h"
#include "lb/core/router.h"
#include "lb/http/head_writer.h"
#include "lb/net/log.h"
#include "lb/net/worker.h"

namespace lb::net {
namespace {

// Stop reading one side while the other side's queue holds more than this.
constexpr size_t kMaxPending = 256 * 1024;
constexpr size_t kReadChunk = 64 * 1024;
constexpr uint64_t kLingerMs = 2000;

uint64_t now_us() { return uv_hrtime() / 1000; }

// Parses an unsigned decimal header value (X-Most-Recent-Checkpoint).
bool parse_u64(std::string_view s, uint64_t& out) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

void ClientConn::accept(Worker& worker, uv_stream_t* server, size_t listener) {
  // Counted open here and closed in on_close, whatever happens in between.
  auto* c = new ClientConn(worker, listener);
  const RuntimeListener& l = worker.runtime()->listeners[listener];
  int64_t open = worker.state().connections.fetch_add(1) + 1;
  l.stats->open.fetch_add(1, std::memory_order_relaxed);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp_)) != 0) {
    c->close();
    return;
  }
  l.stats->accepted.fetch_add(1, std::memory_order_relaxed);
  sockaddr_storage peer{};
  int len = sizeof peer;
  if (uv_tcp_getpeername(&c->tcp_, reinterpret_cast<sockaddr*>(&peer), &len) == 0) {
    if (peer.ss_family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&peer);
      std::memcpy(c->ip_, &a->sin_addr, 4);
      c->ip_len_ = 4;
      inet_ntop(AF_INET, &a->sin_addr, c->ip_text_, sizeof c->ip_text_);
    } else if (peer.ss_family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&peer);
      std::memcpy(c->ip_, &a->sin6_addr, 16);
      c->ip_len_ = 16;
      inet_ntop(AF_INET6, &a->sin6_addr, c->ip_text_, sizeof c->ip_text_);
    }
  }
  if (open > static_cast<int64_t>(worker.runtime()->config.limits.max_connections)) {
    l.stats->rejected.fetch_add(1, std::memory_order_relaxed);
    log_limited("connection from %s refused: max_connections (%llu) reached", c->ip_text_,
                static_cast<unsigned long long>(worker.runtime()->config.limits.max_connections));
    c->reply_local(503, "too many connections", true, "Retry-After: 1\r\n");
    return;
  }
  uv_tcp_nodelay(&c->tcp_, 1);
  c->update_reading();
  c->arm_timer();
}

ClientConn::ClientConn(Worker& worker, size_t listener)
    : worker_(worker),
      listener_(listener),
      rt_(worker.runtime()),
      listener_stats_(rt_->listeners[listener].stats),
      out_(reinterpret_cast<uv_stream_t*>(&tcp_), this, &ClientConn::on_drained,
           &ClientConn::on_write_error),
      parser_(http::MessageParser::Kind::request, rt_->config.limits.max_header_bytes),
      in_(rt_->config.limits.max_header_bytes + kReadChunk) {
  uv_tcp_init(worker.loop(), &tcp_);
  uv_timer_init(worker.loop(), &timer_);
  open_handles_ = 2;
  tcp_.data = this;
  timer_.data = this;
  shutdown_req_.data = this;
  parser_.set_body_sink(&ClientConn::on_chunk_data, this);
  worker.track(this);
}

ClientConn::~ClientConn() { worker_.untrack(this); }

void ClientConn::close() {
  if (closing_) return;
  closing_ = true;
  if (up_) {
    up_->abort();
    up_ = nullptr;
    if (backend_) backend_->stats->in_flight.fetch_sub(1, std::memory_order_relaxed);
  }
  out_.discard();
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &ClientConn::on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &ClientConn::on_close);
}

void ClientConn::on_close(uv_handle_t* h) {
  auto* c = static_cast<ClientConn*>(h->data);
  if (--c->open_handles_ > 0) return;
  c->worker_.state().connections.fetch_sub(1);
  c->listener_stats_->open.fetch_sub(1, std::memory_order_relaxed);
  delete c;
}

void ClientConn::stop_gracefully() {
  stop_ = true;
  if (phase_ == Phase::head && !head_partial_ && out_.idle()) close();
}

// ---- reading --------------------------------------------------------------------------

void ClientConn::update_reading() {
  if (closing_) return;
  bool want = !client_eof_;
  switch (phase_) {
    case Phase::head:
    case Phase::discard:
    case Phase::lingering:
      break;
    case Phase::body:
      want = want && up_ && up_->pending() < kMaxPending;
      break;
    // Keep reading while waiting so a closed client is noticed; pipelined bytes queue.
    case Phase::connecting:
    case Phase::waiting:
      break;
  }
  if (start_ == end_ && !(phase_ == Phase::head && head_partial_)) start_ = end_ = 0;
  // on_alloc compacts unless a half-parsed head pins the bytes in place.
  bool room = end_ < in_.size() || (start_ > 0 && !(phase_ == Phase::head && head_partial_));
  if (phase_ != Phase::lingering) want = want && room;
  want = want && out_.pending() < kMaxPending;
  if (want == reading_) return;
  reading_ = want;
  auto* s = reinterpret_cast<uv_stream_t*>(&tcp_);
  if (want)
    uv_read_start(s, &ClientConn::on_alloc, &ClientConn::on_read);
  else
    uv_read_stop(s);
}

void ClientConn::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* c = static_cast<ClientConn*>(h->data);
  if (c->phase_ == Phase::lingering) {
    c->start_ = c->end_ = 0;
  } else if (c->start_ > 0 && !(c->phase_ == Phase::head && c->head_partial_)) {
    // Parsed bytes are gone (forwarded or dropped); only a half-parsed head must stay
    // where its header views point.
    std::memmove(c->in_.data(), c->in_.data() + c->start_, c->end_ - c->start_);
    c->end_ -= c->start_;
    c->start_ = 0;
  }
  *buf = uv_buf_init(c->in_.data() + c->end_, static_cast<unsigned>(c->in_.size() - c->end_));
}

void ClientConn::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
  auto* c = static_cast<ClientConn*>(s->data);
  if (nread == 0 || c->closing_) return;
  if (nread < 0) {
    if (c->phase_ == Phase::lingering || nread != UV_EOF) {
      if (c->up_ && c->backend_) c->backend_->stats->client_aborts.fetch_add(1);
      c->close();
      return;
    }
    // Half-close: the client sent all it will. Finish the current response, then close.
    c->client_eof_ = true;
    c->close_after_ = true;
    c->reading_ = false;
    uv_read_stop(s);
    if (c->phase_ == Phase::head || c->phase_ == Phase::discard || c->phase_ == Phase::body) {
      if (c->phase_ == Phase::body && c->up_) {
        // The body cannot be completed: the backend exchange is void.
        c->fail_exchange(400, "request body truncated");
        return;
      }
      if (c->out_.idle()) c->close();
    }
    return;
  }
  if (c->phase_ == Phase::lingering) return;
  c->end_ += static_cast<size_t>(nread);
  if (c->phase_ == Phase::body || c->phase_ == Phase::discard) c->arm_timer();
  c->process();
}

void ClientConn::arm_timer() {
  if (closing_) return;
  const config::Limits& lim = rt_->config.limits;
  uint64_t ms = 0;
  switch (phase_) {
    case Phase::head:
      ms = head_partial_ ? lim.header_timeout_ms : lim.idle_timeout_ms;
      break;
    case Phase::body:
    case Phase::discard:
      ms = lim.idle_timeout_ms;
      break;
    case Phase::lingering:
      ms = kLingerMs;
      break;
    case Phase::connecting:
    case Phase::waiting:
      // The backend's timers run; ours only watches a client that stopped reading.
      if (out_.pending() >= kMaxPending) ms = lim.idle_timeout_ms;
      break;
  }
  if (ms == 0)
    uv_timer_stop(&timer_);
  else
    uv_timer_start(&timer_, &ClientConn::on_timer, ms, 0);
}

void ClientConn::on_timer(uv_timer_t* t) {
  auto* c = static_cast<ClientConn*>(t->data);
  if (c->phase_ == Phase::head && c->head_partial_) {
    log_limited("client %s: request head not complete within header_timeout", c->ip_text_);
    c->reply_local(408, "request head not received in time", true);
    return;
  }
  if ((c->phase_ == Phase::body || c->phase_ == Phase::discard) && !c->resp_started_) {
    log_limited("client %s: request body stalled past idle_timeout", c->ip_text_);
    if (c->up_) {
      c->fail_exchange(408, "request body not received in time");
      return;
    }
    c->reply_local(408, "request body not received in time", true);
    return;
  }
  if (c->up_ && c->backend_) c->backend_->stats->client_aborts.fetch_add(1);
  c->close();
}

// ---- parsing --------------------------------------------------------------------------

void ClientConn::process() {
  while (!closing_) {
    if (phase_ == Phase::head) {
      if (start_ == end_) break;
      if (!head_partial_ && start_ > 0) {
        // A new head starts at 0, so it can use the whole buffer (no views exist yet).
        std::memmove(in_.data(), in_.data() + start_, end_ - start_);
        end_ -= start_;
        start_ = 0;
      }
      bool was_partial = head_partial_;
      http::ParseResult r = parser_.feed(in_.data() + start_, end_ - start_);
      start_ += r.consumed;
      if (r.status == http::ParseStatus::need_more) {
        head_partial_ = true;
        if (!was_partial) arm_timer();  // header_timeout runs from the first byte
        break;
      }
      if (r.status == http::ParseStatus::error || r.status == http::ParseStatus::upgrade) {
        int code = r.status == http::ParseStatus::error ? parser_.error_status() : 400;
        const char* why = r.status == http::ParseStatus::error ? parser_.error_reason()
                                                               : "unexpected protocol upgrade";
        log_limited("client %s: bad request (%d): %s", ip_text_, code, why);
        reply_local(code, why, true);
        return;
      }
      head_partial_ = false;
      on_request_head();
      continue;
    }
    if (phase_ == Phase::body || phase_ == Phase::discard) {
      const Phase before = phase_;
      // Feed even with no bytes: a bodyless message completes on an empty feed.
      http::ParseResult r = parser_.feed(in_.data() + start_, end_ - start_);
      // A write to the backend inside the feed (re-framed chunks) may have failed the
      // exchange and answered the client already.
      if (closing_ || phase_ != before) return;
      if (r.status == http::ParseStatus::error) {
        log_limited("client %s: bad request body: %s", ip_text_, parser_.error_reason());
        if (phase_ == Phase::body && up_) {
          fail_exchange(400, parser_.error_reason());
        } else {
          reply_local(400, parser_.error_reason(), true);
        }
        return;
      }
      if (phase_ == Phase::body && body_over_limit_) {
        fail_exchange(413, "request body larger than max_body_bytes");
        return;
      }
      if (phase_ == Phase::body) {
        // Content-Length bodies go raw; chunked ones went through on_chunk_data.
        if (!reframe_) forward_body(in_.data() + start_, r.consumed);
        if (closing_ || phase_ != before) return;
      } else {
        discarded_ += r.consumed;
        if (discarded_ > rt_->config.limits.max_body_bytes) {
          close();
          return;
        }
      }
      start_ += r.consumed;
      if (r.status != http::ParseStatus::done) {
        if (client_eof_ && start_ == end_) {
          if (phase_ == Phase::body && up_) {
            fail_exchange(400, "request body truncated");
          } else {
            end_response_and_close();  // a local answer may still be on its way out
          }
          return;
        }
        break;
      }
      if (phase_ == Phase::discard) {
        next_request();
        continue;
      }
      if (reframe_) {
        forward_body("0\r\n\r\n", 5);  // the last chunk, no trailers
        if (closing_ || phase_ != before) return;
      }
      req_done_ = true;
      phase_ = Phase::waiting;
      if (up_) up_->start_response_timer();
      arm_timer();
      if (resp_started_ && !up_) {
        // The response finished before the request did (an early answer).
        finish_exchange();
        continue;
      }
      break;
    }
    break;  // connecting, waiting, lingering: events drive us
  }
  if (req_head_pending_ && up_ && phase_ != Phase::connecting) {
    req_head_pending_ = false;
    up_->send(req_head_);
  }
  update_reading();
}

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
      listener_ = i;
    } else {
      stop_ = true;
    }
  }
  const RuntimeListener& listener = rt_->listeners[listener_];
  const config::Config& cfg = rt_->config;
  std::string_view method = parser_.method();
  http10_ = parser_.version_major() == 1 && parser_.version_minor() == 0;
  keep_alive_ = parser_.keep_alive() && !stop_ && !client_eof_;
  head_request_ = method == "HEAD";
  req_done_ = resp_started_ = resp_head_pending_ = retried_ = retried_503_ = false;
  failovers_ = 0;
  pinned_ = false;
  discarded_ = 0;
  bool has_body = parser_.chunked() || parser_.content_length() > 0;

  if (parser_.content_length() > cfg.limits.max_body_bytes) {
    reply_local(413, "request body larger than max_body_bytes", true);
    return;
  }
  if (HeadCheck bad = check_head(method); bad.status != 0) {
    // 501: WebSocket tunnelling is its own issue; refuse clearly rather than half-work.
    // The parser treats what follows an upgrade as another protocol, so (like a 400)
    // the connection ends here.
    if (bad.status == 400) log_limited("client %s: bad request (400): %s", ip_text_, bad.reason);
    reply_local(bad.status, bad.reason, true);
    return;
  }
  reframe_ = parser_.chunked();
  body_bytes_ = 0;
  body_over_limit_ = false;

  RequestView view{method, parser_.target(), parser_.headers(), {ip_, ip_len_}};
  Extraction ex = extract_key(cfg.sticky.keys, view);
  std::string_view target = ex.forward_target;
  if (ex.forward_needs_slash) {
    scratch_.assign("/").append(target);
    target = scratch_;
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
      log_limited("client %s: refused Kupo write %.*s %.*s", ip_text_,
                  static_cast<int>(method.size()), method.data(),
                  static_cast<int>(m.forward.size()), m.forward.data());
      reply_local(403, "Kupo write endpoints are not exposed", has_body);
      return;
    case Admission::ok:
      break;
  }

  const RuntimePool& pool = rt_->pools[m.route->pool];
  SessionTable& sessions = worker_.state().sessions;
  uint64_t now = uv_now(worker_.loop());
  size_t n = pool.backends.size();
  size_t chosen = n;
  uint64_t min_slot = 0;
  if (ex.found) {
    pin_key_ = pool_session_key(ex.key, pool.salt);
    hash_ = pin_key_.lo;
    if (std::optional<Pin> pin = sessions.touch(pin_key_, now)) {
      bool known = false;
      for (size_t i = 0; i < n; ++i) {
        if (pool.backends[i].ref != pin->backend) continue;
        known = true;
        if (usable(pool.backends[i])) chosen = i;
      }
      if (chosen == n) {
        (known ? worker_.state().remaps_down : worker_.state().remaps_removed).fetch_add(1);
        min_slot = pin->last_slot;  // the user must not see the chain go backwards
      }
    }
  } else {
    // No key at all: spread by a per-worker counter; nothing to pin.
    static thread_local uint64_t seq = 0;
    hash_ = name_hash(std::string_view(reinterpret_cast<const char*>(&++seq), sizeof seq));
  }
  new_user_ = false;
  if (chosen == n) {
    chosen = pick_backend(pool, kNoBackend, min_slot);
    if (chosen < n && ex.found) {
      sessions.pin(pin_key_, pool.backends[chosen].ref, now);
      pool.backends[chosen].stats->new_pins.fetch_add(1, std::memory_order_relaxed);
      new_user_ = min_slot == 0;
    }
  }
  if (chosen == n) {
    reply_local(503, "no backend available", has_body, "Retry-After: 5\r\n");
    return;
  }
  pinned_ = ex.found;

  http::RequestHead head;
  head.method = method;
  head.path = m.forward;
  head.path_needs_slash = m.needs_slash;
  head.http10 = http10_;
  head.headers = parser_.headers();
  head.client_ip = ip_text_;
  head.inject = pool.inject;
  head.chunked = reframe_;
  http::write_request_head(req_head_, head);
  start_exchange(pool, chosen);
}

bool ClientConn::usable(const RuntimeBackend& b) {
  return b.resolved && b.stats->state.load(std::memory_order_relaxed) != BackendState::down;
}

size_t ClientConn::pick_backend(const RuntimePool& pool, BackendRef exclude, uint64_t min_slot) {
  // A new (or moved) user: the first backend in its ranking that takes new users and is
  // under its bounded load. Candidates, best first: up and caught up with the user's last
  // slot; up; draining (serve rather than fail).
  size_t n = pool.backends.size();
  static thread_local std::vector<uint16_t> ranked;
  static thread_local std::vector<uint64_t> load;
  static thread_local std::vector<uint8_t> eligible;
  ranked.resize(n);
  load.resize(n);
  eligible.resize(n);
  size_t k = pool.selector->rank(hash_, ranked);
  SessionTable& sessions = worker_.state().sessions;
  for (size_t i = 0; i < n; ++i) load[i] = sessions.pinned(pool.backends[i].ref);
  for (int pass = min_slot ? 0 : 1; pass < 3; ++pass) {
    bool any = false;
    for (size_t i = 0; i < n; ++i) {
      const RuntimeBackend& b = pool.backends[i];
      BackendState st = b.stats->state.load(std::memory_order_relaxed);
      bool ok = b.resolved && b.ref != exclude &&
                st == (pass < 2 ? BackendState::up : BackendState::draining);
      if (pass == 0) ok = ok && b.stats->tip_slot.load(std::memory_order_relaxed) >= min_slot;
      eligible[i] = ok;
      any = any || ok;
    }
    if (!any) continue;
    LoadView lv{load, pool.weights,
                std::span<const bool>(reinterpret_cast<const bool*>(eligible.data()), n)};
    if (std::optional<uint16_t> pick = choose_bounded(std::span<const uint16_t>(ranked.data(), k),
                                                      lv, rt_->config.sticky.balance_factor))
      return *pick;
  }
  return n;
}

ClientConn::HeadCheck ClientConn::check_head(std::string_view method) const {
  // One pass over the fields. Request smuggling defence (RFC 9112 §6.1): one
  // Transfer-Encoding field, exactly "chunked", on HTTP/1.1 only; anything else a backend
  // might frame differently. Protocol switches are not proxied yet.
  bool upgrade = parser_.upgrade() || method == "CONNECT";
  int te = 0;
  for (const HeaderView& h : parser_.headers()) {
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
  if (!req_done_) parser_.resume_after_head();  // a retry finds it paused at the end
  uv_timer_stop(&timer_);
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
  if (req_done_) {
    // A retry: the request was parsed to its end already; the parser stays paused there.
    phase_ = Phase::waiting;
    up_->expect_response(head_request_, pool_->timeouts.response_ms);
    up_->send(req_head_);
    up_->start_response_timer();
    return;
  }
  phase_ = Phase::body;
  // The head goes out with the first body bytes in one write, or alone at the end of
  // process() (see req_head_pending_).
  req_head_pending_ = true;
  up_->expect_response(head_request_, pool_->timeouts.response_ms);
  process();
}

void ClientConn::forward_body(const char* data, size_t len) {
  if (len == 0 || !up_) return;
  if (req_head_pending_) {
    req_head_pending_ = false;
    up_->send(req_head_, {data, len});
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
  uv_buf_t bufs[4];
  unsigned nb = 0;
  if (c->req_head_pending_) {
    c->req_head_pending_ = false;
    bufs[nb++] = uv_buf_init(c->req_head_.data(), static_cast<unsigned>(c->req_head_.size()));
  }
  bufs[nb++] = uv_buf_init(line, static_cast<unsigned>(n));
  bufs[nb++] = uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(len));
  bufs[nb++] = uv_buf_init(const_cast<char*>("\r\n"), 2);
  c->up_->send(bufs, nb);
}

void ClientConn::upstream_drained() { update_reading(); }

// ---- response -------------------------------------------------------------------------

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
    if (status == 503 && new_user_ && !retried_503_ && req_done_ && !parser_.chunked() &&
        parser_.content_length() == 0 &&
        (head_request_ || parser_.method() == "GET" || parser_.method() == "OPTIONS")) {
      // An overloaded backend and a user with no state yet: try the next candidate once
      // instead (DESIGN.md "Health"); this 503 is read and dropped.
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
  http::write_response_head(resp_head_, head);
  if (interim) {
    out_.write(resp_head_);  // the final head follows and reuses the buffer
    return;
  }
  resp_head_pending_ = true;
  resp_started_ = true;
}

void ClientConn::upstream_body(const char* data, size_t len) {
  if (swallow_) return;
  if (resp_head_pending_) {
    resp_head_pending_ = false;
    out_.write(resp_head_, {data, len});
  } else {
    out_.write({data, len});
  }
  if (out_.pending() >= kMaxPending && up_) {
    up_->pause_reading();
    arm_timer();
  }
}

void ClientConn::upstream_read_end() {
  if (resp_head_pending_ && !swallow_) {
    resp_head_pending_ = false;
    out_.write(resp_head_);
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
    retry_new_user();
    return;
  }
  if (!req_done_) {
    // The backend answered early (e.g. an error) before the body was all read: we cannot
    // find the next request's start reliably, so this connection ends here.
    close_after_ = true;
  }
  finish_exchange();
}

bool ClientConn::move_request(BackendRef failed, uint64_t min_slot) {
  const RuntimePool& pool = *pool_;
  size_t next = pick_backend(pool, failed, min_slot);
  if (next == pool.backends.size()) return false;
  if (pinned_)
    worker_.state().sessions.pin(pin_key_, pool.backends[next].ref, uv_now(worker_.loop()));
  start_exchange(pool, next);
  return true;
}

void ClientConn::retry_new_user() {
  retried_503_ = true;
  backend_->stats->retried_503.fetch_add(1, std::memory_order_relaxed);
  if (!move_request(backend_->ref, 0))
    reply_local(503, "backend overloaded", true, "Retry-After: 1\r\n");
}

void ClientConn::finish_exchange() {
  if (close_after_ || !req_done_) {
    end_response_and_close();
    return;
  }
  next_request();
  process();
}

void ClientConn::next_request() {
  parser_.resume_after_message();
  phase_ = Phase::head;
  head_partial_ = false;
  backend_ = nullptr;
  pool_ = nullptr;
  if (stop_ && start_ == end_ && out_.idle()) {
    close();
    return;
  }
  arm_timer();
}

void ClientConn::upstream_failed(UpstreamError e) {
  bool reused = up_ && up_->reused();  // still valid: freed only in its close callback
  up_ = nullptr;
  BackendStats& st = *backend_->stats;
  // A whole bodyless idempotent request, unanswered: its bytes are all in req_head_, so
  // it can be sent again.
  std::string_view m = parser_.method();
  bool idempotent = m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "PUT" || m == "DELETE";
  bool resendable = idempotent && req_done_ && !resp_started_ && !parser_.chunked() &&
                    parser_.content_length() == 0;
  if (e == UpstreamError::closed_early && reused && resendable && !retried_) {
    // A parked keep-alive connection the backend had already closed: the request never
    // reached it, so send it again on a fresh connection.
    retried_ = true;
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
  // Nothing reached the backend (the body is still unread in our buffer), or the request
  // got no answer at all and can be resent: the user moves now rather than see a 502
  // while health catches up.
  bool unanswered = e == UpstreamError::closed_early && resendable;
  if ((connect || unanswered) && !resp_started_ && failovers_ < kMaxFailovers) {
    ++failovers_;
    st.in_flight.fetch_sub(1, std::memory_order_relaxed);
    uint64_t min_slot = 0;
    if (pinned_)
      if (std::optional<Pin> pin = worker_.state().sessions.touch(pin_key_, uv_now(worker_.loop())))
        min_slot = pin->last_slot;
    if (move_request(backend_->ref, min_slot)) {
      if (pinned_) worker_.state().remaps_down.fetch_add(1);
      return;
    }
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

void ClientConn::reply_local(int status, const char* reason, bool close_after,
                             std::string_view extra_headers) {
  close_after = close_after || !keep_alive_ || stop_ || client_eof_;
  listener_stats_->local.count(status);
  http::write_error_response(resp_head_, status, reason, close_after, extra_headers);
  out_.write(resp_head_);
  resp_started_ = true;
  if (close_after) {
    close_after_ = true;
    end_response_and_close();
    return;
  }
  if (req_done_) {  // the request was read to its end already
    next_request();
    return;
  }
  // Keep the connection: read past this request's body, then serve the next one.
  parser_.resume_after_head();
  phase_ = Phase::discard;
  arm_timer();
}

void ClientConn::end_response_and_close() {
  close_after_ = true;
  if (closing_) return;
  if (out_.idle()) {
    linger();
    return;
  }
  phase_ = Phase::waiting;  // on_drained finishes the job
  update_reading();
}

void ClientConn::linger() {
  // Shut our side, then read and drop what the client still sends for a moment: closing
  // with unread input would reset the connection and could destroy the response we just
  // wrote before the client reads it (nginx's lingering_close).
  if (client_eof_) {
    close();
    return;
  }
  if (phase_ == Phase::lingering) return;
  phase_ = Phase::lingering;
  if (uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(&tcp_),
                  &ClientConn::on_shutdown) != 0) {
    close();
    return;
  }
  arm_timer();
  update_reading();
}

void ClientConn::on_shutdown(uv_shutdown_t* req, int status) {
  auto* c = static_cast<ClientConn*>(req->data);
  if (status != 0 && !c->closing_) c->close();
}

void ClientConn::on_drained(void* self) {
  auto* c = static_cast<ClientConn*>(self);
  if (c->closing_) return;
  if (c->close_after_ && !c->up_ && c->phase_ != Phase::lingering &&
      (c->resp_started_ || c->phase_ == Phase::waiting)) {
    c->linger();
    return;
  }
  if (c->up_) c->up_->resume_reading();
  if (c->stop_ && c->phase_ == Phase::head && !c->head_partial_ && c->start_ == c->end_) {
    c->close();
    return;
  }
  c->arm_timer();
  c->update_reading();
}

void ClientConn::on_write_error(void* self, int) {
  auto* c = static_cast<ClientConn*>(self);
  if (c->up_ && c->backend_) c->backend_->stats->client_aborts.fetch_add(1);
  c->close();
}

}  // namespace lb::net
