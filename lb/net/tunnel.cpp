#include "lb/net/tunnel.h"

#include <algorithm>

#include "lb/net/log.h"
#include "lb/net/runtime.h"
#include "lb/net/worker.h"

namespace lb::net {
namespace {

// A close waits this long for the backend to finish the frame it is sending; then the
// connection is cut (the client sees 1006 and reconnects all the same).
constexpr uint64_t kFinishFrameMs = 5'000;
// After our close frame is written, the client has this long to answer it.
constexpr uint64_t kCloseLingerMs = 2'000;
// One side hung up (or the backend sent its close frame): the other has this long to
// finish before both are closed (HAProxy's client-fin/server-fin).
constexpr uint64_t kHalfCloseMs = 10'000;
// At the stop deadline both waits above are cut to this, so corral exits soon after
// stop_timeout.
constexpr uint64_t kStopWaitMs = 1'000;

}  // namespace

Tunnel* Tunnel::open(Worker& worker, std::unique_ptr<Stream> client,
                     std::unique_ptr<Stream> backend, TunnelSetup setup) {
  auto* t = new Tunnel(worker, std::move(client), std::move(backend), std::move(setup));
  // Bytes that came with the 101, or that the client sent before it, go through first.
  t->pump(t->backend_);
  if (!t->closing_) t->pump(t->client_);
  t->schedule();
  return t;
}

Tunnel::Tunnel(Worker& worker, std::unique_ptr<Stream> client, std::unique_ptr<Stream> backend,
               TunnelSetup setup)
    : worker_(worker), setup_(std::move(setup)) {
  client_.t = backend_.t = this;
  client_.s = std::move(client);
  backend_.s = std::move(backend);
  client_.s->set_handler(&client_);
  backend_.s->set_handler(&backend_);
  // The tunnel waits for bytes like any connection: under the buffer budget both ways.
  backend_.s->set_exempt(false);
  deadline_.fire = &Tunnel::on_deadline;
  deadline_.owner = this;
  last_active_ms_ = worker_.deadlines().now();
  setup_.stats->local().tunnels.fetch_add(1, std::memory_order_relaxed);
  worker_.track_tunnel(this);
}

Tunnel::~Tunnel() {
  if (setup_.access && access_log_enabled())
    access_log_write(
        setup_.access->record(uv_hrtime() / 1000, bytes_to_backend_, bytes_to_client_));
  worker_.deadlines().clear(deadline_);
  setup_.stats->local().tunnels.fetch_sub(1, std::memory_order_relaxed);
  // The client connection's place in the counts, taken over in ClientConn::exchange_switched.
  worker_.state().connections.fetch_sub(1);
  setup_.listener->local().open.fetch_sub(1, std::memory_order_relaxed);
  worker_.untrack_tunnel(this);
}

const char* Tunnel::backend_gone(const Runtime& rt) const {
  if (setup_.stats->state.load(std::memory_order_relaxed) == BackendState::down)
    return "backend down";
  for (const RuntimePool& p : rt.pools)
    for (const RuntimeBackend& b : p.backends)
      if (b.ref == setup_.backend) return nullptr;
  return "backend removed";
}

void Tunnel::readable(Side& from) {
  if (closing_) return;
  if (from.s->starved()) {  // at the buffer budget: try again on the next tick
    worker_.deadlines().set(deadline_, Deadlines::kTickMs);
    return;
  }
  last_active_ms_ = worker_.deadlines().now();
  pump(from);
}

// Queues bytes on `to`; a stream that refuses them is dead: the tunnel ends.
bool Tunnel::forward(Side& to, std::string_view bytes) {
  if (!to.s->write(bytes)) {
    close_all();
    return false;
  }
  if (to.send_due_ms == 0 && to.s->pending() > 0) {
    to.send_mark = to.s->sent();
    to.send_due_ms = worker_.deadlines().now() + setup_.send_ms;
    schedule();
  }
  return true;
}

// Copies what `from` has read to the other side (the stream copies only what the kernel
// does not take at once). Backend bytes walk the frame tracker; while a close waits, they
// go only up to the end of the current frame.
void Tunnel::pump(Side& from) {
  std::string_view in = from.s->input();
  if (!in.empty()) {
    if (&from == &backend_) {
      size_t n = to_client_.feed(in, close_code_ != 0);
      if (n > 0) {
        if (!forward(client_, in.substr(0, n))) return;
        setup_.stats->local().tunnel_bytes_to_client.fetch_add(n, std::memory_order_relaxed);
        bytes_to_client_ += n;
      }
      from.s->consume(n);
      if (close_code_ != 0 && !close_sent_ && to_client_.at_boundary()) {
        send_close();
        return;
      }
      if (to_client_.saw_close()) half_closed();
    } else {
      // After our close frame, what the client sends (its close reply) has nowhere to go.
      if (!close_sent_) {
        if (!forward(backend_, in)) return;
        setup_.stats->local().tunnel_bytes_to_backend.fetch_add(in.size(),
                                                                std::memory_order_relaxed);
        bytes_to_backend_ += in.size();
      }
      from.s->consume(in.size());
    }
  }
  update_reading(from);
}

void Tunnel::update_reading(Side& s) {
  if (closing_ || s.closed) return;
  bool want = !s.eof && !s.s->input_full();
  if (&s == &backend_)
    want = want && !close_sent_ && client_.s->pending() < worker_.max_pending();
  else if (!close_sent_)
    want = want && backend_.s->pending() < worker_.max_pending();
  if (want == s.s->reading()) return;
  if (want)
    s.s->read_start();
  else
    s.s->read_stop();
}

void Tunnel::eof(Side& from) {
  if (closing_) return;
  from.eof = true;
  if (&from == &client_) {
    if (close_sent_) {  // the client answered our close and hung up
      close_all();
      return;
    }
    backend_.s->shutdown();
  } else {
    if (!client_.eof && !close_sent_ && close_code_ == 0 && !to_client_.saw_close() &&
        to_client_.at_boundary()) {
      // The backend dropped the connection without closing the WebSocket (killed or
      // restarted): the client hears 1012 and reconnects, rather than a bare FIN.
      close_code_ = http::kWsServiceRestart;
      close_reason_ = "backend closed the connection";
      send_close();
      return;
    }
    if (close_code_ != 0 && !close_sent_) {  // the frame a close waited for never ends
      close_all();
      return;
    }
    client_.s->shutdown();
  }
  finish_if_done();
  if (!closing_) half_closed();
}

void Tunnel::failed(Side& from) {
  if (closing_) return;
  if (&from == &backend_ && !client_.eof && !close_sent_ && close_code_ == 0 &&
      !to_client_.saw_close() && to_client_.at_boundary()) {
    from.eof = true;
    close_code_ = http::kWsServiceRestart;
    close_reason_ = "backend connection reset";
    send_close();
    return;
  }
  close_all();
}

void Tunnel::drained(Side& to) {
  if (closing_) return;
  to.send_due_ms = 0;
  Side& from = other(to);
  if (!from.closed && from.s->has_input())
    pump(from);
  else
    update_reading(from);
  finish_if_done();
}

void Tunnel::finish_if_done() {
  if (closing_) return;
  if (client_.eof && backend_.eof && client_.s->idle() && backend_.s->idle()) close_all();
}

// The WebSocket is ending by itself (a close frame from the backend, or a side hung up):
// the other side gets kHalfCloseMs to finish.
void Tunnel::half_closed() {
  if (close_due_ms_ != 0 || close_sent_) return;
  close_due_ms_ = worker_.deadlines().now() + kHalfCloseMs;
  schedule();
}

void Tunnel::close_with(uint16_t code, const char* reason, bool fast) {
  if (closing_ || close_code_ != 0) return;
  if (to_client_.saw_close() || backend_.eof || client_.eof) {
    // A close is under way already (or a side is gone): no second close frame.
    close_all();
    return;
  }
  close_code_ = code;
  close_reason_ = reason;
  frame_wait_ms_ = fast ? kStopWaitMs : kFinishFrameMs;
  linger_ms_ = fast ? kStopWaitMs : kCloseLingerMs;
  if (to_client_.at_boundary()) {
    send_close();
    return;
  }
  if (to_client_.failed()) {  // no boundary will come
    close_all();
    return;
  }
  close_due_ms_ = worker_.deadlines().now() + frame_wait_ms_;
  schedule();
  pump(backend_);  // bytes of the frame may be waiting already
}

void Tunnel::send_close() {
  close_sent_ = true;
  if (linger_ms_ == 0) linger_ms_ = kCloseLingerMs;
  uint8_t frame[2 + 125];
  size_t n = http::write_ws_close(frame, close_code_, close_reason_);
  BackendStats& st = *setup_.stats;
  BackendShard& sh = st.local();
  (close_code_ == http::kWsServiceRestart ? sh.tunnel_closes_1012 : sh.tunnel_closes_1001)
      .fetch_add(1, std::memory_order_relaxed);
  // corral reads no JSON-RPC, so the slot the user last saw is the backend's tip now: the
  // reconnect goes to a backend at or past it (lb/core/balancer).
  if (close_code_ == http::kWsServiceRestart && setup_.pinned)
    worker_.state().sessions.record_slot(setup_.pin_key,
                                         st.tip_slot.load(std::memory_order_relaxed));
  if (std::string who = worker_.state().registry.name_of(setup_.backend); !who.empty()) {
    size_t slash = who.find('/');
    log_backend(LogLevel::debug, std::string_view(who).substr(0, slash),
                std::string_view(who).substr(slash + 1), "tunnel closed with %u: %s", close_code_,
                close_reason_);
  }
  backend_.s->close();
  if (!client_.s->write({reinterpret_cast<const char*>(frame), n})) {
    close_all();
    return;
  }
  client_.s->shutdown();  // the server closes the TCP connection first (RFC 6455 §7.1.1)
  // The linger runs while the frame is still queued too, but is extended as long as the
  // client keeps taking bytes (on_deadline).
  close_mark_ = client_.s->sent();
  close_due_ms_ = worker_.deadlines().now() + linger_ms_;
  schedule();
  update_reading(client_);
}

void Tunnel::close_all() {
  if (closing_) return;
  closing_ = true;
  worker_.deadlines().clear(deadline_);
  client_.s->close();
  backend_.s->close();
}

void Tunnel::side_closed(Side& s) {
  s.closed = true;
  if (client_.closed && backend_.closed) delete this;
}

// The one deadline entry: the earliest of the idle timeout, a close or half-close under
// way, and each side's send_timeout.
void Tunnel::schedule() {
  if (closing_) return;
  uint64_t due = close_code_ != 0 || close_sent_ ? close_due_ms_ : last_active_ms_ + setup_.idle_ms;
  if (close_due_ms_ != 0) due = std::min(due, close_due_ms_);
  for (const Side* s : {&client_, &backend_})
    if (s->send_due_ms != 0) due = std::min(due, s->send_due_ms);
  uint64_t now = worker_.deadlines().now();
  worker_.deadlines().set(deadline_, due > now ? due - now : 1);
}

// send_timeout for one side: its queued bytes have not moved for that long.
bool Tunnel::stalled(Side& s, uint64_t now) {
  if (s.closed || s.send_due_ms == 0) return false;
  if (s.s->pending() == 0) {
    s.send_due_ms = 0;
    return false;
  }
  if (s.s->sent() != s.send_mark) {
    s.send_mark = s.s->sent();
    s.send_due_ms = now + setup_.send_ms;
    return false;
  }
  return now >= s.send_due_ms;
}

void Tunnel::on_deadline(void* self) {
  auto* t = static_cast<Tunnel*>(self);
  if (t->closing_) return;
  uint64_t now = t->worker_.deadlines().now();
  for (Side* s : {&t->client_, &t->backend_})
    if (!s->closed && s->s->starved()) {
      s->s->retry_read();
      t->update_reading(*s);
    }
  for (Side* s : {&t->client_, &t->backend_})
    if (t->stalled(*s, now)) {
      std::string who = t->worker_.state().registry.name_of(t->setup_.backend);
      size_t slash = who.find('/');
      log_backend_limited(std::string_view(who).substr(0, slash),
                          slash == std::string::npos ? "" : std::string_view(who).substr(slash + 1),
                          "tunnel closed: the %s took no byte for send_timeout",
                          s == &t->client_ ? "client" : "backend");
      t->close_all();
      return;
    }
  if (t->close_due_ms_ != 0 && now >= t->close_due_ms_) {
    // A close frame still going out to a client that takes it: a little longer.
    if (t->close_sent_ && t->client_.s->pending() > 0 && t->client_.s->sent() != t->close_mark_) {
      t->close_mark_ = t->client_.s->sent();
      t->close_due_ms_ = now + t->linger_ms_;
    } else {
      t->close_all();
      return;
    }
  }
  if (t->close_code_ == 0 && !t->close_sent_ && now >= t->last_active_ms_ + t->setup_.idle_ms) {
    t->close_with(http::kWsGoingAway, "tunnel idle timeout");
    if (t->closing_) return;
  }
  t->schedule();
}

}  // namespace lb::net
