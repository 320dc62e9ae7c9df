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

// What live traffic showed: an answer (by status), a failure that counts toward `down`
// (connect refused or timed out, reset), or a response timeout, which only ever counts
// like a 503 (a client chooses how slow its query is).
enum class PassiveKind : uint8_t { response, failure, response_timeout };

struct PassiveEvent {
  BackendRef backend = 0;
  int status = 0;  // HTTP status of a response; 0 for the other kinds
  PassiveKind kind = PassiveKind::response;
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
