#include "lb/net/passive_events.h"

namespace lb::net {

void PassiveEvents::post(PassiveEvent e) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(e);
  }
  if (async_) uv_async_send(async_);
}

void PassiveEvents::drain(std::vector<PassiveEvent>& out) {
  out.clear();
  std::lock_guard lock(mu_);
  out.swap(queue_);
}

}  // namespace lb::net
