#pragma once
// Coarse per-worker deadlines: one timer per worker ticks every kTickMs and fires the
// connections whose deadline has passed. Setting or moving a deadline is a store, not a
// timer restart (a uv_timer_start/stop pair per request showed up in profiles), and an
// idle connection carries three words instead of a uv_timer_t. Deadlines fire up to one
// tick late, which no timeout here needs to be finer than.
#include <uv.h>

#include <cstdint>
#include <vector>

namespace lb::net {

class Deadlines {
 public:
  static constexpr uint64_t kTickMs = 50;

  struct Entry {
    Entry* prev = nullptr;
    Entry* next = nullptr;
    uint64_t at_ms = 0;  // 0: not set
    void (*fire)(void* owner) = nullptr;
    void* owner = nullptr;
    bool armed() const { return at_ms != 0; }
  };

  explicit Deadlines(uv_loop_t* loop);
  ~Deadlines();
  Deadlines(const Deadlines&) = delete;
  Deadlines& operator=(const Deadlines&) = delete;

  // Fires e.fire(e.owner) once at or after now + ms (replacing any earlier setting).
  void set(Entry& e, uint64_t ms);
  void clear(Entry& e);
  uint64_t now() const { return uv_now(loop_); }
  // Stops the tick timer (worker shutting down).
  void close();
  size_t armed_count() const { return count_; }

 private:
  static void on_tick(uv_timer_t* t);
  void link(Entry& e);
  void unlink(Entry& e);

  uv_loop_t* loop_;
  uv_timer_t timer_{};
  Entry head_;  // sentinel of a circular list
  size_t count_ = 0;
  std::vector<Entry*> due_;
  bool ticking_ = false;
};

}  // namespace lb::net
