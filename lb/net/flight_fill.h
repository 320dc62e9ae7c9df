#pragma once
// A fill flight (plan-16 §0.2, issue 16 "request collapsing"): identical cacheable GETs
// that miss on one worker wait for the first one's answer instead of each going upstream.
// The first (the leader) runs as a plain miss: placed on its own pin, its own quota, its
// own answer streamed to it, a CacheFill collecting the body. The others (followers) are
// never placed and get no byte until the leader's answer is complete; then each is served:
//   stored      -> the entry, through the hit path;
//   not stored  -> a copy of the leader's answer (its status, the stored-field set and
//                  the decoded body) when the follower's pin (peeked) names the producing
//                  backend; otherwise it goes solo (placement + its own exchange);
//   no answer   -> (the leader's exchange failed, rerouted, its client left, the fill was
//                  abandoned) every follower goes solo.
// The flight is tied to the leader's CacheFill: finish() ends it with the answer, reset()
// (every other way a request ends) dissolves it, so a follower is never left waiting. The
// stop deadline aborts it (followers get 503). Per worker; worker thread only.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lb/core/cached_answer.h"
#include "lb/core/flight_key.h"
#include "lb/core/session_table.h"
#include "lb/net/exchange.h"

namespace lb::net {

class Worker;
class CacheFill;
class FillEngine;
struct PoolCache;
struct RequestState;

// The leader's complete answer that the cache did not take: what a follower pinned to
// the producer is given. `answer.fields` are the stored-field lines, `answer.body` the
// decoded body (at most the fill's cap).
struct FillCopy {
  int status = 0;
  std::string reason;
  CachedAnswer answer;
};

struct FillResult {
  enum class Kind { stored, unstored, solo, aborted } kind = Kind::solo;
  std::shared_ptr<const CachedAnswer> entry;  // stored
  std::shared_ptr<const FillCopy> copy;       // unstored (null: nothing to copy)
  bool has_producer = false;
  BackendRef producer = 0;
};

// A follower (ClientConn, client_fill_flight.cpp). Called once, after it left the flight.
class FillWaiter {
 public:
  virtual void fill_flight_end(const FillResult& r) = 0;

 protected:
  ~FillWaiter() = default;
};

class FillFlight {
 public:
  // A flight under `key` (fill_flight_key), registered in the worker's table; `leader`:
  // the leader's fill, which ends the flight (CacheFill::attach_flight).
  FillFlight(Worker& worker, const FlightKey& key, std::shared_ptr<PoolCache> cache);
  ~FillFlight();
  FillFlight(const FillFlight&) = delete;
  FillFlight& operator=(const FillFlight&) = delete;

  const FlightKey& key() const { return key_; }
  void join(FillWaiter& w) { followers_.push_back(&w); }
  // `w` is gone (client left, timed out): nothing more is said to it. The last follower
  // out, with the leader's client gone too, cancels the upstream exchange (may free this).
  void leave(FillWaiter& w);
  size_t followers() const { return followers_.size(); }
  // The backend whose answer the leader got (its final head).
  void set_producer(BackendRef b) {
    producer_ = b;
    has_producer_ = true;
  }
  // The end (called by the leader's fill, or the stop deadline): every follower is told
  // `r`, then the flight frees itself.
  void end(FillResult r);
  // The stop deadline: followers get 503; the leader's fill forgets the flight.
  void abort();
  void set_leader_fill(CacheFill* f) { leader_fill_ = f; }
  // The leader's client left: its exchange runs on in `e` for the followers.
  void set_engine(FillEngine* e) { engine_ = e; }

 private:
  Worker& worker_;
  FlightKey key_;
  std::shared_ptr<PoolCache> cache_;
  std::vector<FillWaiter*> followers_;
  CacheFill* leader_fill_ = nullptr;
  FillEngine* engine_ = nullptr;
  BackendRef producer_ = 0;
  bool has_producer_ = false;
  bool ending_ = false;
};

// The leader's exchange adopted when its client leaves while followers wait (engine
// adoption, as a stream flight does): it feeds the leader's CacheFill until the answer is
// complete, so finish() serves the followers, or fails (they go solo). The upstream request
// is cancelled only when the last follower leaves too. It owns the leader's RequestState
// and gives it back to the worker's free list, exactly once, when it ends.
class FillEngine final : public ExchangeClient {
 public:
  // Takes `rs` (its exchange active, its fill leading `flight`); `head_seen`: the final
  // head already went to the fill.
  static void adopt(Worker& worker, RequestState* rs, std::shared_ptr<const Runtime> rt,
                    FillFlight& flight, bool head_seen);
  // The last follower left, or the stop deadline: the upstream request is abandoned and
  // the state given back. Frees this.
  void cancel();

  const http::MessageParser& request() const override;
  const std::string& request_head() const override;
  bool request_done() const override { return true; }  // a GET without a body
  bool response_started() const override { return head_seen_; }
  void exchange_sending() override {}
  void exchange_head(const http::MessageParser& response) override;
  void exchange_body(const char* data, size_t len) override;
  void exchange_read_end() override {}
  void exchange_done() override;
  void exchange_failed(int status, const char* reason, std::string_view extra_headers) override;
  void exchange_drained() override {}
  std::string_view websocket_key() const override { return {}; }
  void exchange_switched(std::unique_ptr<Stream> upstream) override;
  void exchange_placed(const Decision& d) override { (void)d; }

 private:
  FillEngine(Worker& worker, RequestState* rs, std::shared_ptr<const Runtime> rt, bool head_seen)
      : worker_(worker), rs_(rs), rt_(std::move(rt)), head_seen_(head_seen) {}
  // The state back to the free list; frees this.
  void release();

  Worker& worker_;
  RequestState* rs_;
  std::shared_ptr<const Runtime> rt_;  // the exchange keeps raw pointers into it
  bool head_seen_;
};

}  // namespace lb::net
