#include "lb/net/upstream_conn.h"

#include <cstddef>

#include "lb/http/response_framing.h"
#include "lb/http/ws_handshake.h"
#include "lb/net/tls_stream.h"
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
    case UpstreamError::tls:
      return "tls";
    case UpstreamError::fd_exhausted:
      return "fd_exhausted";
  }
  return "unknown";
}

// Idle keep-alive connections close after this long (backends close theirs too; the
// stale-connection retry covers the race).
static constexpr uint64_t kIdleMs = 30'000;

UpstreamConn::UpstreamConn(Worker& worker, const RuntimeBackend& backend)
    : worker_(worker),
      ref_(backend.ref),
      stats_(backend.stats),
      stream_(worker.make_stream(&backend)) {
  if (stats_) stats_->local().upstream_open.fetch_add(1, std::memory_order_relaxed);
  if (backend.tls) {
    tls_ = static_cast<TlsStream*>(stream_.get());
    tls_name_ = backend.tls_name;
  }
  stream_->set_handler(this);
  stream_->set_exempt(true);
  deadline_.fire = &UpstreamConn::on_deadline;
  deadline_.owner = this;
}

UpstreamConn::~UpstreamConn() {
  if (stats_) stats_->local().upstream_open.fetch_sub(1, std::memory_order_relaxed);
}

void UpstreamConn::arm(uint64_t ms) {
  if (ms)
    worker_.deadlines().set(deadline_, ms);
  else
    worker_.deadlines().clear(deadline_);
}

void UpstreamConn::connect(const sockaddr* addr, UpstreamOwner* owner, uint64_t connect_ms) {
  owner_ = owner;
  state_ = State::connecting;
  if (int rc = stream_->connect(addr); rc != 0) {
    // Running out of descriptors is corral's problem, not the backend's, and is named so;
    // either way the owner expects a callback.
    fail(rc == UV_EMFILE || rc == UV_ENFILE ? UpstreamError::fd_exhausted
                                            : UpstreamError::connect_failed);
    return;
  }
  arm(connect_ms);
}

void UpstreamConn::on_connected(Stream&, int status) {
  if (state_ == State::closing) return;
  arm(0);
  if (status != 0) {
    fail(tls_ && status == TlsStream::kTlsError ? UpstreamError::tls
                                                : UpstreamError::connect_failed);
    return;
  }
  if (tls_) worker_.save_tls_session(ref_, tls_name_, *tls_);
  state_ = State::active;
  stream_->read_start();
  if (owner_) owner_->upstream_connected();
}

void UpstreamConn::bind(UpstreamOwner* owner) {
  owner_ = owner;
  state_ = State::active;
  reused_ = true;
  arm(0);
}

void UpstreamConn::expect_response(bool head_request, uint64_t response_ms, std::string_view ws_key,
                                   bool decode) {
  head_request_ = head_request;
  decode_ = decode;
  ws_key_ = ws_key;
  reusable_ = true;
  bad_reason_ = "";
  response_ms_ = response_ms;
  got_bytes_ = false;
  in_body_ = false;
  // The response parser is taken when the first response byte arrives: an upload that
  // takes minutes holds none.
  give_parser();
  arm(0);
}

void UpstreamConn::start_response_timer() {
  if (state_ == State::active && !paused_) arm(response_ms_);
}

void UpstreamConn::pause_reading() {
  if (paused_) return;
  paused_ = true;
  // Our own backpressure is not the backend's slowness: the client's deadline runs.
  arm(0);
  stream_->read_stop();
}

void UpstreamConn::resume_reading() {
  if (!paused_ || state_ != State::active) return;
  paused_ = false;
  arm(response_ms_);
  stream_->read_start();
  parse();  // bytes may have arrived before the pause
}

void UpstreamConn::give_parser() {
  worker_.response_parsers().give(parser_);
  parser_ = nullptr;
}

void UpstreamConn::release(bool reusable) {
  owner_ = nullptr;
  if (!reusable || state_ != State::active || worker_.stopping() || paused_ || !stream_->idle() ||
      stream_->has_input()) {
    close();
    return;
  }
  give_parser();
  stream_->hold_input(false);
  // TLS 1.3 sends its session tickets after the handshake: by now they have arrived.
  if (tls_) worker_.save_tls_session(ref_, tls_name_, *tls_);
  state_ = State::idle;
  if (!worker_.upstreams().put(this)) {
    close();
    return;
  }
  in_pool_ = true;
  arm(kIdleMs);
}

std::string UpstreamConn::tls_error() const { return tls_ ? tls_->tls_error() : std::string(); }

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
  arm(0);
  give_parser();
  stream_->close();
}

void UpstreamConn::on_closed(Stream&) { delete this; }

void UpstreamConn::on_deadline(void* self) {
  auto* u = static_cast<UpstreamConn*>(self);
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

void UpstreamConn::on_drained(Stream&) {
  if (owner_) owner_->upstream_drained();
}

void UpstreamConn::on_stream_error(Stream&, int) {
  if (state_ == State::idle) {
    close();
    return;
  }
  fail(got_bytes_ ? UpstreamError::reset : UpstreamError::closed_early);
}

void UpstreamConn::on_readable(Stream&) {
  if (state_ == State::idle) {  // a parked connection spoke out of turn
    close();
    return;
  }
  if (state_ != State::active) return;
  got_bytes_ = true;
  if (!paused_) arm(response_ms_);
  parse();
}

void UpstreamConn::on_eof(Stream&) {
  if (!owner_) {
    close();
    return;
  }
  if (!got_bytes_) {
    fail(UpstreamError::closed_early);
    return;
  }
  // A response framed by the end of the connection ends here; any other is cut short.
  if (in_body_ && parser_->finish() == http::ParseStatus::done) {
    UpstreamOwner* o = owner_;
    owner_ = nullptr;
    close();
    o->upstream_done(false);
    return;
  }
  fail(UpstreamError::reset);
}

bool UpstreamConn::on_head(size_t consumed) {
  // lb/http/response_framing decides whether this response may be forwarded, whether it
  // has a body, and whether this connection can carry another request after it.
  http::ResponseFacts facts;
  facts.status = parser_->status_code();
  facts.version_major = parser_->version_major();
  facts.head_request = head_request_;
  facts.upgrade_requested = !ws_key_.empty();
  facts.has_content_length = parser_->has_content_length();
  facts.content_length = parser_->content_length();
  facts.headers = parser_->headers();
  http::ResponseFraming framing = http::frame_response(facts);
  if (!framing.error && facts.status == 101)
    framing.error = http::check_ws_response(facts.headers, ws_key_);
  if (framing.error) {
    bad_reason_ = framing.error;
    fail(UpstreamError::bad_response);
    return false;
  }
  if (facts.status == 101) {
    switch_protocols(consumed);
    return false;
  }
  in_body_ = true;
  if (!framing.interim) reusable_ = framing.reusable;
  owner_->upstream_head(*parser_);  // copies what it needs from the views
  stream_->hold_input(false);
  stream_->consume(consumed);
  if (!owner_) return false;
  // No body whatever the head says (HEAD, 1xx, 204, 304): what follows is not forwarded.
  parser_->resume_after_head(framing.body == http::BodyFraming::none);
  return true;
}

// The owner copies the 101's head, then takes the stream (the bytes after the head stay
// in it); this connection is done. Nothing of it is touched after the delete: the call
// chain above (parse, on_readable, the stream's read callback) returns at once.
void UpstreamConn::switch_protocols(size_t head_bytes) {
  UpstreamOwner* o = owner_;
  o->upstream_head(*parser_);
  stream_->hold_input(false);
  stream_->consume(head_bytes);
  owner_ = nullptr;
  arm(0);
  give_parser();
  std::unique_ptr<Stream> s = std::move(stream_);
  s->set_handler(nullptr);
  s->read_stop();
  state_ = State::closing;
  delete this;
  o->upstream_switched(std::move(s));
}

// A decoded body piece (decode_): the parser calls this while it feeds. The owner may
// have let go in an earlier piece of the same feed.
void UpstreamConn::on_body_piece(void* self, const char* data, size_t len) {
  auto* u = static_cast<UpstreamConn*>(self);
  if (u->owner_ && u->in_body_ && len > 0) u->owner_->upstream_body(data, len);
}

void UpstreamConn::parse() {
  while (owner_ && !paused_) {
    std::string_view in = stream_->input();
    if (in.empty() && !in_body_) return;
    if (!in_body_) stream_->hold_input(true);  // header views point into the buffer
    if (!parser_) {
      parser_ = worker_.response_parsers().take(http::MessageParser::Kind::response, 0);
      parser_->reset(worker_.buffers().buffer_bytes());
      if (decode_) parser_->set_body_sink(&UpstreamConn::on_body_piece, this);
    }
    http::ParseResult r = parser_->feed(in.data(), in.size());
    switch (r.status) {
      case http::ParseStatus::head:
        if (!on_head(r.consumed)) return;
        break;
      case http::ParseStatus::need_more:
        if (!in_body_ && stream_->input_full()) {  // a response head larger than a buffer
          bad_reason_ = "response head larger than a buffer";
          fail(UpstreamError::bad_response);
          return;
        }
        if (in_body_ && r.consumed > 0 && !decode_) owner_->upstream_body(in.data(), r.consumed);
        stream_->consume(r.consumed);
        if (owner_) owner_->upstream_read_end();
        return;
      case http::ParseStatus::done: {
        if (r.consumed > 0 && !decode_) owner_->upstream_body(in.data(), r.consumed);
        if (!owner_) return;
        stream_->consume(r.consumed);
        int status = parser_->status_code();
        if (status >= 100 && status < 200 && status != 101) {
          // An interim response (100 Continue, 103): the final one follows.
          parser_->resume_after_message();
          in_body_ = false;
          stream_->compact_input();
          break;
        }
        // Bytes after a whole response (a 204's "body") are never the next response.
        bool reusable = reusable_ && parser_->keep_alive() && !stream_->has_input();
        arm(0);
        UpstreamOwner* o = owner_;
        o->upstream_read_end();
        if (!owner_) return;  // the client went away while we wrote to it
        o->upstream_done(reusable);
        return;
      }
      case http::ParseStatus::upgrade:
        // Protocol switches are not proxied on this path.
        bad_reason_ = "unexpected protocol switch";
        fail(UpstreamError::bad_response);
        return;
      case http::ParseStatus::error:
        bad_reason_ = parser_->error_reason();
        fail(UpstreamError::bad_response);
        return;
    }
  }
}

}  // namespace lb::net
