#pragma once
// The control loop's side of the shared pin store (issue 15): one command link for the
// fleet counts (fleet_sync every sync_interval), the flush of PendingWrites once Redis is
// back, and one subscriber link for other instances' re-pins (<prefix>pins: drop our
// cached copy) and quota cool-downs (<prefix>quota). Its link's state is the store's state
// in /status (StoreShared::state). Control thread only.
#include <uv.h>

#include <memory>

namespace lb::net {

struct ProxyState;
struct Runtime;

class StoreControl {
 public:
  StoreControl(uv_loop_t* loop, ProxyState& state);
  // Closes the links and timers; the loop must run once more to finish closing them.
  ~StoreControl();
  StoreControl(const StoreControl&) = delete;
  StoreControl& operator=(const StoreControl&) = delete;

  // At start and after every reload: connects, reconnects (address or password changed)
  // or closes (no store); re-arms the sync timer for sync_interval.
  void configure(const Runtime& rt);

  // For tests and /status: the subscriber link has both channels confirmed by Redis.
  bool subscribed() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lb::net
