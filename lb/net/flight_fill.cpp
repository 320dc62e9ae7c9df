// FillFlight (flight_fill.h): followers of a cacheable miss, released at its end.
#include "lb/net/flight_fill.h"

#include <algorithm>

#include "lb/net/cache_fill.h"
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
}

void FillFlight::end(FillResult r) {
  if (ending_) return;
  ending_ = true;
  // No more joins from here; a follower that goes solo must not find this flight.
  worker_.flights().remove_fill(this);
  if (leader_fill_) leader_fill_->detach_flight();
  leader_fill_ = nullptr;
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

}  // namespace lb::net
