#pragma once
// One exchange with one upstream, on behalf of a client connection: place the request's
// user (lb/core/balancer), send the request to that backend over a pooled or new
// UpstreamConn, hand the answer to the client side, and when the backend fails or
// answers 503, resend or fail over as lb/core/retry_policy says. It also keeps the
// backend's counters and tells health what live traffic showed (passive events).
// The client side (ClientConn) reads and parses the request and writes the answer; the
// two meet at ExchangeClient. An Exchange lives in the pooled RequestState, so an idle
// connection holds none.
#include <cstdint>
#include <memory>
#include <string_view>

#include "lb/core/balancer.h"
#include "lb/core/retry_policy.h"
#include "lb/core/session_key.h"
#include "lb/http/message_parser.h"
#include "lb/net/runtime.h"
#include "lb/net/store_client.h"
#include "lb/net/upstream_conn.h"

namespace lb::net {

class Worker;

// A request about to be sent elsewhere (failover, 503 retry, regression resend): what a
// flight's followers need to go solo the same way (plan-16 §0.4).
struct Reroute {
  BackendRef failed = 0;
  MoveReason why = MoveReason::down;
  bool count_move = true;
  bool require_slot = false;  // a regression: only a backend at or past the user's slot
  // Set by a flight's engine (the leader's own move), which each follower judges for
  // itself (Flight::exchange_rerouting): a 503 retry, or a regression's answer checkpoint.
  bool retry_503 = false;
  uint64_t checkpoint = 0;
  // What a follower gets when no backend can take it.
  int status = 502;
  const char* reason = "no reachable backend";
  std::string_view headers;
};

// What the exchange needs from, and tells, the client side.
class ExchangeClient {
 public:
  // The request as parsed (method, framing) and its rewritten head.
  virtual const http::MessageParser& request() const = 0;
  virtual const std::string& request_head() const = 0;
  // The whole request has been read and handed to the exchange.
  virtual bool request_done() const = 0;
  // Part of an answer went to the client.
  virtual bool response_started() const = 0;

  // An upstream connection is ready: body bytes may flow (send_body), or, when the
  // request was whole already, it has been sent and the answer is awaited.
  virtual void exchange_sending() = 0;
  virtual void exchange_head(const http::MessageParser& response) = 0;
  virtual void exchange_body(const char* data, size_t len) = 0;
  // Everything read so far was handed over (flush a coalesced head).
  virtual void exchange_read_end() = 0;
  // The answer is complete.
  virtual void exchange_done() = 0;
  // No answer can come: the client gets `status` (or is cut off if an answer started).
  virtual void exchange_failed(int status, const char* reason, std::string_view extra_headers) = 0;
  // The request bytes queued to the backend are written.
  virtual void exchange_drained() = 0;
  // The Sec-WebSocket-Key of a WebSocket handshake (empty for any other request); the
  // backend's 101 must answer it. Stays valid for the whole exchange.
  virtual std::string_view websocket_key() const = 0;
  // The backend answered the handshake with 101 (its head went to exchange_head): the
  // client side takes the upstream stream and makes the tunnel. The exchange is over and
  // touches nothing after this call, so the client side may free it.
  virtual void exchange_switched(std::unique_ptr<Stream> upstream) = 0;
  // A placement that waited for the shared store (place() returned false) is decided:
  // the request goes on as if place() had returned `d`. Called from the loop, never
  // inside place().
  virtual void exchange_placed(const Decision& d) = 0;
  // The request is about to be re-sent elsewhere (before any failover, 503 retry or
  // regression resend). A flight sends its followers solo here; false: nobody waits for
  // the answer any more, so the exchange stops (it touches nothing after a false).
  virtual bool exchange_rerouting(const Reroute& r) {
    (void)r;
    return true;
  }

 protected:
  ~ExchangeClient() = default;
};

// What the shared store had to do with this request's placement (the access log's
// `store` field): none: no store, or a keyless user.
enum class StoreMark : uint8_t { none, hit, claimed, adopted, moved, timeout, down };
const char* store_mark_name(StoreMark m);

class Exchange final : public UpstreamOwner, public StoreWaiter {
 public:
  // A new request: the user's key (found=false: keyless, spread per request).
  void begin(Worker& worker, ExchangeClient& client, const Runtime& rt, const RuntimePool& pool,
             const SessionKey* user_key);
  // Places the user (pinned, new or moved) and pins a new placement into `out`; kind
  // none: nothing can take the request. With a shared store (sticky.store) a keyed user
  // who is new here, or must move, is claimed in the store first: then false is returned
  // (parked) and the decision comes later through ExchangeClient::exchange_placed, unless
  // abort() comes first.
  bool place(Decision& out);
  // The placement is waiting for the store.
  bool parked() const { return parked_; }
  StoreMark store_mark() const { return store_mark_; }
  // Starts the exchange with the placed backend (index into the pool).
  void start(size_t backend);
  // Body bytes for the backend, in order; the head goes out with the first of them.
  void send_body(const std::string_view* parts, size_t n);
  // Sends the head now if it is still waiting for body bytes.
  void flush_head();
  // The whole request is out: the backend's response time starts.
  void request_sent();
  size_t pending() const { return up_ ? up_->pending() : 0; }
  void pause_response();
  void resume_response();
  // The client is gone or the exchange is void: close the upstream side now.
  // Also drops a parked placement's store answer.
  void abort();
  // The client left before its answer started: the one entry point for a waiter leaving.
  // Counts the backend's client abort and aborts the upstream side (closed, never pooled:
  // a request or body may be half sent). Today an exchange has one waiter, so the first
  // cancel aborts it; when request collapsing lets several clients wait on one upstream
  // request, this drops one waiter and aborts only when the last one leaves.
  void cancel();
  bool active() const { return up_ != nullptr; }
  bool connecting() const { return connecting_; }
  const RuntimeBackend* backend() const { return backend_; }
  // The user's key in the session table (valid when pinned()).
  const SessionKey& pin_key() const { return pin_key_; }
  bool pinned() const { return pinned_; }
  // Why this request's user was moved to another backend (none: not moved).
  MoveReason move_reason() const { return move_reason_; }

  // Flights (plan-16 §0.3): the engine's client becomes the Flight that fans it out.
  void set_client(ExchangeClient& c) { client_ = &c; }
  // The answer's body is handed over decoded (chunk framing removed).
  void set_decode(bool on) { decode_ = on; }
  // A follower: names the backend it was placed on (access log, expose_backend) without
  // sending anything; it never counts in_flight.
  void follow(size_t backend) { backend_ = &pool_->backends[backend]; }
  // The user's last slot when placed (regression), and whether this request placed it.
  uint64_t user_slot() const { return user_slot_; }
  bool fresh_user() const { return fresh_user_; }
  // Whether this request, had it got a 503 itself, would be retried on another backend.
  bool would_retry_503() const;
  // A follower leaving its flight sends its own request: placed again with r.failed
  // excluded (as the engine's own failover would), then started; when no backend can
  // take it the client gets r.status.
  void start_solo(const Reroute& r);

 private:
  // What decide() saw of the user's pin, for commit() and the store.
  struct Placing {
    uint64_t now = 0;
    bool has_pin = false;
    BackendRef from = 0;  // the pin decide() found (a move's origin)
    uint64_t last_slot = 0;
    bool refresh_due = false;  // the pin's TTL in the store is due for a refresh
  };
  // The placement without side effects (the session table is only touched): where the
  // request would go. `why`, `require_slot`: as place_excluding.
  Decision decide(const ExcludedBackends& exclude, MoveReason why, bool require_slot, Placing& p);
  // Pins a new or moved decision in the local table and counts it.
  void commit(const Decision& d, const Placing& p, bool count_move);
  // The stored form of a new or moved decision.
  StoredPin stored_pin(const Decision& d, const Placing& p) const;
  // The configured name of backend `ref` ("" if this process has forgotten it).
  std::string backend_name(BackendRef ref) const;
  // Sends the claim (new user) or cas (move) for `pending_` and parks; false when the
  // store took nothing (its link is not up).
  bool ask_store(StoreClient& store);
  // StoreWaiter: the claim/cas answer.
  void store_answer(const StoreAnswer& a) override;
  // The store answered `adopted` with a pin: true and `d` set when the request can go there
  // (or elsewhere without another round trip); false when parked again for one more cas.
  bool adopt_stored(const StoredPin& stored, Decision& d);
  void unpark();

  // `why`: the move reason when the user's pin is among `exclude`; `require_slot`: only a
  // backend at or past the user's last slot may take it (a resend after a regression).
  Decision place_excluding(const ExcludedBackends& exclude, bool count_move,
                           MoveReason why = MoveReason::down, bool require_slot = false);
  // Counts a user's move on the backend it moved to and logs it (rate-limited).
  void note_move(const Decision& d, BackendRef from);
  // Sends the request to backend `index` of the pool, unless the pool's quota refuses the
  // resend (then the client gets corral's own answer).
  void launch(size_t index);
  // The answer's checkpoint is older than the user's last slot `seen`: true when it is
  // discarded and the request will be re-sent (after this head's bytes are read), false
  // when it must be forwarded (counted either way).
  bool regression(uint64_t checkpoint, uint64_t seen);
  // Closes the connection whose answer regressed and re-sends the request.
  void resend_after_regression();
  // A dropped 503 is fully read (or broke off): the request goes to the next candidate
  // once, or the client gets corral's 503.
  void retry_after_503();
  RetryFacts retry_facts() const;
  void local_fd_exhausted();
  // Resends to another backend: false when none can take it; true when sent, or when the
  // pool's quota refused the resend and the client got corral's own answer.
  bool move_request(BackendRef failed, bool count_move);
  void send_head();
  void end_in_flight();
  // A new connection to the backend: from its preferred address, then the next one.
  void connect_first();
  void connect_next();

  // UpstreamOwner
  void upstream_connected() override;
  void upstream_head(const http::MessageParser& response) override;
  void upstream_body(const char* data, size_t len) override;
  void upstream_done(bool reusable) override;
  void upstream_failed(UpstreamError error) override;
  void upstream_read_end() override;
  void upstream_drained() override;
  void upstream_switched(std::unique_ptr<Stream> stream) override;

  Worker* worker_ = nullptr;
  ExchangeClient* client_ = nullptr;
  const Runtime* rt_ = nullptr;
  const RuntimePool* pool_ = nullptr;
  const RuntimeBackend* backend_ = nullptr;
  UpstreamConn* up_ = nullptr;
  // The backend's addresses as they were when this connection attempt began, which one
  // is being tried, where the attempts started, and how many have been made.
  std::shared_ptr<const AddressBook::List> addrs_;
  uint32_t addr_index_ = 0;
  uint32_t addr_first_ = 0;
  uint32_t addr_tried_ = 0;
  SessionKey pin_key_;
  ExcludedBackends failed_;  // backends this request failed on: failovers avoid them all
  uint64_t hash_ = 0;        // the user's selector key
  uint64_t sent_at_us_ = 0;
  MoveReason move_reason_ = MoveReason::none;
  uint8_t stale_retries_ = 0;
  uint8_t failovers_ = 0;
  uint8_t retries_503_ = 0;
  uint8_t regression_resends_ = 0;
  uint64_t user_slot_ = 0;             // the user's last slot when this request was placed
  size_t resend_index_ = 0;            // where a regressed request goes next
  uint64_t regressed_checkpoint_ = 0;  // the checkpoint of the answer being dropped
  // The first backend whose answer to this request regressed: when a later answer is
  // forwarded without regressing, the regression was prevented (counted there).
  BackendStats* regressed_on_ = nullptr;
  bool pinned_ = false;      // the user has a key, so a pin
  bool fresh_user_ = false;  // placed by this request (new or moved): no state there yet
  bool swallow_ = false;     // dropping a 503 that a retry replaces
  bool regressed_ = false;   // dropping an answer older than the user's slot (a resend)
  bool head_pending_ = false;
  bool connecting_ = false;
  bool head_request_ = false;
  bool decode_ = false;  // the answer's body decoded (a flight's engine, a resumed waiter)
  // The shared store: a placement waiting for its answer, what it decided locally, and
  // whether the one extra cas after an unusable adopted pin is spent.
  bool parked_ = false;
  bool cas_again_spent_ = false;
  StoreMark store_mark_ = StoreMark::none;
  Decision pending_;
  Placing placing_;

 public:
  size_t park_index = 0;  // position in the worker's list of parked exchanges
};

}  // namespace lb::net
