#pragma once
// HttpServer's internals, shared by its .cpp files and by nothing else: the state of one
// server (listener and its connections: http_server.cpp) and one accepted connection
// (reading and parsing: http_server_conn.cpp; answering: http_server_reply.cpp).
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lb/http/message_parser.h"
#include "lb/net/http_server.h"

namespace lb::net {

class ServerConnection;

// State shared by the listener and its connections. It outlives HttpServer when handles are
// still closing: the listener holds a self-reference until its close callback, and every
// connection holds one until its own.
struct HttpServerCore : std::enable_shared_from_this<HttpServerCore> {
  uv_loop_t* loop = nullptr;
  Handler handler;
  Handler upgrade_handler;  // empty: upgrade requests are plain requests
  ServerOptions options;
  // Reads of upgraded connections land here and are handed on at once: one loop thread,
  // so one buffer serves them all, and an idle upgraded connection holds none.
  std::vector<char> raw_read_buf;
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
  // Answers `status` at once without reading a request, then closes (over the cap).
  void refuse(int status, std::string_view reason);

  bool accepts(uint64_t seq) const { return !closing_ && pending_ && seq == seq_; }
  void respond(uint64_t seq, int status, std::string_view content_type, std::string_view body,
               const Responder::Headers& extra);
  void begin(uint64_t seq, int status, std::string_view content_type,
             const Responder::Headers& extra);
  void chunk(uint64_t seq, std::string_view data);
  void end(uint64_t seq);
  void abort(uint64_t seq);

  // Upgraded connections (see Responder::switch_protocols, RawConnection).
  bool switch_protocols(uint64_t seq, std::string head, RawHandlers handlers);
  bool raw_alive() const { return raw_ && !closing_ && !close_after_write_; }
  void raw_write(std::string data);
  void raw_close();
  size_t write_queue_bytes() const;

 private:
  // Bytes a read may fill at least; also the slack kept above the head cap so that a head that
  // is still arriving never needs the buffer to move (its header views point into it).
  static constexpr size_t kReadChunk = 16 * 1024;

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

  // Hands the bytes after an upgrade request's head to the raw handler; frees the HTTP
  // buffers.
  void deliver_leftover();
  void on_raw_read(ssize_t nread, const uv_buf_t* buf);
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

  // When the head being awaited started (accept, or its first byte), loop ms; 0 = no
  // head is being awaited (a request is pending, or keep-alive idle with no bytes yet).
  uint64_t head_since_ms_ = 0;

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
  size_t write_bytes_pending_ = 0;

  // Taken over after an upgrade: bytes go to raw_ handlers, nothing is parsed.
  bool raw_ = false;
  RawHandlers raw_handlers_;
};

}  // namespace lb::net
