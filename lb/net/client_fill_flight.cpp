// ClientConn and fill flights (lb/net/flight_fill.h, plan-16 §0.2 first bullet): a
// cacheable GET that misses leads the fill flight of its key or follows it. A follower is
// never placed (no pin made or touched, no quota, nothing sent); it waits in
// Phase::placing (its head's bytes held, header_timeout bounding the wait, a hang-up
// noticed) and is then served from the stored entry, given a copy of the leader's answer
// (pinned to the producer), or goes solo as a plain miss.
#include "lb/core/cache_key.h"
#include "lb/core/cache_rules.h"
#include "lb/core/etag.h"
#include "lb/core/flight_key.h"
#include "lb/net/client_conn.h"
#include "lb/net/log.h"
#include "lb/net/pool_cache.h"
#include "lb/net/worker.h"

namespace lb::net {

bool ClientConn::fill_flight_join(const RuntimePool& pool, const CacheKey& key) {
  FlightKey fk = fill_flight_key(key);
  if (FillFlight* f = worker_.flights().find_fill(fk)) {
    fill_flight_ = f;
    f->join(*this);
    rs_->fill.reset();  // the leader fills; this request only reads
    phase_ = Phase::placing;
    arm_timer();
    return true;
  }
  rs_->fill.attach_flight(new FillFlight(worker_, fk, pool.cache));
  return false;  // the leader: a plain miss from here
}

void ClientConn::leave_fill_flight() {
  if (!fill_flight_) return;
  FillFlight* f = fill_flight_;
  fill_flight_ = nullptr;
  f->leave(*this);
}

bool ClientConn::hand_over_fill() {
  if (!rs_ || flight_ || resume_) return false;
  FillFlight* f = rs_->fill.flight();
  if (!f || f->followers() == 0 || !rs_->exchange.active()) return false;
  if (rs_->access.active) {
    write_access();  // the state goes to the engine: its line is written now
    rs_->access.active = false;
  }
  FillEngine::adopt(worker_, rs_, rt_, *f, resp_started_);
  rs_ = nullptr;
  return true;
}

void ClientConn::fill_go_solo() {
  fill_solo_ = true;
  const RuntimePool& pool = *rs_->head.pool;
  // It goes upstream after all: only now is it a miss (a follower served is a hit).
  pool.cache->local().misses.fetch_add(1, std::memory_order_relaxed);
  // Its own miss: it may fill the cache itself (no flight attached).
  std::string_view path = rs_->head.forward, query;
  if (size_t q = path.find('?'); q != std::string_view::npos) {
    query = path.substr(q + 1);
    path = path.substr(0, q);
  }
  ReqFacts facts = req_facts(rs_->head.headers);
  CacheVerdict v =
      classify(pool.cache->rules(), "GET", path, query, facts, pool.cache->known_tip());
  if (v.cacheable())
    rs_->fill.begin(pool.cache, v, cache_key(pool.salt, rs_->cache_canonical), rs_->cache_canonical,
                    worker_.state().buffers);
  place_request();
}

void ClientConn::fill_flight_end(const FillResult& r) {
  fill_flight_ = nullptr;
  if (closing_ || !rs_ || phase_ != Phase::placing) return;
  const RuntimePool& pool = *rs_->head.pool;
  const SessionKey* user = rs_->head.has_key ? &rs_->head.key : nullptr;
  switch (r.kind) {
    case FillResult::Kind::stored: {
      bool not_modified = false;
      HeaderLookup inm = find_header(rs_->head.headers, "if-none-match");
      if (inm.found) not_modified = if_none_match(inm.value, r.entry->etag);
      pool.cache->local().collapsed.fetch_add(1, std::memory_order_relaxed);
      serve_hit(pool, r.entry, user, not_modified, worker_.deadlines().now());
      break;
    }
    case FillResult::Kind::unstored: {
      // A copy only for a user pinned to the backend that made it (peeked: no pin made).
      std::optional<Pin> pin;
      if (user) pin = worker_.state().sessions.peek(pool_session_key(*user, pool.salt));
      if (r.copy && r.has_producer && pin && pin->backend == r.producer)
        serve_copy(pool, r.copy);
      else
        fill_go_solo();
      break;
    }
    case FillResult::Kind::solo:
      fill_go_solo();
      break;
    case FillResult::Kind::aborted:
      reply_local(503, "corral is shutting down", true, "Retry-After: 1\r\n");
      break;
  }
  // As after a parked placement: what was read meanwhile is processed now.
  if (closing_ || phase_ == Phase::placing) return;
  stream_->hold_input(false);
  process();
}

}  // namespace lb::net
