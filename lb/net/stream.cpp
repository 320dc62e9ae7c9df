#include "lb/net/stream.h"

#include <cstring>

namespace lb::net {

void Stream::consume(size_t n) {
  if (!in_) return;
  in_->start += n;
  if (in_->empty() && !held_) drop_input();
}

void Stream::hold_input(bool on) {
  held_ = on;
  if (!on && in_ && in_->empty()) drop_input();
}

void Stream::drop_input() {
  if (!in_) return;
  pool_->release(in_);
  in_ = nullptr;
}

void Stream::compact_input() {
  if (!in_ || held_ || in_->start == 0) return;
  std::memmove(in_->data(), in_->begin(), in_->size());
  in_->end -= in_->start;
  in_->start = 0;
}

char* Stream::read_space(size_t& len) {
  if (!in_) in_ = exempt_ ? pool_->acquire() : pool_->try_acquire();
  if (!in_) {
    len = 0;
    return nullptr;
  }
  if (in_->room() == 0) compact_input();  // consumed bytes are gone: room at the end
  len = in_->room();
  return in_->data() + in_->end;
}

}  // namespace lb::net
