#include "lb/net/tunnel.h"

#include "lb/net/log.h"
#include "lb/net/runtime.h"
#include "lb/net/worker.h"

namespace lb::net {
namespace {

// A close waits this long for the backend to finish the frame it is sending; then the
// connection is cut (the client sees 1006 and reconnects all the same).
constexpr uint64_t kFinishFrameMs = 5'000;
// After our close frame, the client has this long to answer it before the socket closes.
constexpr uint64_t kCloseLingerMs = 2'000;

}  // namespace

Tunnel* Tunnel::open(Worker& worker, std::unique_ptr<Stream> client,
                     std::unique_ptr<Stream> backend, TunnelSetup setup) {
  auto* t = new Tunnel(worker, std::move(client), std::move(backend), std::move(setup));
  // Bytes that came with the 101, or that the client sent before it, go through first.
  t->pump(t->backend_);
  t->pump(t->client_);
  t->arm(t->setup_.idle_ms);
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
  setup_.stats->tunnels.fetch_add(1, std::memory_order_relaxed);
  worker_.track_tunnel(this);
}

Tunnel::~Tunnel() {
  worker_.deadlines().clear(deadline_);
  setup_.stats->tunnels.fetch_sub(1, std::memory_order_relaxed);
  // The client connection's place in the counts, taken over in ClientConn::exchange_switched.
  worker_.state().connections.fetch_sub(1);
  setup_.listener->open.fetch_sub(1, std::memory_order_relaxed);
  worker_.untrack_tunnel(this);
}

void Tunnel::arm(uint64_t ms) { worker_.deadlines().set(deadline_, ms); }

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
    arm(Deadlines::kTickMs);
    return;
  }
  last_active_ms_ = worker_.deadlines().now();
  pump(from);
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
        client_.s->write(in.substr(0, n));
        setup_.stats->tunnel_bytes_to_client.fetch_add(n, std::memory_order_relaxed);
      }
      from.s->consume(n);
      if (close_code_ != 0 && !close_sent_ && to_client_.at_boundary()) {
        send_close();
        return;
      }
    } else {
      // After our close frame, what the client sends (its close reply) has nowhere to go.
      if (!close_sent_) {
        backend_.s->write(in);
        setup_.stats->tunnel_bytes_to_backend.fetch_add(in.size(), std::memory_order_relaxed);
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
      close_with(http::kWsServiceRestart, "backend closed the connection");
      return;
    }
    if (close_code_ != 0 && !close_sent_) {  // the frame a close waited for never ends
      close_all();
      return;
    }
    client_.s->shutdown();
  }
  finish_if_done();
}

void Tunnel::failed(Side& from) {
  if (closing_) return;
  if (&from == &backend_ && !client_.eof && !close_sent_ && close_code_ == 0 &&
      !to_client_.saw_close() && to_client_.at_boundary()) {
    from.eof = true;
    close_with(http::kWsServiceRestart, "backend connection reset");
    return;
  }
  close_all();
}

void Tunnel::drained(Side& to) {
  if (closing_) return;
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

void Tunnel::close_with(uint16_t code, const char* reason) {
  if (closing_ || close_code_ != 0) return;
  close_code_ = code;
  close_reason_ = reason;
  if (to_client_.at_boundary()) {
    send_close();
    return;
  }
  if (to_client_.failed() || backend_.eof) {  // no boundary will come
    close_all();
    return;
  }
  close_due_ms_ = worker_.deadlines().now() + kFinishFrameMs;
  arm(kFinishFrameMs);
  pump(backend_);  // bytes of the frame may be waiting already
}

void Tunnel::send_close() {
  close_sent_ = true;
  uint8_t frame[2 + 125];
  size_t n = http::write_ws_close(frame, close_code_, close_reason_);
  client_.s->write({reinterpret_cast<const char*>(frame), n});
  client_.s->shutdown();  // the server closes the TCP connection first (RFC 6455 §7.1.1)
  BackendStats& st = *setup_.stats;
  (close_code_ == http::kWsServiceRestart ? st.tunnel_closes_1012 : st.tunnel_closes_1001)
      .fetch_add(1, std::memory_order_relaxed);
  // corral reads no JSON-RPC, so the slot the user last saw is the backend's tip now: the
  // reconnect goes to a backend at or past it (lb/core/balancer).
  if (close_code_ == http::kWsServiceRestart && setup_.pinned)
    worker_.state().sessions.record_slot(setup_.pin_key,
                                         st.tip_slot.load(std::memory_order_relaxed));
  logf(LogLevel::info, "tunnel to %s closed with %u: %s",
       worker_.state().registry.name_of(setup_.backend).c_str(), close_code_, close_reason_);
  backend_.s->close();
  close_due_ms_ = worker_.deadlines().now() + kCloseLingerMs;
  arm(kCloseLingerMs);
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

void Tunnel::on_deadline(void* self) {
  auto* t = static_cast<Tunnel*>(self);
  if (t->closing_) return;
  uint64_t now = t->worker_.deadlines().now();
  for (Side* s : {&t->client_, &t->backend_})
    if (!s->closed && s->s->starved()) {
      s->s->retry_read();
      t->update_reading(*s);
    }
  if (t->close_code_ != 0) {
    if (now >= t->close_due_ms_) {
      t->close_all();
      return;
    }
    t->arm(t->close_due_ms_ - now);
    return;
  }
  uint64_t idle_due = t->last_active_ms_ + t->setup_.idle_ms;
  if (now >= idle_due) {
    t->close_with(http::kWsGoingAway, "tunnel idle timeout");
    return;
  }
  t->arm(idle_due - now);
}

}  // namespace lb::net
