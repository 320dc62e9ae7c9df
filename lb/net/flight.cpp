// Flight, first half: lifecycle, join/leave, the engine's requests, the head, failures and
// rerouting. The body window is flight_fanout.cpp.
#include "lb/net/flight.h"

#include "lb/net/client_conn.h"
#include "lb/net/flight_table.h"
#include "lb/net/pool_cache.h"
#include "lb/net/worker.h"

namespace lb::net {
namespace {

std::string_view header(const http::MessageParser& r, std::string_view name) {
  HeaderLookup h = find_header(r.headers(), name);
  return h.found ? h.value : std::string_view();
}

}  // namespace

FlightFacts FlightFacts::of(const http::MessageParser& r) {
  FlightFacts f;
  f.status = r.status_code();
  f.checkpoint = header(r, "x-most-recent-checkpoint");
  f.etag = header(r, "etag");
  f.has_length = r.has_content_length();
  f.length = r.content_length();
  return f;
}

bool FlightFacts::matches(const http::MessageParser& r) const {
  if (r.status_code() != status) return false;
  if (header(r, "x-most-recent-checkpoint") != checkpoint || header(r, "etag") != etag)
    return false;
  // A length is compared when both answers have one (a chunked answer has none).
  return !(has_length && r.has_content_length() && r.content_length() != length);
}

Flight::Flight(Worker& worker, const FlightKey& key, std::shared_ptr<const Runtime> rt,
               std::shared_ptr<PoolCache> cache, RequestState& engine, FlightWaiter& leader,
               ExchangeClient& leader_client, size_t backend)
    : worker_(worker),
      key_(key),
      rt_(std::move(rt)),
      cache_(std::move(cache)),
      engine_(&engine),
      leader_client_(&leader_client),
      backend_(backend),
      limit_(worker.max_pending()) {
  seats_.push_back({&leader, 0, true});
  stall_.fire = &Flight::on_stall;
  stall_.owner = this;
  live_ = 1;
  worker_.flights().insert(this);
  if (cache_) cache_->local().flights.fetch_add(1, std::memory_order_relaxed);
}

Flight::~Flight() {
  worker_.deadlines().clear(stall_);
  worker_.flights().remove(this);
  if (cache_) cache_->local().flights.fetch_sub(1, std::memory_order_relaxed);
  worker_.flight_ended();
}

Flight::Guard::~Guard() {
  if (--f.depth_ != 0) return;
  if (f.live_ == 0 && f.engine_running_) {
    // The last waiter is gone: only now is the upstream request abandoned.
    f.engine_running_ = false;
    RequestState* rs = f.engine_;
    f.engine_ = nullptr;
    rs->exchange.cancel();
    if (f.adopted_) {
      f.adopted_ = false;
      recycle_request_state(f.worker_, rs);
    }
  }
  f.compact();
  if (f.finished() && !f.deleted_) {
    f.deleted_ = true;
    delete &f;
  }
}

void Flight::start() {
  Guard g(*this);
  engine_running_ = true;
  engine_->exchange.set_client(*this);
  engine_->exchange.set_decode(true);
  engine_->exchange.start(backend_);
}

size_t Flight::waiters() const { return live_; }

Flight::Seat* Flight::seat_of(FlightWaiter& w) {
  for (Seat& s : seats_)
    if (s.w == &w) return &s;
  return nullptr;
}

void Flight::unseat(Seat& s) {
  if (!s.w) return;
  s.w = nullptr;
  --live_;
  if (s.leader) leader_client_ = nullptr;
}

void Flight::compact() {
  std::erase_if(seats_, [](const Seat& s) { return s.w == nullptr; });
}

void Flight::join(FlightWaiter& w) {
  seats_.push_back({&w, 0, false});
  ++live_;
}

bool Flight::leave(FlightWaiter& w) {
  Guard g(*this);
  Seat* s = seat_of(w);
  if (!s) return false;
  bool leader = s->leader;
  unseat(*s);
  bool adopt = leader && engine_running_ && live_ > 0;
  if (adopt) {
    // The others still wait: the engine (in the leader's RequestState) stays ours.
    adopted_ = true;
    engine_->parser.set_body_sink(nullptr, nullptr);  // it pointed at the leader
  }
  if (live_ > 0) {
    // It may have been the slowest (a slow leader pauses upstream): the window shrinks,
    // the caught-up finish and upstream resumes, or nobody would ever wake the others.
    trim_and_detach();
    finish_caught_up();
    update_pause();
  }
  return adopt;  // otherwise the last one out: the guard cancels the engine
}

void Flight::release_engine() {
  engine_running_ = false;
  paused_ = false;
  RequestState* rs = engine_;
  engine_ = nullptr;
  if (rs && adopted_) {
    adopted_ = false;
    recycle_request_state(worker_, rs);
  }
}

void Flight::abort() {
  Guard g(*this);
  if (engine_running_) {
    RequestState* rs = engine_;
    rs->exchange.cancel();
    release_engine();
  }
  worker_.flights().close(this);
  dissolved_ = true;
  for (size_t i = 0; i < seats_.size(); ++i) {
    FlightWaiter* w = seats_[i].w;
    if (!w) continue;
    unseat(seats_[i]);
    w->flight_failed(503, "corral is shutting down", "Retry-After: 1\r\n");
  }
}

const http::MessageParser& Flight::request() const { return engine_->parser; }
const std::string& Flight::request_head() const { return engine_->req_head; }

void Flight::exchange_sending() {
  if (leader_client_) leader_client_->exchange_sending();
}

void Flight::exchange_drained() {
  if (leader_client_) leader_client_->exchange_drained();
}

void Flight::exchange_switched(std::unique_ptr<Stream> upstream) {
  // Unreachable: a flight's GET asks for no upgrade, and UpstreamConn refuses a 101 that
  // answers no handshake. Should one come, nobody takes the stream.
  upstream->close();
  (void)upstream.release();  // the stream frees itself once closed
  exchange_failed(502, "backend switched protocols", {});
}

void Flight::exchange_head(const http::MessageParser& r) {
  Guard g(*this);
  if (r.status_code() < 200) {  // an interim answer (103): everyone gets it, joins go on
    for (size_t i = 0; i < seats_.size(); ++i)
      if (seats_[i].w) seats_[i].w->flight_head(r);
    return;
  }
  head_seen_ = true;
  worker_.flights().close(this);
  facts_ = FlightFacts::of(r);
  // Each follower's own 503 retry and regression check (plan §0.4): it may go solo.
  for (size_t i = 0; i < seats_.size(); ++i) {
    Seat& s = seats_[i];
    Reroute rr;
    if (!s.w || s.leader || !s.w->flight_refuses(r, rr)) continue;
    FlightWaiter* w = s.w;
    unseat(s);
    w->flight_go_solo(rr);
  }
  for (size_t i = 0; i < seats_.size(); ++i)
    if (seats_[i].w) seats_[i].w->flight_head(r);
}

void Flight::exchange_read_end() {
  Guard g(*this);
  for (size_t i = 0; i < seats_.size(); ++i)
    if (seats_[i].w && seats_[i].delivered == total_) seats_[i].w->flight_read_end();
}

void Flight::exchange_done() {
  Guard g(*this);
  engine_done_ = true;
  release_engine();
  finish_caught_up();
}

void Flight::exchange_failed(int status, const char* reason, std::string_view extra_headers) {
  Guard g(*this);
  release_engine();
  worker_.flights().close(this);
  dissolved_ = true;
  for (size_t i = 0; i < seats_.size(); ++i) {
    FlightWaiter* w = seats_[i].w;
    if (!w) continue;
    unseat(seats_[i]);
    w->flight_failed(status, reason, extra_headers);
  }
}

bool Flight::exchange_rerouting(const Reroute& r) {
  Guard g(*this);
  // The engine goes elsewhere for its leader; each follower goes its own way, as it would
  // have without the flight: a failover excludes the backend for everyone, but the
  // leader's 503 retry or regression resend moves only the followers it would move.
  dissolved_ = true;
  worker_.flights().close(this);
  for (size_t i = 0; i < seats_.size(); ++i) {
    Seat& s = seats_[i];
    if (!s.w || s.leader) continue;
    FlightWaiter* w = s.w;
    unseat(s);
    w->flight_rerouted(r, backend_);
  }
  if (leader_client_) return true;
  release_engine();  // nobody waits: the engine stops (touching nothing after false)
  return false;
}

}  // namespace lb::net
