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
// client_deadlines.cpp: the one deadline entry (phase timeouts, body_timeout,
// send_timeout, the starved-read retry).
// client_request.cpp: routing and head rewriting, the request body to the exchange, the
// answer back to the client. The exchange with the upstream (placement, sending,
// failover and retries, passive health events) is lb/net/exchange.
#include <uv.h>

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "lb/core/cached_answer.h"
#include "lb/core/router.h"
#include "lb/http/message_parser.h"
#include "lb/net/access_log.h"
#include "lb/net/cache_fill.h"
#include "lb/net/deadlines.h"
#include "lb/net/exchange.h"
#include "lb/net/flight.h"
#include "lb/net/flight_fill.h"
#include "lb/net/runtime.h"
#include "lb/net/stream.h"

namespace lb::net {

class Worker;

// What a request in progress needs beyond the connection itself; pooled per worker.
struct RequestState {
  RequestState() : parser(http::MessageParser::Kind::request, 0) {}
  http::MessageParser parser;
  std::string req_head;   // rewritten head for the backend
  std::string resp_head;  // rewritten head for the client, or a local reply
  std::string scratch;
  Exchange exchange;
  // A WebSocket handshake's Sec-WebSocket-Key (validated: 24 base64 characters), copied
  // out of the head for the backend's 101 to be checked against; empty otherwise.
  char ws_key[24];
  uint8_t ws_key_len = 0;
  // The pool's remove_headers.response, for the answer's head (the snapshot is held).
  std::span<const std::string> remove_response;
  // The route's expose_backend header name (empty: off); a view into the snapshot.
  std::string_view expose_backend;
  // The routed request between placement and the head written for the backend: it may
  // wait for the shared store (Phase::placing). The views point into the read buffer
  // (held until the head is written), into `scratch` or `host_fields`, or into the
  // snapshot the connection holds, so they survive the wait.
  struct PendingHead {
    std::string_view method;
    std::string_view forward;  // RouteMatch::forward
    bool needs_slash = false;
    std::span<const HeaderView> headers;
    bool has_body = false;
    bool upgrade = false;
    bool websocket_route = false;  // [flights] never collapsed (flight_key.h)
    const RuntimePool* pool = nullptr;
    // The user's session key (extract_key), for a placement that starts later (a fill
    // flight's follower going solo).
    bool has_key = false;
    SessionKey key;
  } head;
  // The request's fields with Host set to an absolute-form target's authority (a copy of
  // the views, not of the bytes), when `head.headers` needs it. Allocated only for such a
  // (rare) request and freed when the state is pooled again: inline it would add ~3 KB
  // to every pooled state.
  using HostFields = std::array<HeaderView, http::MessageParser::kMaxHeaders + 1>;
  std::unique_ptr<HostFields> host_fields;
  // What the access log says of this request (lb/net/access_log), gathered while it runs
  // when the log is on; written when the request state is given back. Views point into
  // the connection's snapshot, which is only swapped at the next request's head.
  struct Access {
    bool active = false;
    int64_t unix_us = 0;    // wall clock at the end of the head
    uint64_t start_us = 0;  // monotonic, same moment
    char method[16];
    uint8_t method_len = 0;
    std::string_view route, pool, backend;
    int status = 0;
    uint64_t bytes_in = 0, bytes_out = 0;
    bool has_session = false;
    SessionKey session;
    bool pinned = false;     // `session` is the user's key in the pool's session table
    std::string_view cache;  // "hit", "miss" or empty (AccessRecord::cache)
  } access;

  // ---- issue 16: the response cache (lb/net/client_cache.cpp, lb/net/cache_fill.h) ----
  // A hit being written: the entry is held until its last byte is out, so an eviction
  // meanwhile frees nothing a client still reads; `hit_off` body bytes went out so far.
  std::shared_ptr<const CachedAnswer> hit;
  size_t hit_off = 0;
  // A plain miss's answer on its way into the cache (inactive otherwise).
  CacheFill fill;
  // The canonical request string of the lookup (cache_key.h); its capacity is reused, so
  // a lookup allocates nothing in steady state.
  std::string cache_canonical;
  // The lookup's judgement (try_cache), kept for placement: classifying again later could
  // meet a newer tip and call a request whose fill is under way uncacheable, putting it on
  // a stream flight whose bytes never reach its fill.
  struct Lookup {
    bool stream_ok = false;  // an uncacheable GET that may lead or join a stream flight
    CacheKey key;            // its canonical request's key (stream_ok only)
  } lookup;
  // ---- end issue 16 ----
};

// Makes a finished request's state fit for the free list and gives it back: every path
// that returns a RequestState (a connection's, a stream flight's adopted engine, a fill
// flight's engine) goes through here, so nothing of one request (an unfinished fill, a
// hit's entry, the lookup, absolute-form fields, access facts) reaches the next.
void recycle_request_state(Worker& worker, RequestState* rs);

class ClientConn final : public StreamHandler,
                         public ExchangeClient,
                         public FlightWaiter,
                         public FillWaiter {
 public:
  // Serves a connection over a stream (an accepted socket, or the in-memory double in
  // tests); ip: the peer's address bytes (4 or 16, or none).
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
    placing,     // the head is routed; its user's placement waits for the shared store
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
  void abandon_exchange();
  void process();
  bool process_body();
  void update_reading();
  // client_deadlines.cpp
  void arm_timer();
  void disarm_timer();
  void arm_starved_retry();
  void schedule();
  void watch_send();
  void note_output();
  void phase_expired(uint64_t now);
  void send_timed_out();
  void reply_local(int status, const char* reason, bool close_after,
                   std::string_view extra_headers = {});
  void next_request();
  void end_response_and_close();
  void linger();
  RequestState& req();
  void give_request_state();
  // access log: bytes handed to the client for this request, and the line itself.
  void note_sent(size_t n) {
    if (rs_) rs_->access.bytes_out += n;
  }
  void begin_access();
  void write_access();
  // The record of the request under way (views valid until the state is given back).
  AccessRecord access_record() const;
  const char* ip_text();

  // client_request.cpp
  void on_request_head();
  // The routed request (rs_->head) placed and started: exchange.begin, place (may park:
  // Phase::placing), finish_head.
  void place_request();
  // The second half of a request head, once its user is placed: corral's 503 when no
  // backend can take it, the pool's quota, the head for the backend, the exchange's start.
  void finish_head(const Decision& d);
  struct HeadCheck {
    int status = 0;  // 0: fine
    const char* reason = nullptr;
  };
  HeadCheck check_head(std::string_view method) const;
  // A request that asks to switch protocols: refused (false, answered) unless it is a
  // valid WebSocket handshake on a websocket: true route.
  bool accept_upgrade(const RouteSpec& route, std::span<const HeaderView> headers, bool has_body);
  // client_rate_limit: true to go on; false when answered 429.
  bool admit_client(const RouteSpec& route, size_t route_index, const SessionKey* key,
                    bool has_body);
  void note_backend_answer(int status);
  void forward_body(std::string_view data);
  static void on_chunk_data(void* self, const char* data, size_t len);
  void finish_exchange();
  // The exchange is void (a bad or truncated body, a stalled client): the client gets
  // `status`, or is cut off if an answer started.
  void fail_exchange(int status, const char* reason, std::string_view extra_headers = {});
  bool exchanging() const { return (rs_ && rs_->exchange.active()) || flight_; }

  // ---- [flights] request collapsing, the waiter's side (client_flight.cpp) -----------
  // In finish_head, after the 503 check: the stream flight this request joins (it then
  // spends no quota), or null; remembers whether it may lead a new one.
  Flight* flight_to_join(const Decision& d);
  // Starts the request as a follower of `join`, or as the leader of a new flight when it
  // may lead one: true; false: a plain exchange (the caller starts it).
  bool flight_start(Flight* join, const Decision& d);
  // Every leave path: out of the flight (a leader's state may be adopted: rs_ is null
  // after), or the exchange cancelled.
  void leave_flight();
  void cancel_answer();
  // A detached waiter's own answer (resume_ set): checked, skipped, framed.
  void resume_head(const http::MessageParser& r);
  void resume_body(const char* data, size_t len);
  bool resume_done();
  void resume_cut();
  // FlightWaiter
  void flight_head(const http::MessageParser& r) override;
  bool flight_refuses(const http::MessageParser& head, Reroute& r) override;
  void flight_body(const char* data, size_t len) override;
  bool flight_full() const override;
  void flight_read_end() override;
  void flight_done() override;
  void flight_failed(int status, const char* reason, std::string_view headers) override;
  void flight_go_solo(const Reroute& r) override;
  void flight_rerouted(const Reroute& r, size_t backend) override;
  void flight_detached(const FlightFacts& facts, uint64_t skip, size_t backend) override;
  struct Resume {
    FlightFacts facts;
    uint64_t skip = 0;
  };
  Flight* flight_ = nullptr;
  std::unique_ptr<Resume> resume_;
  FlightKey flight_key_;
  bool flight_eligible_ = false;
  bool flight_chunked_ = false;  // the answer is chunked: this waiter writes the framing
  bool flight_leader_ = false;
  // [fill flights] (client_fill_flight.cpp). A cacheable GET miss: joins the fill flight
  // of its key (true: it waits, placed nowhere), or leads a new one (its fill attached).
  bool fill_flight_join(const RuntimePool& pool, const CacheKey& key);
  void fill_flight_end(const FillResult& r) override;
  // Out of the fill flight it follows (gone, timed out); no-op otherwise.
  void leave_fill_flight();
  // A leader whose client goes while followers wait: its exchange runs on for them
  // (FillEngine takes rs_, which is null after: true); false: nothing to hand over.
  bool hand_over_fill();
  // A follower whose wait ended without an answer for it: placed and sent as a plain
  // miss (never joining a fill flight again for this request).
  void fill_go_solo();
  // The leader's answer the cache did not take, given to a follower pinned to its producer.
  void serve_copy(const RuntimePool& pool, std::shared_ptr<const FillCopy> copy);
  FillFlight* fill_flight_ = nullptr;
  bool fill_solo_ = false;  // this request left a fill flight: it leads or joins none
  // ---- [flights] end ------------------------------------------------------------------

  // ---- issue 16: the response cache (client_cache.cpp) ----
  // A GET or HEAD on a pool with a cache, looked up before placement (plan-16 §0.1): true
  // when it was answered from the cache; false to go upstream as any request does (a
  // cacheable GET miss with a fill begun). Reads the user's pin only (peek): a hit never
  // creates, moves or refreshes a pin and feeds no health input.
  bool try_cache(const RuntimePool& pool, std::string_view method, const RouteMatch& m,
                 std::span<const HeaderView> headers, bool has_body, const SessionKey* user_key);
  // Writes the head of a hit (or of its 304) and starts its body.
  void serve_hit(const RuntimePool& pool, std::shared_ptr<const CachedAnswer> entry,
                 const SessionKey* user_key, bool not_modified, uint64_t now_ms);
  // Writes the hit's body in slices of at most max_pending while the client keeps up
  // (resumed from on_drained); ends the request after the last byte.
  void continue_hit_body();
  bool writing_hit() const { return rs_ && rs_->hit; }
  // The miss's answer, handed to its fill as it goes to the client (no-ops without one).
  void fill_head(const http::MessageParser& r);
  void fill_body(const char* data, size_t len) {
    if (rs_->fill.active()) rs_->fill.body(data, len);
  }
  void finish_fill();
  // ---- end issue 16 ----

  // ExchangeClient
  const http::MessageParser& request() const override { return rs_->parser; }
  const std::string& request_head() const override { return rs_->req_head; }
  bool request_done() const override { return req_done_; }
  bool response_started() const override { return resp_started_; }
  void exchange_sending() override;
  void exchange_head(const http::MessageParser& response) override;
  void exchange_body(const char* data, size_t len) override;
  void exchange_read_end() override;
  void exchange_done() override;
  void exchange_failed(int status, const char* reason, std::string_view extra_headers) override;
  void exchange_drained() override;
  std::string_view websocket_key() const override { return {rs_->ws_key, rs_->ws_key_len}; }
  void exchange_switched(std::unique_ptr<Stream> upstream) override;
  void exchange_placed(const Decision& d) override;

  Worker& worker_;
  std::shared_ptr<const Runtime> rt_;  // the snapshot this exchange runs on
  std::shared_ptr<ListenerStats> listener_stats_;
  std::unique_ptr<Stream> stream_;  // TcpStream, or a test double
  Deadlines::Entry deadline_;
  RequestState* rs_ = nullptr;  // while a request is under way

  uint64_t body_bytes_ = 0;    // decoded chunked body so far, or discarded bytes
  uint64_t head_bytes_ = 0;    // bytes of the current head so far (access log)
  uint64_t phase_due_ms_ = 0;  // when the current phase's timeout fires (0: none)
  uint64_t body_due_ms_ = 0;   // end of the head + body_timeout (0: no request under way)
  // send_timeout: when the bytes waiting for the client must have moved (0: none wait),
  // and the stream's sent() count when that deadline was set.
  uint64_t send_due_ms_ = 0;
  uint64_t send_mark_ = 0;
  uint32_t listener_;
  uint8_t ip_[16]{};
  uint8_t ip_len_ = 0;
  Phase phase_ = Phase::head;
  bool reframe_ = false;  // chunked request: we write the chunk framing
  bool body_over_limit_ = false;
  bool head_partial_ = false;  // some bytes of the current head were parsed
  bool req_done_ = false;      // the whole request went upstream
  bool resp_started_ = false;  // a response head went to the client
  bool resp_head_pending_ = false;
  bool head_request_ = false;
  bool http10_ = false;
  bool keep_alive_ = true;
  bool close_after_ = false;  // close once the current response is written
  bool client_eof_ = false;
  bool closing_ = false;
  bool stop_ = false;
};

}  // namespace lb::net
