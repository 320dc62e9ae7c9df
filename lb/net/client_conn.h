#pragma once
// One client connection (the socket and its phases). Per request: parse the head (views
// into the read buffer), route, place the user (lb/core/balancer), rewrite the head, then
// stream the body raw to the backend and the response raw back, each direction with
// backpressure. Requests on one connection are served one at a time, so pipelined
// requests are answered in order. Between requests the connection holds no buffer and no
// parser (both come from the worker's free lists while a request is under way), so an idle
// keep-alive connection costs the socket handle and a few words.
//
// client_conn.cpp: reading, parsing, local answers, keep-alive, lingering close.
// client_exchange.cpp: routing, placement, and the exchange with one upstream (send,
// failover and retries by lb/core/retry_policy, passive health events).
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

#include "lb/core/balancer.h"
#include "lb/core/retry_policy.h"
#include "lb/core/session_key.h"
#include "lb/http/message_parser.h"
#include "lb/net/deadlines.h"
#include "lb/net/runtime.h"
#include "lb/net/stream.h"
#include "lb/net/upstream_conn.h"

namespace lb::net {

class Worker;

// What a request in progress needs beyond the connection itself; pooled per worker.
struct RequestState {
  RequestState() : parser(http::MessageParser::Kind::request, 0) {}
  http::MessageParser parser;
  std::string req_head;   // rewritten head for the backend
  std::string resp_head;  // rewritten head for the client, or a local reply
  std::string scratch;
};

class ClientConn final : public StreamHandler, public UpstreamOwner {
 public:
  // Accepts one pending connection from `server` for listener `listener`.
  static void accept(Worker& worker, uv_stream_t* server, size_t listener);
  // Serves a connection over any stream (the in-memory double in tests); ip: the peer's
  // address bytes (4 or 16, or none).
  static ClientConn* open(Worker& worker, std::unique_ptr<Stream> stream, size_t listener,
                          const uint8_t* ip = nullptr, size_t ip_len = 0);

  // Graceful stop: close now if between requests, else after the current response.
  void stop_gracefully();
  // Forced stop at the deadline.
  void close();
  // Reading stopped for want of buffers: try again.

  size_t track_index = 0;  // position in the worker's connection list

 private:
  enum class Phase : uint8_t {
    head,        // reading a request head
    connecting,  // waiting for an upstream connection
    body,        // streaming the request body upstream
    discard,     // reading past the body of a request answered locally
    waiting,     // request sent; waiting for the response to finish
    lingering,   // response sent, write side shut; draining input before close
  };

  ClientConn(Worker& worker, std::unique_ptr<Stream> stream, size_t listener);
  void start();
  ~ClientConn();

  // StreamHandler
  void on_readable(Stream& s) override;
  void on_eof(Stream& s) override;
  void on_stream_error(Stream& s, int error) override;
  void on_drained(Stream& s) override;
  void on_closed(Stream& s) override;
  static void on_deadline(void* self);

  // client_conn.cpp
  void process();
  bool process_body();
  void update_reading();
  void arm_timer();
  void reply_local(int status, const char* reason, bool close_after,
                   std::string_view extra_headers = {});
  void next_request();
  void end_response_and_close();
  void linger();
  RequestState& req();
  void give_request_state();
  const char* ip_text();

  // client_exchange.cpp
  void on_request_head();
  struct HeadCheck {
    int status = 0;  // 0: fine
    const char* reason = nullptr;
  };
  HeadCheck check_head(std::string_view method) const;
  // count_move: a move off a pinned backend is a remap (not so a 503 retried at once).
  Decision place_user(const RuntimePool& pool, BackendRef exclude, bool count_move = true);
  void start_exchange(const RuntimePool& pool, size_t backend);
  void send_request_head();
  void forward_body(const char* data, size_t len);
  static void on_chunk_data(void* self, const char* data, size_t len);
  void finish_exchange();
  RetryFacts retry_facts() const;
  // Sends the request (not yet answered, its bytes still ours) to the next backend of its
  // pool other than `failed`, re-pinning the user there; false if none can take it.
  bool move_request(BackendRef failed, bool count_move);
  void fail_exchange(int status, const char* reason);
  void record_move(MoveReason why);

  // UpstreamOwner
  void upstream_connected() override;
  void upstream_head(const http::MessageParser& response) override;
  void upstream_body(const char* data, size_t len) override;
  void upstream_done(bool reusable) override;
  void upstream_failed(UpstreamError error) override;
  void upstream_read_end() override;
  void upstream_drained() override;

  Worker& worker_;
  std::shared_ptr<const Runtime> rt_;  // the snapshot this exchange runs on
  std::shared_ptr<ListenerStats> listener_stats_;
  std::unique_ptr<Stream> stream_;  // TcpStream, or a test double
  Deadlines::Entry deadline_;
  RequestState* rs_ = nullptr;  // while a request is under way

  // The exchange in progress.
  UpstreamConn* up_ = nullptr;
  const RuntimePool* pool_ = nullptr;
  const RuntimeBackend* backend_ = nullptr;
  SessionKey pin_key_;
  uint64_t hash_ = 0;  // the user's selector key
  uint64_t sent_at_us_ = 0;
  uint64_t body_bytes_ = 0;  // decoded chunked body so far, or discarded bytes
  uint32_t listener_;
  uint8_t ip_[16]{};
  uint8_t ip_len_ = 0;
  uint8_t stale_retries_ = 0;
  uint8_t failovers_ = 0;
  uint8_t retries_503_ = 0;
  Phase phase_ = Phase::head;
  bool pinned_ = false;
  bool fresh_user_ = false;  // placed by this request (new or moved): no state there yet
  bool swallow_ = false;     // dropping a 503 that a retry replaces
  bool reframe_ = false;     // chunked request: we write the chunk framing
  bool body_over_limit_ = false;
  bool head_partial_ = false;  // some bytes of the current head were parsed
  bool req_done_ = false;      // the whole request went upstream
  bool resp_started_ = false;  // a response head went to the client
  bool resp_head_pending_ = false;
  bool req_head_pending_ = false;
  bool head_request_ = false;
  bool http10_ = false;
  bool keep_alive_ = true;
  bool close_after_ = false;  // close once the current response is written
  bool client_eof_ = false;
  bool closing_ = false;
  bool stop_ = false;
};

}  // namespace lb::net
