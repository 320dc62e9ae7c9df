// FillFlight (flight_fill.h): followers of a cacheable miss, released at its end.
#include "lb/net/flight_fill.h"

#include <algorithm>

#include "lb/net/cache_fill.h"
#include "lb/net/client_conn.h"
#include "lb/net/flight_table.h"
#include "lb/net/pool_cache.h"
#include "lb/net/worker.h"

namespace lb::net {

FillFlight::FillFlight(Worker& worker, const FlightKey& key, std::shared_ptr<PoolCache> cache)
    : worker_(worker), key_(key), cache_(std::move(cache)) {
  worker_.flights().insert_fill(this);
  if (cache_) cache_->local().flights.fetch_add(1, std::memory_order_relaxed);
}

FillFlight::~FillFlight() {
  worker_.flights().remove_fill(this);
  if (cache_) cache_->local().flights.fetch_sub(1, std::memory_order_relaxed);
}

void FillFlight::leave(FillWaiter& w) {
  auto it = std::find(followers_.begin(), followers_.end(), &w);
  if (it != followers_.end()) followers_.erase(it);
  // Nobody waits any more: only now is the upstream request abandoned (the engine's fill
  // reset ends this flight: nothing may follow).
  if (followers_.empty() && engine_ && !ending_) engine_->cancel();
}

void FillFlight::end(FillResult r) {
  if (ending_) return;
  ending_ = true;
  // No more joins from here; a follower that goes solo must not find this flight.
  worker_.flights().remove_fill(this);
  if (leader_fill_) leader_fill_->detach_flight();
  leader_fill_ = nullptr;
  engine_ = nullptr;  // it ends on its own (the answer is in, or it failed)
  if (r.kind == FillResult::Kind::unstored && has_producer_) {
    r.has_producer = true;
    r.producer = producer_;
  }
  // One at a time from the list: a follower that leaves meanwhile (its own events) is
  // taken out of it and never called.
  while (!followers_.empty()) {
    FillWaiter* w = followers_.front();
    followers_.erase(followers_.begin());
    w->fill_flight_end(r);
  }
  delete this;
}

void FillFlight::abort() {
  FillResult r;
  r.kind = FillResult::Kind::aborted;
  end(std::move(r));
}

// ---- FillEngine ------------------------------------------------------------------------

void FillEngine::adopt(Worker& worker, RequestState* rs, std::shared_ptr<const Runtime> rt,
                       FillFlight& flight, bool head_seen) {
  auto* e = new FillEngine(worker, rs, std::move(rt), head_seen);
  worker.flights().insert_engine(e);
  flight.set_engine(e);
  rs->parser.set_body_sink(nullptr, nullptr);  // it pointed at the leader's connection
  rs->exchange.set_client(*e);
  rs->exchange.resume_response();  // the leader may have paused it (its client was full)
}

const http::MessageParser& FillEngine::request() const { return rs_->parser; }
const std::string& FillEngine::request_head() const { return rs_->req_head; }

void FillEngine::exchange_head(const http::MessageParser& r) {
  if (r.status_code() < 200) return;
  head_seen_ = true;
  const RuntimeBackend* b = rs_->exchange.backend();
  if (FillFlight* f = rs_->fill.flight(); f && b) f->set_producer(b->ref);
  if (b)
    rs_->fill.head(r, b->stats);
  else
    rs_->fill.reset();
}

void FillEngine::exchange_body(const char* data, size_t len) {
  if (rs_->fill.active()) rs_->fill.body(data, len);
}

void FillEngine::exchange_done() {
  rs_->fill.finish(worker_.deadlines().now());  // serves the followers
  release();
}

void FillEngine::exchange_failed(int, const char*, std::string_view) {
  rs_->exchange.abort();
  rs_->fill.reset();  // the followers go solo
  release();
}

void FillEngine::exchange_switched(std::unique_ptr<Stream> upstream) {
  // Unreachable: a cacheable GET asks for no upgrade.
  upstream->close();
  (void)upstream.release();  // the stream frees itself once closed
  rs_->fill.reset();
  release();
}

void FillEngine::cancel() {
  rs_->exchange.cancel();
  FillFlight* f = rs_->fill.flight();
  if (f) f->set_engine(nullptr);
  rs_->fill.reset();
  release();
}

void FillEngine::release() {
  RequestState* rs = rs_;
  Worker& worker = worker_;  // this is freed below
  rs_ = nullptr;
  recycle_request_state(worker, rs);
  worker.flights().remove_engine(this);
  delete this;
  worker.flight_ended();
}

}  // namespace lb::net
