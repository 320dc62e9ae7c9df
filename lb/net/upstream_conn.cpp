#include "lb/net/upstream_conn.h"

#include <cstring>

#include "lb/net/worker.h"

namespace lb::net {

const char* upstream_error_name(UpstreamError e) {
  switch (e) {
    case UpstreamError::connect_failed:
      return "connect_failed";
    case UpstreamError::connect_timeout:
      return "connect_timeout";
    case UpstreamError::response_timeout:
      return "response_timeout";
    case UpstreamError::closed_early:
      return "closed_early";
    case UpstreamError::reset:
      return "reset";
    case UpstreamError::bad_response:
      return "bad_response";
  }
  return "unknown";
}

// Idle keep-alive connections close after this long (backends close theirs too; the
// stale-connection retry covers the race).
static constexpr uint64_t kIdleMs = 30'000;

UpstreamConn::UpstreamConn(Worker& worker, BackendRef ref)
    : worker_(worker),
      ref_(ref),
      out_(reinterpret_cast<uv_stream_t*>(&tcp_), this, &UpstreamConn::on_drained,
           &UpstreamConn::on_write_error),
      parser_(http::MessageParser::Kind::response, kMaxResponseHead),
      in_(kMaxResponseHead + kReadChunk) {
  uv_tcp_init(worker.loop(), &tcp_);
  uv_timer_init(worker.loop(), &timer_);
  open_handles_ = 2;
  tcp_.data = this;
  timer_.data = this;
  connect_req_.data = this;
  uv_tcp_nodelay(&tcp_, 1);
}

void UpstreamConn::connect(const sockaddr* addr, UpstreamOwner* owner, uint64_t connect_ms) {
  owner_ = owner;
  state_ = State::connecting;
  int rc = uv_tcp_connect(&connect_req_, &tcp_, addr, &UpstreamConn::on_connect);
  if (rc != 0) {
    // Report asynchronously-shaped but now: the owner expects a callback either way.
    fail(UpstreamError::connect_failed);
    return;
  }
  uv_timer_start(&timer_, &UpstreamConn::on_timer, connect_ms, 0);
}

void UpstreamConn::on_connect(uv_connect_t* req, int status) {
  auto* u = static_cast<UpstreamConn*>(req->data);
  if (u->state_ == State::closing) return;
  uv_timer_stop(&u->timer_);
  if (status != 0) {
    u->fail(UpstreamError::connect_failed);
    return;
  }
  u->state_ = State::active;
  uv_read_start(reinterpret_cast<uv_stream_t*>(&u->tcp_), &UpstreamConn::on_alloc,
                &UpstreamConn::on_read);
  u->reading_ = true;
  if (u->owner_) u->owner_->upstream_connected();
}

void UpstreamConn::bind(UpstreamOwner* owner) {
  owner_ = owner;
  state_ = State::active;
  reused_ = true;
  uv_timer_stop(&timer_);
}

bool UpstreamConn::send(std::string_view a, std::string_view b) { return out_.write(a, b); }

void UpstreamConn::expect_response(bool head_request, uint64_t response_ms) {
  head_request_ = head_request;
  response_ms_ = response_ms;
  got_bytes_ = false;
  in_body_ = false;
  start_ = end_ = 0;
  uv_timer_stop(&timer_);
}

void UpstreamConn::start_response_timer() {
  if (state_ == State::active && !paused_)
    uv_timer_start(&timer_, &UpstreamConn::on_timer, response_ms_, 0);
}

void UpstreamConn::pause_reading() {
  if (paused_) return;
  paused_ = true;
  // Our own backpressure is not the backend's slowness: the client's timer runs instead.
  uv_timer_stop(&timer_);
  if (reading_) uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  reading_ = false;
}

void UpstreamConn::resume_reading() {
  if (!paused_ || state_ != State::active) return;
  paused_ = false;
  uv_timer_start(&timer_, &UpstreamConn::on_timer, response_ms_, 0);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), &UpstreamConn::on_alloc,
                &UpstreamConn::on_read);
  reading_ = true;
  parse();  // bytes may have arrived before the pause
}

void UpstreamConn::release(bool reusable) {
  owner_ = nullptr;
  if (!reusable || state_ != State::active || worker_.stopping() || paused_ || !out_.idle()) {
    close();
    return;
  }
  parser_.resume_after_message();
  start_ = end_ = 0;
  state_ = State::idle;
  if (!worker_.upstreams().put(this)) {
    close();
    return;
  }
  in_pool_ = true;
  uv_timer_start(&timer_, &UpstreamConn::on_timer, kIdleMs, 0);
}

void UpstreamConn::abort() {
  owner_ = nullptr;
  close();
}

void UpstreamConn::fail(UpstreamError e) {
  UpstreamOwner* o = owner_;
  owner_ = nullptr;
  close();
  if (o) o->upstream_failed(e);
}

void UpstreamConn::close() {
  if (state_ == State::closing) return;
  if (in_pool_) worker_.upstreams().remove(this);
  in_pool_ = false;
  state_ = State::closing;
  out_.discard();
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &UpstreamConn::on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &UpstreamConn::on_close);
}

void UpstreamConn::on_close(uv_handle_t* h) {
  auto* u = static_cast<UpstreamConn*>(h->data);
  if (--u->open_handles_ == 0) delete u;
}

void UpstreamConn::on_timer(uv_timer_t* t) {
  auto* u = static_cast<UpstreamConn*>(t->data);
  switch (u->state_) {
    case State::connecting:
      u->fail(UpstreamError::connect_timeout);
      break;
    case State::active:
      u->fail(UpstreamError::response_timeout);
      break;
    default:
      u->close();
      break;
  }
}

void UpstreamConn::on_drained(void* self) {
  auto* u = static_cast<UpstreamConn*>(self);
  if (u->owner_) u->owner_->upstream_drained();
}

void UpstreamConn::on_write_error(void* self, int) {
  auto* u = static_cast<UpstreamConn*>(self);
  u->fail(u->got_bytes_ ? UpstreamError::reset : UpstreamError::closed_early);
}

void UpstreamConn::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* u = static_cast<UpstreamConn*>(h->data);
  // Body bytes are handed over as soon as they are read, so the buffer restarts at 0;
  // a head stays in place until complete (its header views point into it).
  if (u->in_body_ && u->start_ == u->end_) u->start_ = u->end_ = 0;
  size_t room = u->in_.size() - u->end_;
  *buf = uv_buf_init(u->in_.data() + u->end_, static_cast<unsigned>(room));
}

void UpstreamConn::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
  auto* u = static_cast<UpstreamConn*>(s->data);
  if (nread == 0) return;
  if (u->state_ == State::idle) {  // a parked connection closed or spoke out of turn
    u->close();
    return;
  }
  if (nread < 0) {
    if (nread == UV_ENOBUFS) {
      u->fail(UpstreamError::bad_response);
      return;
    }
    u->handle_eof();
    return;
  }
  u->end_ += static_cast<size_t>(nread);
  u->got_bytes_ = true;
  if (!u->paused_) uv_timer_start(&u->timer_, &UpstreamConn::on_timer, u->response_ms_, 0);
  u->parse();
}

void UpstreamConn::handle_eof() {
  if (!owner_) {
    close();
    return;
  }
  if (!got_bytes_) {
    fail(UpstreamError::closed_early);
    return;
  }
  // A response framed by the end of the connection ends here; any other is cut short.
  if (in_body_ && parser_.finish() == http::ParseStatus::done) {
    UpstreamOwner* o = owner_;
    owner_ = nullptr;
    close();
    o->upstream_done(false);
    return;
  }
  fail(UpstreamError::reset);
}

void UpstreamConn::parse() {
  while (owner_ && !paused_ && start_ < end_ + (in_body_ ? 1 : 0)) {
    http::ParseResult r = parser_.feed(in_.data() + start_, end_ - start_);
    switch (r.status) {
      case http::ParseStatus::head: {
        start_ += r.consumed;
        in_body_ = true;
        int status = parser_.status_code();
        owner_->upstream_head(parser_);
        if (!owner_) return;
        parser_.resume_after_head(head_request_ && status >= 200);
        break;
      }
      case http::ParseStatus::need_more:
        if (in_body_ && r.consumed > 0) owner_->upstream_body(in_.data() + start_, r.consumed);
        start_ += r.consumed;
        if (owner_) owner_->upstream_read_end();
        return;
      case http::ParseStatus::done: {
        if (r.consumed > 0) owner_->upstream_body(in_.data() + start_, r.consumed);
        if (!owner_) return;
        start_ += r.consumed;
        int status = parser_.status_code();
        if (status >= 100 && status < 200 && status != 101) {
          // An interim response (100 Continue, 103): the final one follows.
          parser_.resume_after_message();
          in_body_ = false;
          memmove(in_.data(), in_.data() + start_, end_ - start_);
          end_ -= start_;
          start_ = 0;
          break;
        }
        bool reusable = parser_.keep_alive() && start_ == end_;
        uv_timer_stop(&timer_);
        UpstreamOwner* o = owner_;
        o->upstream_read_end();
        if (!owner_) return;  // the client went away while we wrote to it
        o->upstream_done(reusable);
        return;
      }
      case http::ParseStatus::upgrade:
        // Protocol switches are not proxied on this path.
        fail(UpstreamError::bad_response);
        return;
      case http::ParseStatus::error:
        fail(UpstreamError::bad_response);
        return;
    }
  }
}

}  // namespace lb::net
