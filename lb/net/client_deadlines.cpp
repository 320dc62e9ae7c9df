// ClientConn, third part: its deadlines. One entry in the worker's Deadlines list per
// connection carries the earliest of the phase's timeout (header, idle, body_timeout,
// lingering), send_timeout while bytes wait for the client, and the read retry while
// starved of buffers; on_deadline sorts out which one is due.
#include <algorithm>

#include "lb/net/client_conn.h"
#include "lb/net/log.h"
#include "lb/net/worker.h"

namespace lb::net {
namespace {

// After our FIN, how long unread client bytes are drained before the close.
constexpr uint64_t kLingerMs = 2000;
// A connection starved of buffers (the process is at limits.max_buffer_memory) tries
// reading again this soon.
constexpr uint64_t kStarvedRetryMs = 50;

}  // namespace

void ClientConn::arm_timer() {
  if (closing_) return;
  const config::Limits& lim = rt_->config.limits;
  uint64_t now = worker_.deadlines().now();
  uint64_t ms = 0;
  switch (phase_) {
    case Phase::head:
      // A TLS handshake counts as the start of the first head: header_timeout bounds it.
      ms = head_partial_ || stream_->handshaking() ? lim.header_timeout_ms : lim.idle_timeout_ms;
      break;
    case Phase::body:
    case Phase::discard:
      ms = lim.idle_timeout_ms;
      // The body's own deadline does not move with its bytes: a trickle ends too.
      if (body_due_ms_ != 0) ms = std::min(ms, body_due_ms_ > now ? body_due_ms_ - now : 1);
      break;
    case Phase::lingering:
      ms = kLingerMs;
      break;
    case Phase::placing:
      // The store answers within sticky.store.timeout; header_timeout is the backstop.
      ms = lim.header_timeout_ms;
      break;
    case Phase::connecting:
    case Phase::waiting:
      break;  // the backend's deadlines run; send_timeout watches a client that stops reading
  }
  phase_due_ms_ = ms ? now + ms : 0;
  watch_send();
  schedule();
}

void ClientConn::disarm_timer() {
  phase_due_ms_ = 0;
  schedule();
}

// Starved of buffers: try reading again shortly, without moving the phase's own deadline
// (a connection waiting for memory still times out when its phase says so).
void ClientConn::arm_starved_retry() { schedule(); }

// The connection's one deadline entry goes to the earliest of its phase's deadline, its
// send deadline and, while starved of buffers, the next read retry.
void ClientConn::schedule() {
  uint64_t now = worker_.deadlines().now();
  uint64_t due = 0;
  auto earliest = [&due](uint64_t t) {
    if (t != 0 && (due == 0 || t < due)) due = t;
  };
  earliest(phase_due_ms_);
  earliest(send_due_ms_);
  if (stream_->starved()) earliest(now + kStarvedRetryMs);
  if (due == 0)
    worker_.deadlines().clear(deadline_);
  else
    worker_.deadlines().set(deadline_, due > now ? due - now : 1);
}

// send_timeout: armed while bytes wait to go to the client, moved on whenever some went
// (the stream's sent() count changed), off once all are written. A reader that stopped,
// or that takes a byte now and then but never a whole write, runs out of it.
void ClientConn::watch_send() {
  if (stream_->idle()) {
    send_due_ms_ = 0;
    return;
  }
  uint64_t sent = stream_->sent();
  if (send_due_ms_ == 0 || sent != send_mark_) {
    send_mark_ = sent;
    send_due_ms_ = worker_.deadlines().now() + rt_->config.limits.send_timeout_ms;
  }
}

// After a write to the client: start watching it if bytes now wait (most writes go out
// at once and cost nothing here).
void ClientConn::note_output() {
  if (closing_) return;
  bool was = send_due_ms_ != 0;
  watch_send();
  if (was != (send_due_ms_ != 0)) schedule();
}

void ClientConn::on_deadline(void* self) {
  auto* c = static_cast<ClientConn*>(self);
  uint64_t now = c->worker_.deadlines().now();
  if (c->send_due_ms_ != 0 && now >= c->send_due_ms_) {
    if (!c->stream_->idle() && c->stream_->sent() == c->send_mark_) {
      c->send_timed_out();
      return;
    }
    c->watch_send();  // progress: moved on (or off)
  }
  if (c->phase_due_ms_ != 0 && now >= c->phase_due_ms_) {
    c->phase_expired(now);
    return;
  }
  if (c->stream_->starved()) {
    c->stream_->retry_read();
    if (c->closing_) return;
  }
  c->schedule();
}

void ClientConn::phase_expired(uint64_t now) {
  phase_due_ms_ = 0;
  if (phase_ == Phase::head && head_partial_) {
    log_limited("client %s: request head not complete within header_timeout", ip_text());
    reply_local(408, "request head not received in time", true);
    return;
  }
  if (phase_ == Phase::placing && fill_flight_) {
    // [fill flights] waited header_timeout for the leader's answer: on its own now.
    leave_fill_flight();
    fill_go_solo();
    if (!closing_ && phase_ != Phase::placing) {
      stream_->hold_input(false);
      process();
    }
    return;
  }
  if (phase_ == Phase::placing) {
    log_limited("client %s: no placement within header_timeout (shared store)", ip_text());
    rs_->exchange.abort();  // drops the store's answer
    reply_local(503, "no backend placement in time", true, "Retry-After: 1\r\n");
    return;
  }
  if ((phase_ == Phase::body || phase_ == Phase::discard) && !resp_started_) {
    bool late = body_due_ms_ != 0 && now >= body_due_ms_;
    const char* reason = late ? "request body not received within body_timeout"
                              : "request body not received in time";
    if (late) {
      listener_stats_->local().body_timeouts.fetch_add(1, std::memory_order_relaxed);
      log_limited("client %s: request body not complete within body_timeout", ip_text());
    } else {
      log_limited("client %s: request body stalled past idle_timeout", ip_text());
    }
    if (exchanging()) {
      fail_exchange(408, reason);  // the upstream side is aborted, not reused
      return;
    }
    reply_local(408, reason, true);
    return;
  }
  if (exchanging()) cancel_answer();  // [flights]
  close();
}

// No byte of the answer moved for send_timeout: the client stopped reading. Its exchange
// and connection end, and the buffers they held go back.
void ClientConn::send_timed_out() {
  listener_stats_->local().send_timeouts.fetch_add(1, std::memory_order_relaxed);
  log_limited(
      "client %s: no progress sending to it within send_timeout (%zu bytes waiting); "
      "closed",
      ip_text(), stream_->pending());
  if (exchanging()) cancel_answer();  // [flights]
  close();
}

}  // namespace lb::net
