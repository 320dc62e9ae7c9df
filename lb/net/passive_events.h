#pragma once
// What workers saw on live traffic that health cares about, handed to the control loop
// (DESIGN.md "Health", passive observation). Workers post only the interesting events
// (a 503, the first other answer after 503s, a failed exchange), so a healthy fleet
// posts nothing; the control loop owns the state machines and drains the queue.
#include <uv.h>

#include <cstdint>
#include <mutex>
#include <vector>

#include "lb/core/session_table.h"

namespace lb::net {

struct PassiveEvent {
  BackendRef backend = 0;
  int status = 0;  // HTTP status of a response, or 0 for a failure (refused/reset/timeout)
};

class PassiveEvents {
 public:
  // Thread-safe; wakes the control loop.
  void post(PassiveEvent e);
  // Control loop: takes everything posted so far.
  void drain(std::vector<PassiveEvent>& out);
  void set_wakeup(uv_async_t* async) { async_ = async; }

 private:
  std::mutex mu_;
  std::vector<PassiveEvent> queue_;
  uv_async_t* async_ = nullptr;
};

}  // namespace lb::net
