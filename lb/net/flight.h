#pragma once
// A flight (plan-16 §0.2-0.5, issue 16 "request collapsing"): one upstream request whose
// answer several identical client requests wait for. This is the stream kind: an
// uncacheable GET collapsed with the identical GETs already placed on the same backend,
// each waiter getting the head, then the decoded body streamed to it (a waiter frames its
// own chunks). Joining closes when the head arrives.
//
// Who owns what (plan §0.3): the engine is the leader's RequestState::exchange with the
// Flight installed as its ExchangeClient. The leader owns that RequestState while it stays;
// when it leaves before the engine ends, the flight adopts the state and gives it back to
// the worker's free list when the engine ends, or when the last waiter leaves (then the
// engine is cancelled: the upstream request is aborted only then).
//
// Back-pressure (§0.5): body bytes go straight to every waiter that can take them; those
// a full waiter has not got yet stay in the window, at most Worker::max_pending()
// (limits.buffer_bytes × 4). A waiter that would make the window longer than that while a
// faster one reads is detached and served solo (FlightWaiter::flight_detached); upstream
// is paused only while every waiter (the fastest too) is full.
//
// flight.cpp: lifecycle, join/leave, the engine's requests, head and failures.
// flight_fanout.cpp: the body window, drains, detach, the end.
// A fill flight (kPoolScope, its followers getting nothing until the end) is meant to be
// a second kind here: followers with `silent` seats that the body loop skips.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lb/core/flight_key.h"
#include "lb/net/deadlines.h"
#include "lb/net/exchange.h"

namespace lb::net {

class Worker;
class FlightTable;
struct PoolCache;
struct RequestState;

// What a detached waiter's own answer must match to be spliced in: the same chain point
// gives the same bytes (status, X-Most-Recent-Checkpoint, ETag and length when known).
struct FlightFacts {
  int status = 0;
  std::string checkpoint;  // empty: the answer had none
  std::string etag;
  bool has_length = false;
  uint64_t length = 0;
  // `r`'s facts (a response head, views valid now).
  static FlightFacts of(const http::MessageParser& r);
  bool matches(const http::MessageParser& r) const;
};

// The client side of a flight (ClientConn, client_flight.cpp). The flight never calls a
// waiter after removing it, except for the one call that tells it why.
class FlightWaiter {
 public:
  // The response head (views valid during the call); the waiter writes its own head.
  virtual void flight_head(const http::MessageParser& r) = 0;
  // Before the head fan-out: true when this follower must not take the answer (its own
  // 503 retry or regression check) and fills `r` with how it goes solo.
  virtual bool flight_refuses(const http::MessageParser& head, Reroute& r) = 0;
  // Decoded body bytes, in order; the waiter frames them when the answer is chunked.
  virtual void flight_body(const char* data, size_t len) = 0;
  // The waiter's output queue is at Worker::max_pending().
  virtual bool flight_full() const = 0;
  // Everything read so far was handed over: flush a coalesced head.
  virtual void flight_read_end() = 0;
  // Removed from the flight: the answer is complete / failed / it must go solo (before
  // the head) / it fell behind and must fetch the rest itself, skipping `skip` bytes.
  virtual void flight_done() = 0;
  virtual void flight_failed(int status, const char* reason, std::string_view headers) = 0;
  virtual void flight_go_solo(const Reroute& r) = 0;
  // Removed before the head: the leader's engine moves (`r`: a failover, its 503 retry or
  // its regression resend). The follower does what its own exchange would have done:
  // the same move, or the 503 forwarded, or its request alone to `backend` again.
  virtual void flight_rerouted(const Reroute& r, size_t backend) = 0;
  virtual void flight_detached(const FlightFacts& facts, uint64_t skip, size_t backend) = 0;

 protected:
  ~FlightWaiter() = default;
};

class Flight final : public ExchangeClient {
 public:
  // A flight led by `leader`, whose RequestState `engine` holds the placed, not yet
  // started exchange; `backend`: the index of the backend in the pool.
  Flight(Worker& worker, const FlightKey& key, std::shared_ptr<const Runtime> rt,
         std::shared_ptr<PoolCache> cache, RequestState& engine, FlightWaiter& leader,
         ExchangeClient& leader_client, size_t backend);
  ~Flight();
  Flight(const Flight&) = delete;
  Flight& operator=(const Flight&) = delete;

  // Installs itself as the engine's client and starts it (decoded answers).
  void start();
  const FlightKey& key() const { return key_; }
  size_t backend() const { return backend_; }
  // Joining is possible until the head arrives (and while the flight is not dissolved).
  bool joinable() const { return !head_seen_ && !dissolved_; }
  void join(FlightWaiter& w);
  // `w` leaves (gone, timed out): nothing more is said to it. True when it was the leader
  // and the flight adopted its RequestState (the caller must forget the pointer). The
  // last waiter out cancels the engine. May free the flight.
  bool leave(FlightWaiter& w);
  // `w`'s output drained: it takes what the window holds for it. May free the flight.
  void drained(FlightWaiter& w);
  // The stop deadline: every waiter fails, the engine is aborted. Frees the flight.
  void abort();

  size_t waiters() const;
  // Body bytes held in the window now / at most so far.
  size_t held() const { return window_.size(); }
  size_t held_peak() const { return held_peak_; }
  // How long a follower that stopped reading may hold the others' answer (upstream is held
  // for a follower behind the others; then it is detached and served on its own).
  static constexpr uint64_t kStallMs = 500;
  bool adopted() const { return adopted_; }

  // ExchangeClient (the engine's side)
  const http::MessageParser& request() const override;
  const std::string& request_head() const override;
  bool request_done() const override { return true; }  // a GET without a body
  bool response_started() const override { return head_seen_; }
  void exchange_sending() override;
  void exchange_head(const http::MessageParser& response) override;
  void exchange_body(const char* data, size_t len) override;
  void exchange_read_end() override;
  void exchange_done() override;
  void exchange_failed(int status, const char* reason, std::string_view extra_headers) override;
  void exchange_drained() override;
  std::string_view websocket_key() const override { return {}; }
  void exchange_switched(std::unique_ptr<Stream> upstream) override;
  void exchange_placed(const Decision& d) override { (void)d; }
  bool exchange_rerouting(const Reroute& r) override;

 private:
  friend class FlightTable;  // keeps table_index_
  struct Seat {
    FlightWaiter* w = nullptr;  // null: left (compacted when no loop runs)
    uint64_t delivered = 0;     // decoded body bytes handed to it
    bool leader = false;
    uint64_t fed_at = 0;  // total_ when it last took bytes (how long it has been full)
  };
  // Entry points hold a guard: removal only marks seats while one runs, and the flight
  // frees itself when the outermost one ends and nothing is left.
  struct Guard {
    explicit Guard(Flight& f) : f(f) { ++f.depth_; }
    ~Guard();
    Flight& f;
  };
  Seat* seat_of(FlightWaiter& w);
  // Takes `s` out of the flight (its waiter is told nothing here).
  void unseat(Seat& s);
  void compact();
  // The engine ended: its RequestState goes back if the flight adopted it.
  void release_engine();
  bool finished() const { return live_ == 0 && !engine_running_; }
  // flight_fanout.cpp
  void feed(Seat& s);
  // stalled: the hold timer fired, so a full follower behind the others is detached even
  // if it took bytes lately (it stopped reading; the others must not wait for it).
  void trim_and_detach(bool stalled = false);
  void update_pause();
  static void on_stall(void* self);
  void finish_caught_up();
  uint64_t lowest_delivered() const;
  uint64_t soft_limit() const { return limit_ - limit_ / 4; }
  void count_served(const Seat& s);

  Worker& worker_;
  FlightKey key_;
  std::shared_ptr<const Runtime> rt_;  // the engine keeps raw pointers into it
  std::shared_ptr<PoolCache> cache_;   // counters
  RequestState* engine_;               // null once the engine ended
  ExchangeClient* leader_client_;      // null once the leader left
  size_t backend_;
  size_t table_index_ = 0;  // where FlightTable::all() holds it: removal is O(1)
  std::vector<Seat> seats_;
  size_t live_ = 0;
  FlightFacts facts_;
  std::string window_;  // body bytes [base_, total_) some waiter has not got yet
  uint64_t base_ = 0;   // the offset of window_[0]
  uint64_t total_ = 0;  // body bytes received
  size_t limit_ = 0;    // the window's bound (Worker::max_pending())
  size_t held_peak_ = 0;
  // Armed while upstream is held for a follower behind the others (not while every
  // waiter is full): when it fires, the followers still full and behind are detached.
  Deadlines::Entry stall_;
  int depth_ = 0;
  bool head_seen_ = false;
  bool dissolved_ = false;
  bool engine_running_ = false;
  bool engine_done_ = false;  // the answer is complete (waiters catch up, then done)
  bool adopted_ = false;
  bool paused_ = false;
  bool deleted_ = false;
};

}  // namespace lb::net
