#pragma once
// One keep-alive connection from a worker to a backend. It parses responses and hands
// their parts to its owner (the client connection it serves) through UpstreamOwner; it
// returns to the worker's idle pool when the owner releases it reusable. Memory is freed
// only in the close callback (libuv rule); the owner is detached before that.
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string_view>

#include "lb/core/backend_ref.h"
#include "lb/http/message_parser.h"
#include "lb/net/backend_stats.h"
#include "lb/net/deadlines.h"
#include "lb/net/stream.h"

namespace lb::net {

class Worker;
class TlsStream;
struct RuntimeBackend;

enum class UpstreamError : uint8_t {
  connect_failed,  // refused, unreachable: the backend is not there
  connect_timeout,
  response_timeout,
  closed_early,  // closed before any response byte: a stale keep-alive, retryable
  reset,         // closed or reset mid-response
  bad_response,  // not HTTP
  // TLS to the backend failed: handshake, certificate verification (wrong CA, wrong
  // name) or a bad record before any answer. The backend was reached, but not trusted.
  tls,
  // corral itself is out of file descriptors (EMFILE/ENFILE making the socket): the
  // backend was never asked, so this is never the backend's failure.
  fd_exhausted,
};
const char* upstream_error_name(UpstreamError e);

class UpstreamOwner {
 public:
  virtual void upstream_connected() = 0;
  virtual void upstream_head(const http::MessageParser& response) = 0;
  virtual void upstream_body(const char* data, size_t len) = 0;
  // The response ended. reusable: the connection may carry another request.
  virtual void upstream_done(bool reusable) = 0;
  virtual void upstream_failed(UpstreamError error) = 0;
  // Everything read so far has been handed over (flush a coalesced head).
  virtual void upstream_read_end() = 0;
  // The backend switched protocols (a WebSocket's 101, already passed to upstream_head):
  // the connection's stream, with any bytes read after the 101, is the owner's now; the
  // UpstreamConn is gone.
  virtual void upstream_switched(std::unique_ptr<Stream> stream) = 0;
  // The request bytes queued to the backend are all written.
  virtual void upstream_drained() = 0;

 protected:
  ~UpstreamOwner() = default;
};

class UpstreamConn final : public StreamHandler {
 public:
  // A connection to `backend` (TLS when the backend says so).
  UpstreamConn(Worker& worker, const RuntimeBackend& backend);
  // Counted open (BackendShard::upstream_open) from construction to here.
  ~UpstreamConn();

  // Starts a connection; the owner hears upstream_connected or upstream_failed.
  void connect(const sockaddr* addr, UpstreamOwner* owner, uint64_t connect_ms);
  // Takes an idle pooled connection for a new exchange.
  void bind(UpstreamOwner* owner);
  bool send(std::string_view a, std::string_view b = {}, std::string_view c = {}) {
    return stream_->write(a, b, c);
  }
  bool send(const std::string_view* parts, size_t n) { return stream_->write(parts, n); }
  size_t pending() const { return stream_->pending(); }
  // A request head is going out: parse the response to it. head_request: no body;
  // ws_key: the Sec-WebSocket-Key of a WebSocket handshake (else a 101 is refused), which
  // the 101's Sec-WebSocket-Accept must answer; it must outlive the exchange. decode: the
  // body goes to the owner decoded (chunk framing removed, through the parser's body
  // sink) rather than as raw wire bytes: a flight's waiters each frame their own copy.
  void expect_response(bool head_request, uint64_t response_ms, std::string_view ws_key = {},
                       bool decode = false);
  // The whole request is out: from now the backend has response_ms to answer (a slow
  // upload is the client's time, not the backend's).
  void start_response_timer();
  void pause_reading();
  void resume_reading();
  // The owner is done: back to the idle pool when reusable, else closed.
  void release(bool reusable);
  // Closes now, detaching the owner (no more callbacks).
  void abort();

  BackendRef ref() const { return ref_; }
  bool reused() const { return reused_; }
  bool got_response_bytes() const { return got_bytes_; }
  // For bad_response: what was wrong with it (a static string).
  const char* bad_reason() const { return bad_reason_; }
  // For tls: OpenSSL's reasons and the verification result.
  std::string tls_error() const;
  // The backend stopped taking the request's bytes (it refused the request, e.g. an upload
  // it will not read): the request never reached it whole.
  bool send_failed() const { return stream_->write_failed(); }

 private:
  enum class State : uint8_t { connecting, active, idle, closing };
  static void on_deadline(void* self);
  // StreamHandler
  void on_readable(Stream& s) override;
  void on_eof(Stream& s) override;
  void on_stream_error(Stream& s, int error) override;
  void on_drained(Stream& s) override;
  void on_closed(Stream& s) override;
  void on_connected(Stream& s, int status) override;

  void fail(UpstreamError e);
  void parse();
  // A response head arrived: refuse it (false, failed) or pass it on and resume parsing.
  bool on_head(size_t consumed);
  void switch_protocols(size_t head_bytes);
  void close();
  void arm(uint64_t ms);
  void give_parser();
  static void on_body_piece(void* self, const char* data, size_t len);

  Worker& worker_;
  BackendRef ref_;
  std::shared_ptr<BackendStats> stats_;  // the backend's counters (upstream_open)
  std::unique_ptr<Stream> stream_;       // TcpStream, TlsStream over one, or a test double
  TlsStream* tls_ = nullptr;             // stream_, when the backend speaks TLS
  std::string tls_name_;                 // the name its certificate was verified for
  Deadlines::Entry deadline_;
  http::MessageParser* parser_ = nullptr;  // from the worker's free list, per exchange
  UpstreamOwner* owner_ = nullptr;
  State state_ = State::connecting;
  uint64_t response_ms_ = 0;
  const char* bad_reason_ = "";
  bool head_request_ = false;
  std::string_view ws_key_;
  bool reusable_ = true;  // the response's framing lets the connection carry another
  bool got_bytes_ = false;
  bool reused_ = false;
  bool paused_ = false;
  bool in_body_ = false;
  bool in_pool_ = false;
  bool decode_ = false;  // body pieces decoded (expect_response)

  friend class UpstreamPool;
};

}  // namespace lb::net
