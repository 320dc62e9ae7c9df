#include "lb/net/deadlines.h"

namespace lb::net {

Deadlines::Deadlines(uv_loop_t* loop) : loop_(loop) {
  head_.prev = head_.next = &head_;
  uv_timer_init(loop, &timer_);
  timer_.data = this;
}

Deadlines::~Deadlines() = default;

void Deadlines::close() {
  uv_timer_stop(&timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

void Deadlines::link(Entry& e) {
  e.prev = head_.prev;
  e.next = &head_;
  head_.prev->next = &e;
  head_.prev = &e;
  if (count_++ == 0 && !ticking_) {
    ticking_ = true;
    uv_timer_start(&timer_, &Deadlines::on_tick, kTickMs, kTickMs);
  }
}

void Deadlines::unlink(Entry& e) {
  e.prev->next = e.next;
  e.next->prev = e.prev;
  e.prev = e.next = nullptr;
  --count_;
}

void Deadlines::set(Entry& e, uint64_t ms) {
  if (!e.armed()) link(e);
  e.at_ms = now() + (ms ? ms : 1);
}

void Deadlines::clear(Entry& e) {
  if (!e.armed()) return;
  unlink(e);
  e.at_ms = 0;
}

void Deadlines::on_tick(uv_timer_t* t) {
  auto* d = static_cast<Deadlines*>(t->data);
  uint64_t now = d->now();
  d->due_.clear();
  for (Entry* e = d->head_.next; e != &d->head_; e = e->next)
    if (e->at_ms <= now) d->due_.push_back(e);
  // Firing can clear or move other entries (a client closing its upstream); each is
  // checked again before it fires. Memory of closed connections is freed only in libuv
  // close callbacks, after this tick.
  for (Entry* e : d->due_) {
    if (!e->armed() || e->at_ms > now) continue;
    d->clear(*e);
    e->fire(e->owner);
  }
  if (d->count_ == 0) {
    d->ticking_ = false;
    uv_timer_stop(&d->timer_);
  }
}

}  // namespace lb::net
