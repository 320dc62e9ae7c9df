// Flight, second half: the decoded body fanned out to every waiter, the window that holds
// what a full waiter has not taken yet (at most Worker::max_pending() bytes), detaching a
// waiter that falls behind, pausing upstream only while every waiter is full, and the end.
#include <algorithm>

#include "lb/net/client_conn.h"
#include "lb/net/flight.h"
#include "lb/net/pool_cache.h"
#include "lb/net/worker.h"

namespace lb::net {

uint64_t Flight::lowest_delivered() const {
  uint64_t lo = total_;
  for (const Seat& s : seats_)
    if (s.w) lo = std::min(lo, s.delivered);
  return lo;
}

void Flight::exchange_body(const char* data, size_t len) {
  Guard g(*this);
  if (len == 0) return;
  const uint64_t start = total_;
  total_ += len;
  // Straight to everyone who is caught up and can take it: no copy in the common case.
  for (size_t i = 0; i < seats_.size(); ++i) {
    Seat& s = seats_[i];
    if (!s.w || s.delivered != start || s.w->flight_full()) continue;
    s.delivered = s.fed_at = total_;
    s.w->flight_body(data, len);
  }
  if (lowest_delivered() >= total_) {
    window_.clear();
    base_ = total_;
  } else {
    window_.append(data, len);  // window_ covers [base_, total_)
    // A behind waiter whose queue went down (but not empty, so no on_drained) takes more
    // now: one reading at the pace of the others never falls a whole queue behind.
    for (size_t i = 0; i < seats_.size(); ++i)
      if (seats_[i].w && seats_[i].delivered < total_) feed(seats_[i]);
    trim_and_detach();
  }
  update_pause();
}

void Flight::feed(Seat& s) {
  // In slices of a buffer, so one waiter's catch-up never queues more than it may hold.
  const uint64_t slice = std::max<uint64_t>(1, limit_ / 4);
  while (s.w && s.delivered < total_ && !s.w->flight_full()) {
    uint64_t n = std::min<uint64_t>(total_ - s.delivered, slice);
    const char* at = window_.data() + (s.delivered - base_);
    s.delivered += n;
    s.fed_at = total_;
    s.w->flight_body(at, static_cast<size_t>(n));
  }
}

void Flight::drained(FlightWaiter& w) {
  Guard g(*this);
  Seat* s = seat_of(w);
  if (!s) return;
  feed(*s);
  trim_and_detach();
  finish_caught_up();
  update_pause();
}

// Drops what every waiter has, then, while the window is over its soft bound (3/4 of the
// window: one more read of at most a buffer keeps it within limit_), detaches the slow
// followers: full, behind a faster one, and taking nothing while the flight received more
// than that bound. A follower at the others' pace that is full for a moment is not slow:
// upstream pauses for it instead (update_pause), as for a slow leader, whose state is the
// engine's and who is never detached.
void Flight::trim_and_detach(bool stalled) {
  uint64_t lo = lowest_delivered();
  if (total_ - lo > soft_limit()) {
    uint64_t hi = 0;
    for (const Seat& s : seats_)
      if (s.w) hi = std::max(hi, s.delivered);
    for (size_t i = 0; i < seats_.size(); ++i) {
      Seat& s = seats_[i];
      if (!s.w || s.leader || s.delivered >= hi ||
          (!stalled && total_ - s.fed_at <= soft_limit()) || !s.w->flight_full())
        continue;
      FlightWaiter* w = s.w;
      uint64_t skip = s.delivered;
      unseat(s);
      w->flight_detached(facts_, skip, backend_);
    }
  }
  lo = std::min(lowest_delivered(), total_);
  if (lo > base_) {
    window_.erase(0, static_cast<size_t>(std::min<uint64_t>(lo - base_, window_.size())));
    base_ = lo;
  }
  if (live_ == 0) {
    window_.clear();
    base_ = total_;
  }
  held_peak_ = std::max(held_peak_, window_.size());
}

// Upstream waits only while the fastest waiter is full too, or while the window is past
// its soft bound (a slow leader, who is never detached).
void Flight::update_pause() {
  if (!engine_running_ || !engine_) {
    worker_.deadlines().clear(stall_);
    return;
  }
  bool all_full = live_ > 0;
  for (const Seat& s : seats_)
    if (s.w && !s.w->flight_full()) all_full = false;
  bool hold = all_full || total_ - lowest_delivered() > soft_limit();
  // Held for a laggard while others could read: it has kStallMs to catch up.
  if (hold && !all_full) {
    if (!stall_.armed()) worker_.deadlines().set(stall_, kStallMs);
  } else {
    worker_.deadlines().clear(stall_);
  }
  if (hold && !paused_) {
    paused_ = true;
    engine_->exchange.pause_response();
  } else if (!hold && paused_) {
    paused_ = false;
    engine_->exchange.resume_response();
  }
}

void Flight::on_stall(void* self) {
  Flight& f = *static_cast<Flight*>(self);
  Guard g(f);
  // A follower that read a little since (its queue not empty: no on_drained) takes what
  // it can now; one still behind after that is full, and goes.
  for (size_t i = 0; i < f.seats_.size(); ++i)
    if (f.seats_[i].w && f.seats_[i].delivered < f.total_) f.feed(f.seats_[i]);
  f.trim_and_detach(true);
  f.finish_caught_up();
  f.update_pause();
}

void Flight::count_served(const Seat& s) {
  if (!s.leader && cache_) cache_->local().collapsed.fetch_add(1, std::memory_order_relaxed);
}

// The answer is complete: every waiter that has it all is done; the others are done when
// they have drained the window.
void Flight::finish_caught_up() {
  if (!engine_done_) return;
  for (size_t i = 0; i < seats_.size(); ++i) {
    Seat& s = seats_[i];
    if (!s.w || s.delivered != total_) continue;
    FlightWaiter* w = s.w;
    count_served(s);
    unseat(s);
    w->flight_done();
  }
  if (live_ == 0) {
    window_.clear();
    base_ = total_;
  }
}

}  // namespace lb::net
