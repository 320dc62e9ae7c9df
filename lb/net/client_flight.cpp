// ClientConn as a flight's waiter (lb/net/flight.h, plan-16 §0.2-0.5): joining or leading
// a stream flight in finish_head, the answer received decoded and framed here (chunked
// answers get this connection's own chunk framing), the leave paths, going solo, and a
// detached waiter's own answer spliced in after the bytes it already has.
#include <charconv>
#include <cstdio>
#include <string>

#include "lb/core/cache_key.h"
#include "lb/core/cache_rules.h"
#include "lb/core/flight_key.h"
#include "lb/http/response_framing.h"
#include "lb/net/client_conn.h"
#include "lb/net/log.h"
#include "lb/net/pool_cache.h"
#include "lb/net/worker.h"

namespace lb::net {
namespace {

bool checkpoint_of(const http::MessageParser& r, uint64_t& slot) {
  HeaderLookup cp = find_header(r.headers(), "x-most-recent-checkpoint");
  if (!cp.found) return false;
  std::string_view v = cp.value;
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), slot);
  return ec == std::errc() && p == v.data() + v.size();
}

}  // namespace

Flight* ClientConn::flight_to_join(const Decision& d) {
  flight_eligible_ = false;
  const RequestState::PendingHead& ph = rs_->head;
  const RuntimePool& pool = *ph.pool;
  // Collapsing needs the pool's cache with collapse on; HEAD and uploads never collapse.
  if (!pool.cache || !pool.cache->collapse() || ph.method != "GET" || ph.upgrade) return nullptr;
  // The lookup's verdict decides (try_cache): cacheable requests are the cache's (hits,
  // fill flights), and a request whose fill is under way never leads a stream flight,
  // whose bytes would not reach the fill.
  if (!rs_->lookup.stream_ok || rs_->fill.active()) return nullptr;
  flight_key_ = stream_flight_key(rs_->lookup.key, pool.backends[d.index].ref);
  flight_eligible_ = true;
  Flight* f = worker_.flights().find(flight_key_);
  return f && f->joinable() ? f : nullptr;
}

bool ClientConn::flight_start(Flight* join, const Decision& d) {
  flight_chunked_ = false;
  if (join) {
    rs_->exchange.follow(d.index);
    flight_leader_ = false;
    flight_ = join;
    join->join(*this);
    phase_ = Phase::body;  // process() reads the (empty) body: the request is whole
    return true;
  }
  if (!flight_eligible_) return false;
  flight_leader_ = true;
  auto* f =
      new Flight(worker_, flight_key_, rt_, rs_->head.pool->cache, *rs_, *this, *this, d.index);
  flight_ = f;
  f->start();  // may fail at once and answer us: touch nothing of it after
  return true;
}

void ClientConn::leave_flight() {
  if (!flight_) return;
  Flight* f = flight_;
  flight_ = nullptr;
  if (rs_ && rs_->access.active && flight_leader_) {
    write_access();  // the state may go to the flight: its line is written now
    rs_->access.active = false;
  }
  if (f->leave(*this)) rs_ = nullptr;  // the flight adopted our state (the engine)
}

void ClientConn::cancel_answer() {
  if (flight_)
    leave_flight();
  else if (hand_over_fill()) {
    // [fill flights] the exchange goes on for the followers
  } else if (rs_)
    rs_->exchange.cancel();
}

// ---- FlightWaiter ---------------------------------------------------------------------

bool ClientConn::flight_refuses(const http::MessageParser& head, Reroute& r) {
  const RuntimeBackend* b = rs_->exchange.backend();
  if (!b) return false;
  r.failed = b->ref;
  if (head.status_code() == 503 && rs_->exchange.would_retry_503()) {
    // A new user here: like its own 503, it tries the next candidate once.
    r.count_move = false;
    r.status = 503;
    r.reason = "backend overloaded";
    r.headers = "Retry-After: 1\r\n";
    return true;
  }
  uint64_t slot = 0;
  if (head.status_code() != 503 && checkpoint_of(head, slot) && slot < rs_->exchange.user_slot()) {
    r.why = MoveReason::regression;
    r.require_slot = true;
    return true;
  }
  return false;
}

void ClientConn::flight_head(const http::MessageParser& r) {
  int status = r.status_code();
  if (status >= 200 && !flight_leader_) {
    // The engine recorded the leader's slot; each follower's pin learns it too.
    uint64_t slot = 0;
    if (rs_->exchange.pinned() && checkpoint_of(r, slot))
      worker_.state().sessions.record_slot(rs_->exchange.pin_key(), slot);
  }
  if (status >= 200) {
    http::ResponseFacts facts;
    facts.status = status;
    facts.version_major = r.version_major();
    facts.has_content_length = r.has_content_length();
    facts.content_length = r.content_length();
    facts.headers = r.headers();
    flight_chunked_ = http::frame_response(facts).body == http::BodyFraming::chunked;
  }
  exchange_head(r);
}

void ClientConn::flight_body(const char* data, size_t len) {
  if (len == 0 || closing_) return;
  std::string_view parts[4];
  size_t n = 0;
  if (resp_head_pending_) {
    resp_head_pending_ = false;
    note_sent(rs_->resp_head.size());
    parts[n++] = rs_->resp_head;
  }
  char line[24];
  if (flight_chunked_) {
    int k = snprintf(line, sizeof line, "%zx\r\n", len);
    parts[n++] = {line, static_cast<size_t>(k)};
    parts[n++] = {data, len};
    parts[n++] = "\r\n";
  } else {
    parts[n++] = {data, len};
  }
  note_sent(len);
  stream_->write(parts, n);
  note_output();
}

bool ClientConn::flight_full() const { return stream_->pending() >= worker_.max_pending(); }

void ClientConn::flight_read_end() { exchange_read_end(); }

void ClientConn::flight_done() {
  flight_ = nullptr;
  if (closing_) return;
  if (flight_chunked_) {
    std::string_view parts[2];
    size_t n = 0;
    if (resp_head_pending_) {
      resp_head_pending_ = false;
      note_sent(rs_->resp_head.size());
      parts[n++] = rs_->resp_head;
    }
    parts[n++] = "0\r\n\r\n";  // the last chunk, no trailers
    note_sent(5);
    stream_->write(parts, n);
    note_output();
  } else {
    exchange_read_end();  // a head without a body still waits
  }
  flight_chunked_ = false;
  exchange_done();
}

void ClientConn::flight_failed(int status, const char* reason, std::string_view headers) {
  flight_ = nullptr;
  if (closing_) return;
  fail_exchange(status, reason, headers);
}

void ClientConn::flight_go_solo(const Reroute& r) {
  flight_ = nullptr;
  if (closing_) return;
  rs_->exchange.start_solo(r);
}

void ClientConn::flight_rerouted(const Reroute& r, size_t backend) {
  flight_ = nullptr;
  if (closing_) return;
  if (r.retry_503 && !rs_->exchange.would_retry_503()) {
    // A pinned user's own 503 is forwarded, its pin kept (it was swallowed upstream).
    fail_exchange(r.status, r.reason, r.headers);
    return;
  }
  if (!r.retry_503 && r.why == MoveReason::regression &&
      rs_->exchange.user_slot() <= r.checkpoint) {
    // The answer suits this user: its request alone to the same backend (the leader's
    // connection there was closed mid-answer).
    rs_->exchange.start(backend);
    return;
  }
  rs_->exchange.start_solo(r);
}

// Fell behind the flight: the same request again, to the same backend, on its own; the
// first `skip` body bytes of its answer are already with the client (resume_*).
void ClientConn::flight_detached(const FlightFacts& facts, uint64_t skip, size_t backend) {
  flight_ = nullptr;
  if (closing_) return;
  resume_ = std::make_unique<Resume>();
  resume_->facts = facts;
  resume_->skip = skip;
  rs_->exchange.set_decode(true);
  rs_->exchange.start(backend);
}

// ---- a detached waiter's own answer ---------------------------------------------------

void ClientConn::resume_head(const http::MessageParser& r) {
  if (r.status_code() < 200) return;  // an interim answer: the client has its head already
  if (resume_->facts.matches(r)) return;
  // Another chain point (or another answer): the bytes would not continue the ones sent.
  resume_cut();
  close();
}

void ClientConn::resume_body(const char* data, size_t len) {
  if (!resume_ || closing_) return;
  uint64_t skip = std::min<uint64_t>(resume_->skip, len);
  resume_->skip -= skip;
  if (skip < len) flight_body(data + skip, len - static_cast<size_t>(skip));
  if (stream_->pending() >= worker_.max_pending()) {
    rs_->exchange.pause_response();
    arm_timer();
  }
}

bool ClientConn::resume_done() {
  if (resume_->skip != 0) {  // shorter than what was sent already
    resume_cut();
    rs_->exchange.abort();
    close();
    return false;
  }
  resume_.reset();
  if (const RuntimePool* pool = rs_->head.pool; pool && pool->cache)
    pool->cache->local().detached_resumed.fetch_add(1, std::memory_order_relaxed);
  if (flight_chunked_) {
    note_sent(5);
    stream_->write("0\r\n\r\n");
    note_output();
  }
  flight_chunked_ = false;
  return true;
}

void ClientConn::resume_cut() {
  if (!resume_) return;
  resume_.reset();
  if (const RuntimePool* pool = rs_ ? rs_->head.pool : nullptr; pool && pool->cache)
    pool->cache->local().detached_cut.fetch_add(1, std::memory_order_relaxed);
  log_limited("client %s: detached from a collapsed answer, and its own answer differs: cut",
              ip_text());
}

}  // namespace lb::net
