#include "lb/net/http_server.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <unordered_map>
#include <utility>

#include "lb/http/message_parser.h"
#include "lb/net/socket_address.h"

namespace lb::net {

namespace {

// Bytes a read may fill at least; also the slack kept above the head cap so that a head that
// is still arriving never needs the buffer to move (its header views point into it).
constexpr size_t kReadChunk = 16 * 1024;

const char* reason_phrase(int status) {
  static constexpr std::pair<int, const char*> kReasons[] = {
      {100, "Continue"},
      {101, "Switching Protocols"},
      {200, "OK"},
      {201, "Created"},
      {202, "Accepted"},
      {204, "No Content"},
      {206, "Partial Content"},
      {301, "Moved Permanently"},
      {302, "Found"},
      {304, "Not Modified"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {402, "Payment Required"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {406, "Not Acceptable"},
      {408, "Request Timeout"},
      {411, "Length Required"},
      {413, "Content Too Large"},
      {414, "URI Too Long"},
      {418, "I'm a teapot"},
      {429, "Too Many Requests"},
      {431, "Request Header Fields Too Large"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {502, "Bad Gateway"},
      {503, "Service Unavailable"},
      {504, "Gateway Timeout"},
  };
  for (const auto& [code, text] : kReasons)
    if (code == status) return text;
  return "Unknown";
}

// A JSON string literal body for error responses; reasons come from llhttp or from us, but
// escape anyway so that the body is always valid JSON.
std::string json_error(std::string_view reason) {
  std::string out = "{\"error\":\"";
  for (char c : reason) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  out += "\"}";
  return out;
}

}  // namespace

class ServerConnection;

// State shared by the listener and its connections. It outlives HttpServer when handles are
// still closing: the listener holds a self-reference until its close callback, and every
// connection holds one until its own.
struct HttpServerCore : std::enable_shared_from_this<HttpServerCore> {
  uv_loop_t* loop = nullptr;
  Handler handler;
  ServerOptions options;
  uv_tcp_t listener{};
  bool listener_open = false;  // initialised and its close callback has not run yet
  bool listener_closing = false;
  bool closing = false;
  std::shared_ptr<HttpServerCore> self;  // kept while the listener handle is open
  std::unordered_map<ServerConnection*, std::shared_ptr<ServerConnection>> conns;
  std::vector<std::function<void()>> done;

  void close(std::function<void()> cb);
  // Runs the done callbacks once close() was asked and every handle has closed.
  void maybe_done();
  static void on_connection(uv_stream_t* server, int status);
  static void on_listener_closed(uv_handle_t* h);
};

// One accepted client connection. Requests are parsed and answered strictly one at a time:
// while a response is pending, further (pipelined) bytes stay in the buffer unparsed.
class ServerConnection : public std::enable_shared_from_this<ServerConnection> {
 public:
  explicit ServerConnection(std::shared_ptr<HttpServerCore> core)
      : core_(std::move(core)),
        parser_(http::MessageParser::Kind::request, core_->options.max_header_bytes) {}

  // Accepts from the listener and starts reading; closes on failure.
  void start(uv_stream_t* server);
  // Closes both handles now; `reset` sends an RST instead of a FIN.
  void close_now(bool reset);

  bool accepts(uint64_t seq) const { return !closing_ && pending_ && seq == seq_; }
  void respond(uint64_t seq, int status, std::string_view content_type, std::string_view body,
               const Responder::Headers& extra);
  void begin(uint64_t seq, int status, std::string_view content_type,
             const Responder::Headers& extra);
  void chunk(uint64_t seq, std::string_view data);
  void end(uint64_t seq);
  void abort(uint64_t seq);

 private:
  struct Span {
    size_t off = 0;
    size_t len = 0;
  };
  struct WriteReq {
    uv_write_t req;
    std::string data;
  };
  enum class Out : uint8_t { idle, streaming };

  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_shutdown(uv_shutdown_t* req, int status);
  static void on_idle(uv_timer_t* t);
  static void on_closed(uv_handle_t* h);

  // Parses buffered bytes and dispatches complete requests until one is pending.
  void process();
  // Snapshots the head as offsets (so the buffer may grow for the body) and checks limits.
  bool on_head();
  void dispatch();
  // Answers a parse or limit error and closes once it is written.
  void reject(int status, std::string_view reason);
  void send_whole(int status, std::string_view content_type, std::string_view body,
                  const Responder::Headers& extra);
  std::string head_lines(int status, std::string_view content_type,
                         const Responder::Headers& extra) const;
  void finish_response();
  void finish_and_close();
  void start_shutdown();
  void write(std::string data);
  void prepare_read_space();
  void compact();
  void update_reading();
  void restart_idle();
  size_t read_limit() const {
    return core_->options.max_header_bytes + core_->options.max_body_bytes + kReadChunk;
  }
  Span span_of(std::string_view v) const {
    return {static_cast<size_t>(v.data() - buf_.data()), v.size()};
  }
  std::string_view view(Span s) const { return {buf_.data() + s.off, s.len}; }

  std::shared_ptr<HttpServerCore> core_;
  uv_tcp_t tcp_{};
  uv_timer_t idle_{};
  int handles_open_ = 0;
  http::MessageParser parser_;
  std::string peer_;

  // Read buffer: [begin_, parsed_) is the current message fed to the parser so far,
  // [parsed_, end_) bytes not fed yet, [end_, size) free space.
  std::vector<char> buf_;
  size_t begin_ = 0;
  size_t parsed_ = 0;
  size_t end_ = 0;

  // The current request's head, as offsets into buf_.
  std::string_view method_;
  Span target_;
  std::vector<std::pair<Span, Span>> header_spans_;
  std::vector<HeaderView> headers_;
  size_t body_begin_ = 0;

  uint64_t seq_ = 0;
  bool pending_ = false;  // dispatched and not fully answered
  Out out_ = Out::idle;
  bool keep_alive_ = true;
  bool head_request_ = false;
  bool http10_ = false;
  bool chunked_out_ = false;

  bool reading_ = false;
  bool peer_eof_ = false;
  bool in_process_ = false;
  bool close_after_write_ = false;
  bool shutting_ = false;
  bool closing_ = false;
  size_t writes_pending_ = 0;
};

// ---- HttpServerCore ----

void HttpServerCore::close(std::function<void()> cb) {
  if (cb) done.push_back(std::move(cb));
  closing = true;
  if (listener_open && !listener_closing) {
    listener_closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&listener), &HttpServerCore::on_listener_closed);
  }
  for (auto& [raw, conn] : conns) conn->close_now(false);
  maybe_done();
}

void HttpServerCore::maybe_done() {
  if (!closing || listener_open || !conns.empty() || done.empty()) return;
  std::vector<std::function<void()>> callbacks;
  callbacks.swap(done);
  for (auto& cb : callbacks) cb();
}

void HttpServerCore::on_connection(uv_stream_t* server, int status) {
  auto* core = static_cast<HttpServerCore*>(server->data);
  if (status < 0 || core->closing) return;
  auto conn = std::make_shared<ServerConnection>(core->shared_from_this());
  core->conns.emplace(conn.get(), conn);
  conn->start(server);
}

void HttpServerCore::on_listener_closed(uv_handle_t* h) {
  auto* core = static_cast<HttpServerCore*>(h->data);
  std::shared_ptr<HttpServerCore> keep = std::move(core->self);
  core->listener_open = false;
  core->maybe_done();
}

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
  restart_idle();
  update_reading();
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

void ServerConnection::restart_idle() {
  if (closing_ || core_->options.idle_timeout_ms == 0) return;
  uv_timer_start(&idle_, &ServerConnection::on_idle, core_->options.idle_timeout_ms, 0);
}

void ServerConnection::on_idle(uv_timer_t* t) {
  auto* self = static_cast<ServerConnection*>(t->data);
  // A handler still working on a response is not the client's idleness.
  if (self->pending_) {
    self->restart_idle();
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
  self->prepare_read_space();
  buf->base = self->buf_.data() + self->end_;
  buf->len = self->buf_.size() - self->end_;
}

void ServerConnection::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
  auto* self = static_cast<ServerConnection*>(s->data);
  if (self->closing_) return;
  if (nread > 0) {
    self->end_ += static_cast<size_t>(nread);
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
  while (!closing_ && !close_after_write_ && !pending_) {
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
  // The client half-closed and every complete request has been answered.
  if (peer_eof_ && !pending_ && !close_after_write_) finish_and_close();
  update_reading();
}

bool ServerConnection::on_head() {
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
  // After an upgrade request the parser would treat the rest as another protocol.
  if (parser_.upgrade() || core_->closing) keep_alive_ = false;
  parser_.resume_after_message();
  begin_ = parsed_;  // the request's bytes stay in place until the next compaction
  ++seq_;
  pending_ = true;
  out_ = Out::idle;
  core_->handler(req, Responder(weak_from_this(), seq_));
}

// ---- writing ----

void ServerConnection::write(std::string data) {
  if (closing_ || data.empty()) return;
  auto* w = new WriteReq{{}, std::move(data)};
  w->req.data = this;
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1,
               &ServerConnection::on_write) != 0) {
    delete w;
    close_now(false);
    return;
  }
  ++writes_pending_;
}

void ServerConnection::on_write(uv_write_t* req, int status) {
  auto* w = reinterpret_cast<WriteReq*>(req);
  auto* self = static_cast<ServerConnection*>(req->data);
  delete w;
  --self->writes_pending_;
  if (status < 0) {
    self->close_now(false);
    return;
  }
  if (self->close_after_write_ && self->writes_pending_ == 0) self->start_shutdown();
}

void ServerConnection::finish_and_close() {
  close_after_write_ = true;
  pending_ = false;
  if (writes_pending_ == 0) start_shutdown();
}

void ServerConnection::start_shutdown() {
  if (shutting_ || closing_) return;
  shutting_ = true;
  auto* req = new uv_shutdown_t{};
  req->data = this;
  if (uv_shutdown(req, reinterpret_cast<uv_stream_t*>(&tcp_), &ServerConnection::on_shutdown) !=
      0) {
    delete req;
    close_now(false);
  }
}

void ServerConnection::on_shutdown(uv_shutdown_t* req, int) {
  auto* self = static_cast<ServerConnection*>(req->data);
  delete req;
  self->close_now(false);
}

std::string ServerConnection::head_lines(int status, std::string_view content_type,
                                         const Responder::Headers& extra) const {
  std::string h = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n";
  if (!content_type.empty()) {
    h += "Content-Type: ";
    h += content_type;
    h += "\r\n";
  }
  for (const auto& [name, value] : extra) h += name + ": " + value + "\r\n";
  return h;
}

void ServerConnection::send_whole(int status, std::string_view content_type, std::string_view body,
                                  const Responder::Headers& extra) {
  // RFC 9110 §6.4.1: 1xx, 204 and 304 carry no content.
  const bool bodiless = status < 200 || status == 204 || status == 304;
  std::string out = head_lines(status, bodiless ? std::string_view() : content_type, extra);
  if (!bodiless) out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out += keep_alive_ ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  if (!bodiless && !head_request_) out += body;
  write(std::move(out));
}

void ServerConnection::reject(int status, std::string_view reason) {
  keep_alive_ = false;
  head_request_ = false;
  send_whole(status, "application/json", json_error(reason), {});
  finish_and_close();
}

void ServerConnection::finish_response() {
  pending_ = false;
  out_ = Out::idle;
  if (closing_) return;
  restart_idle();
  if (!keep_alive_) {
    finish_and_close();
    return;
  }
  // A synchronous answer returns into process(), whose loop picks up the next request.
  if (!in_process_) process();
}

// ---- responding (via Responder) ----

void ServerConnection::respond(uint64_t seq, int status, std::string_view content_type,
                               std::string_view body, const Responder::Headers& extra) {
  if (!accepts(seq) || out_ != Out::idle) return;
  send_whole(status, content_type, body, extra);
  finish_response();
}

void ServerConnection::begin(uint64_t seq, int status, std::string_view content_type,
                             const Responder::Headers& extra) {
  if (!accepts(seq) || out_ != Out::idle) return;
  out_ = Out::streaming;
  std::string out = head_lines(status, content_type, extra);
  if (http10_) {
    // HTTP/1.0 has no chunked encoding: the end of the body is the end of the connection.
    chunked_out_ = false;
    keep_alive_ = false;
  } else {
    chunked_out_ = true;
    out += "Transfer-Encoding: chunked\r\n";
  }
  out += keep_alive_ ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  write(std::move(out));
}

void ServerConnection::chunk(uint64_t seq, std::string_view data) {
  // An empty chunk would end the stream early; HEAD sends no body at all.
  if (!accepts(seq) || out_ != Out::streaming || data.empty() || head_request_) return;
  if (!chunked_out_) {
    write(std::string(data));
    return;
  }
  char size[24];
  int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  std::string out;
  out.reserve(static_cast<size_t>(n) + data.size() + 2);
  out.append(size, static_cast<size_t>(n));
  out.append(data);
  out.append("\r\n");
  write(std::move(out));
}

void ServerConnection::end(uint64_t seq) {
  if (!accepts(seq) || out_ != Out::streaming) return;
  if (chunked_out_ && !head_request_) write("0\r\n\r\n");
  finish_response();
}

void ServerConnection::abort(uint64_t seq) {
  if (!accepts(seq)) return;
  close_now(true);
}

// ---- Responder ----

Responder::Responder(std::weak_ptr<ServerConnection> conn, uint64_t seq)
    : conn_(std::move(conn)), seq_(seq) {}

void Responder::respond(int status, std::string_view content_type, std::string_view body,
                        const Headers& extra) {
  if (auto c = conn_.lock()) c->respond(seq_, status, content_type, body, extra);
}

void Responder::begin(int status, std::string_view content_type, const Headers& extra) {
  if (auto c = conn_.lock()) c->begin(seq_, status, content_type, extra);
}

void Responder::chunk(std::string_view data) {
  if (auto c = conn_.lock()) c->chunk(seq_, data);
}

void Responder::end() {
  if (auto c = conn_.lock()) c->end(seq_);
}

void Responder::abort() {
  if (auto c = conn_.lock()) c->abort(seq_);
}

bool Responder::alive() const {
  auto c = conn_.lock();
  return c && c->accepts(seq_);
}

// ---- HttpServer ----

struct HttpServer::Impl {
  std::shared_ptr<HttpServerCore> core;
};

HttpServer::HttpServer(uv_loop_t* loop, Handler handler, ServerOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->core = std::make_shared<HttpServerCore>();
  impl_->core->loop = loop;
  impl_->core->handler = std::move(handler);
  impl_->core->options = options;
}

HttpServer::~HttpServer() {
  if (impl_ && impl_->core) impl_->core->close({});
}

int HttpServer::listen(const std::string& host, uint16_t port) {
  HttpServerCore& c = *impl_->core;
  if (c.listener_open || c.closing) return UV_EINVAL;
  sockaddr_storage ss;
  int r = ip_sockaddr(host, port, ss) ? 0 : UV_EINVAL;
  if (r != 0) return r;
  r = uv_tcp_init(c.loop, &c.listener);
  if (r != 0) return r;
  c.listener.data = &c;
  c.listener_open = true;
  c.self = c.shared_from_this();
  r = uv_tcp_bind(&c.listener, reinterpret_cast<const sockaddr*>(&ss), 0);
  if (r == 0)
    r = uv_listen(reinterpret_cast<uv_stream_t*>(&c.listener), SOMAXCONN,
                  &HttpServerCore::on_connection);
  if (r != 0) {
    c.listener_closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&c.listener), &HttpServerCore::on_listener_closed);
  }
  return r;
}

uint16_t HttpServer::port() const {
  const HttpServerCore& c = *impl_->core;
  if (!c.listener_open || c.listener_closing) return 0;
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getsockname(&c.listener, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  return port_of(ss);
}

void HttpServer::close(std::function<void()> done) { impl_->core->close(std::move(done)); }

}  // namespace lb::net
