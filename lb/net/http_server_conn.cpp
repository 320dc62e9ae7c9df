// One server connection's lifecycle and its read side: accept, idle timeout, close, the
// read buffer, parsing and dispatching one request at a time.
#include "lb/net/http_server_conn.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "lb/net/socket_address.h"

namespace lb::net {

// ---- ServerConnection: lifecycle ----

void ServerConnection::start(uv_stream_t* server) {
  uv_loop_t* loop = core_->loop;
  uv_tcp_init(loop, &tcp_);
  uv_timer_init(loop, &idle_);
  tcp_.data = this;
  idle_.data = this;
  handles_open_ = 2;
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&tcp_)) != 0) {
    close_now(false);
    return;
  }
  uv_tcp_nodelay(&tcp_, 1);
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0)
    peer_ = format_endpoint(ss);
  head_since_ms_ = uv_now(loop);
  restart_idle();
  update_reading();
}

void ServerConnection::refuse(int status, std::string_view reason) {
  if (closing_) return;
  head_since_ms_ = 0;
  reject(status, reason);
}

void ServerConnection::close_now(bool reset) {
  if (closing_ || handles_open_ == 0) return;
  closing_ = true;
  pending_ = false;
  uv_timer_stop(&idle_);
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), &ServerConnection::on_closed);
  // uv_tcp_close_reset refuses while a shutdown is in flight; a plain close is all we can do.
  if (!reset || uv_tcp_close_reset(&tcp_, &ServerConnection::on_closed) != 0)
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &ServerConnection::on_closed);
}

void ServerConnection::on_closed(uv_handle_t* h) {
  auto* self = static_cast<ServerConnection*>(h->data);
  if (--self->handles_open_ > 0) return;
  // Taken out first: the callback may drop the last reference its owner holds to us.
  RawHandlers raw = std::move(self->raw_handlers_);
  if (raw.on_close) raw.on_close();
  // Last handle closed: drop the core's reference to us, which frees this object at the end
  // of the scope, after the core has been told.
  std::shared_ptr<HttpServerCore> core = std::move(self->core_);
  std::shared_ptr<ServerConnection> keep;
  auto it = core->conns.find(self);
  if (it != core->conns.end()) {
    keep = std::move(it->second);
    core->conns.erase(it);
  }
  core->maybe_done();
}

// One timer serves both limits: the idle timeout (restarted by every byte) and the head
// deadline (fixed when the head began, so trickling bytes cannot extend it: slowloris).
void ServerConnection::restart_idle() {
  if (closing_ || raw_) return;
  const ServerOptions& o = core_->options;
  uint64_t wait = o.idle_timeout_ms;
  if (head_since_ms_ != 0 && o.header_timeout_ms != 0) {
    const uint64_t now = uv_now(core_->loop);
    const uint64_t end = head_since_ms_ + o.header_timeout_ms;
    const uint64_t left = end > now ? end - now : 0;
    wait = wait == 0 ? left : std::min(wait, left);
  } else if (wait == 0) {
    return;
  }
  uv_timer_start(&idle_, &ServerConnection::on_idle, wait, 0);
}

void ServerConnection::on_idle(uv_timer_t* t) {
  auto* self = static_cast<ServerConnection*>(t->data);
  if (self->raw_) return;  // an upgraded connection's idleness is its new owner's business
  // A handler still working on a response is not the client's idleness.
  if (self->pending_) {
    self->restart_idle();
    return;
  }
  const ServerOptions& o = self->core_->options;
  if (self->head_since_ms_ != 0 && o.header_timeout_ms != 0 && !self->close_after_write_ &&
      uv_now(self->core_->loop) >= self->head_since_ms_ + o.header_timeout_ms) {
    self->head_since_ms_ = 0;
    self->reject(408, "request head not received in time");
    self->restart_idle();  // the answer must go out within the idle timeout, or we close
    return;
  }
  self->close_now(false);
}

// ---- reading and parsing ----

void ServerConnection::update_reading() {
  if (closing_) return;
  const bool backlog = pending_ && end_ - begin_ >= read_limit();
  const bool want = !peer_eof_ && !backlog;
  auto* s = reinterpret_cast<uv_stream_t*>(&tcp_);
  if (want && !reading_) {
    if (uv_read_start(s, &ServerConnection::on_alloc, &ServerConnection::on_read) == 0)
      reading_ = true;
  } else if (!want && reading_) {
    uv_read_stop(s);
    reading_ = false;
  }
}

void ServerConnection::compact() {
  if (begin_ == 0) return;
  std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
  end_ -= begin_;
  parsed_ -= begin_;
  begin_ = 0;
}

void ServerConnection::prepare_read_space() {
  // Moving bytes is safe unless a head is partly parsed (the parser holds views into it);
  // a head never needs more room than max_header_bytes + kReadChunk, which we keep.
  const bool mid_head = parsed_ > begin_ && !parser_.in_body();
  if (!mid_head && parsed_ == begin_) compact();
  const size_t floor = core_->options.max_header_bytes + kReadChunk;
  if (buf_.size() < floor && !mid_head) buf_.resize(floor);
  if (buf_.size() - end_ >= kReadChunk || mid_head) return;
  const size_t want = std::min(std::max(buf_.size() * 2, end_ + kReadChunk), read_limit());
  if (want > buf_.size()) buf_.resize(want);
}

void ServerConnection::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<ServerConnection*>(h->data);
  if (self->raw_) {
    std::vector<char>& shared = self->core_->raw_read_buf;
    if (shared.empty()) shared.resize(64 * 1024);
    buf->base = shared.data();
    buf->len = shared.size();
    return;
  }
  self->prepare_read_space();
  buf->base = self->buf_.data() + self->end_;
  buf->len = self->buf_.size() - self->end_;
}

void ServerConnection::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<ServerConnection*>(s->data);
  if (self->closing_) return;
  if (self->raw_) {
    self->on_raw_read(nread, buf);
    return;
  }
  if (nread > 0) {
    self->end_ += static_cast<size_t>(nread);
    // The first byte of a later request's head starts its deadline.
    if (self->head_since_ms_ == 0 && !self->pending_ && !self->parser_.in_body() &&
        self->parsed_ == self->begin_)
      self->head_since_ms_ = uv_now(self->core_->loop);
    self->restart_idle();
    if (self->close_after_write_) {
      self->end_ = self->parsed_;  // answered and closing: drain, do not parse
      return;
    }
    self->process();
    return;
  }
  if (nread == UV_EOF) {
    self->peer_eof_ = true;
    self->update_reading();
    if (!self->close_after_write_) self->process();
    return;
  }
  if (nread == UV_ENOBUFS) {
    self->reject(431, "request too large");
    return;
  }
  if (nread < 0) self->close_now(false);
}

void ServerConnection::process() {
  if (in_process_) return;
  in_process_ = true;
  while (!closing_ && !close_after_write_ && !pending_ && !raw_) {
    if (parsed_ == begin_) compact();  // nothing of the next message fed yet: free to move
    // In the body state the parser may finish the message without another byte.
    if (parsed_ == end_ && !parser_.in_body()) break;
    http::ParseResult r = parser_.feed(buf_.data() + parsed_, end_ - parsed_);
    parsed_ += r.consumed;
    if (r.status == http::ParseStatus::need_more) break;
    if (r.status == http::ParseStatus::head) {
      if (!on_head()) break;
      continue;
    }
    if (r.status == http::ParseStatus::done) {
      dispatch();
      continue;
    }
    if (r.status == http::ParseStatus::upgrade) {
      reject(400, "protocol upgrade not supported");
      break;
    }
    reject(parser_.error_status() ? parser_.error_status() : 400, parser_.error_reason());
    break;
  }
  in_process_ = false;
  if (closing_) return;
  if (raw_) {
    deliver_leftover();
    return;
  }
  // The client half-closed and every complete request has been answered.
  if (peer_eof_ && !pending_ && !close_after_write_) finish_and_close();
  update_reading();
}

bool ServerConnection::on_head() {
  head_since_ms_ = 0;
  method_ = parser_.method();
  target_ = span_of(parser_.target());
  header_spans_.clear();
  for (const HeaderView& h : parser_.headers())
    header_spans_.emplace_back(span_of(h.name), span_of(h.value));
  body_begin_ = parsed_;
  keep_alive_ = parser_.keep_alive();
  head_request_ = method_ == "HEAD";
  http10_ = parser_.version_major() == 1 && parser_.version_minor() == 0;
  if (parser_.chunked()) {
    reject(411, "chunked request bodies are not supported; send Content-Length");
    return false;
  }
  const uint64_t length = parser_.has_content_length() ? parser_.content_length() : 0;
  if (length > core_->options.max_body_bytes) {
    reject(413, "request body too large");
    return false;
  }
  if (length > 0) {
    // Look the header up before growing: the parser's views die with the old buffer.
    HeaderLookup expect = find_header(parser_.headers(), "expect");
    if (expect.found && iequals(expect.value, "100-continue") && end_ - body_begin_ < length)
      write("HTTP/1.1 100 Continue\r\n\r\n");
    // Grow once now (our offsets survive the move) so that the body lands contiguous.
    const size_t need = body_begin_ + static_cast<size_t>(length) + kReadChunk;
    if (buf_.size() < need) buf_.resize(need);
  }
  parser_.resume_after_head();
  return true;
}

void ServerConnection::dispatch() {
  headers_.clear();
  for (const auto& [name, value] : header_spans_) headers_.push_back({view(name), view(value)});
  ServerRequest req;
  req.method = method_;
  req.target = view(target_);
  req.headers = headers_;
  req.body = std::string_view(buf_.data() + body_begin_, parsed_ - body_begin_);
  req.peer = peer_;
  req.version_major = parser_.version_major();
  req.version_minor = parser_.version_minor();
  // After an upgrade request the parser would treat the rest as another protocol.
  if (parser_.upgrade() || core_->closing) keep_alive_ = false;
  parser_.resume_after_message();
  begin_ = parsed_;  // the request's bytes stay in place until the next compaction
  ++seq_;
  pending_ = true;
  out_ = Out::idle;
  const bool upgrade = parser_.upgrade() && core_->upgrade_handler;
  (upgrade ? core_->upgrade_handler : core_->handler)(req, Responder(weak_from_this(), seq_));
}

// ---- upgraded connections ----

bool ServerConnection::switch_protocols(uint64_t seq, std::string head, RawHandlers handlers) {
  if (!accepts(seq) || out_ != Out::idle || !parser_.upgrade() || !core_->upgrade_handler)
    return false;
  write(std::move(head));
  raw_ = true;
  raw_handlers_ = std::move(handlers);
  pending_ = false;
  head_since_ms_ = 0;
  uv_timer_stop(&idle_);
  // Called from the handler, inside process(): it hands the leftover on once the handler
  // has returned. Called later (from a timer): now.
  if (!in_process_) deliver_leftover();
  return true;
}

void ServerConnection::deliver_leftover() {
  // What the client sent after its request head belongs to the new protocol. The HTTP
  // buffers are freed: an idle upgraded connection keeps none.
  std::string rest(buf_.data() + begin_, end_ - begin_);
  std::vector<char>().swap(buf_);
  std::vector<std::pair<Span, Span>>().swap(header_spans_);
  std::vector<HeaderView>().swap(headers_);
  begin_ = parsed_ = end_ = 0;
  auto keep = shared_from_this();
  if (!rest.empty() && raw_handlers_.on_data) raw_handlers_.on_data(rest);
  if (closing_) return;
  if (peer_eof_) {
    close_now(false);
    return;
  }
  update_reading();
}

void ServerConnection::on_raw_read(ssize_t nread, const uv_buf_t* buf) {
  if (nread > 0) {
    // Closing politely: what the peer still sends is read and dropped.
    if (close_after_write_ || !raw_handlers_.on_data) return;
    auto keep = shared_from_this();
    raw_handlers_.on_data(std::string_view(buf->base, static_cast<size_t>(nread)));
    return;
  }
  if (nread == UV_EOF && close_after_write_) {
    // Our last bytes (a close reply) are still going out; the shutdown closes after them.
    peer_eof_ = true;
    update_reading();
    return;
  }
  if (nread < 0) close_now(false);  // EOF or an error: the peer is gone
}

}  // namespace lb::net
