#pragma once
// One client connection and the exchange it is in. Per request: parse the head (views
// into the read buffer), extract the session key, route, pick the pinned or a new
// backend, rewrite the head, then stream the body raw to the backend and the response raw
// back, each direction with backpressure. Requests on one connection are served one at
// a time, so pipelined requests are answered in order.
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lb/core/session_key.h"
#include "lb/http/message_parser.h"
#include "lb/net/runtime.h"
#include "lb/net/upstream_conn.h"
#include "lb/net/write_queue.h"

namespace lb::net {

class Worker;

class ClientConn final : public UpstreamOwner {
 public:
  // Accepts one pending connection from `server` for listener `listener`.
  static void accept(Worker& worker, uv_stream_t* server, size_t listener);

  // Graceful stop: close now if between requests, else after the current response.
  void stop_gracefully();
  // Forced stop at the deadline.
  void close();

 private:
  enum class Phase : uint8_t {
    head,        // reading a request head
    connecting,  // waiting for an upstream connection
    body,        // streaming the request body upstream
    discard,     // reading past the body of a request answered locally
    waiting,     // request sent; waiting for the response to finish
    lingering,   // response sent, write side shut; draining input before close
  };

  ClientConn(Worker& worker, size_t listener);
  ~ClientConn();

  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void on_timer(uv_timer_t* t);
  static void on_close(uv_handle_t* h);
  static void on_shutdown(uv_shutdown_t* req, int status);
  static void on_drained(void* self);
  static void on_write_error(void* self, int status);

  void process();
  void on_request_head();
  static constexpr BackendRef kNoBackend = SessionTable::kMaxBackends;
  static bool usable(const RuntimeBackend& b);
  // Index of the backend for a new or moved user (pool.backends.size() if none).
  size_t pick_backend(const RuntimePool& pool, BackendRef exclude, uint64_t min_slot);
  void start_exchange(const RuntimePool& pool, size_t backend);
  void send_request_head();
  void forward_body(const char* data, size_t len);
  static void on_chunk_data(void* self, const char* data, size_t len);
  struct HeadCheck {
    int status = 0;  // 0: fine
    const char* reason = nullptr;
  };
  HeadCheck check_head(std::string_view method) const;
  void finish_exchange();
  void retry_new_user();
  // Sends the request (not yet answered, its bytes still ours) to the next backend of its
  // pool other than `failed`, re-pinning the user there; false if none can take it.
  bool move_request(BackendRef failed, uint64_t min_slot);
  void next_request();
  void reply_local(int status, const char* reason, bool close_after,
                   std::string_view extra_headers = {});
  void fail_exchange(int status, const char* reason);
  void end_response_and_close();
  void update_reading();
  void arm_timer();
  void linger();

  // UpstreamOwner
  void upstream_connected() override;
  void upstream_head(const http::MessageParser& response) override;
  void upstream_body(const char* data, size_t len) override;
  void upstream_done(bool reusable) override;
  void upstream_failed(UpstreamError error) override;
  void upstream_read_end() override;
  void upstream_drained() override;

  Worker& worker_;
  size_t listener_;
  std::shared_ptr<const Runtime> rt_;  // the snapshot this exchange runs on
  std::shared_ptr<ListenerStats> listener_stats_;
  uv_tcp_t tcp_{};
  uv_timer_t timer_{};
  uv_shutdown_t shutdown_req_{};
  WriteQueue out_;
  http::MessageParser parser_;
  std::vector<char> in_;
  size_t start_ = 0, end_ = 0;
  std::string req_head_;   // rewritten head for the backend
  std::string resp_head_;  // rewritten head for the client, or a local reply
  std::string scratch_;

  uint8_t ip_[16]{};
  size_t ip_len_ = 0;
  char ip_text_[48] = {0};

  // The exchange in progress.
  UpstreamConn* up_ = nullptr;
  const RuntimePool* pool_ = nullptr;
  const RuntimeBackend* backend_ = nullptr;
  SessionKey pin_key_;
  uint64_t hash_ = 0;  // the user's selector key
  bool pinned_ = false;
  bool new_user_ = false;  // pinned by this very request: it has no state anywhere yet
  bool swallow_ = false;   // dropping a 503 that a new user's retry replaces
  bool retried_503_ = false;
  static constexpr int kMaxFailovers = 2;
  int failovers_ = 0;  // connect failures moved to another backend, this request
  uint64_t sent_at_us_ = 0;
  uint64_t discarded_ = 0;
  uint64_t body_bytes_ = 0;  // decoded chunked body so far
  bool reframe_ = false;     // chunked request: we write the chunk framing
  bool body_over_limit_ = false;
  Phase phase_ = Phase::head;
  bool head_partial_ = false;  // some bytes of the current head were parsed
  bool req_done_ = false;      // the whole request went upstream
  bool resp_started_ = false;  // a response head went to the client
  bool resp_head_pending_ = false;
  bool req_head_pending_ = false;
  bool head_request_ = false;
  bool http10_ = false;
  bool keep_alive_ = true;
  bool close_after_ = false;  // close once the current response is written
  bool retried_ = false;
  bool client_eof_ = false;
  bool reading_ = false;
  bool closing_ = false;
  bool stop_ = false;
  int open_handles_ = 0;
};

}  // namespace lb::net
