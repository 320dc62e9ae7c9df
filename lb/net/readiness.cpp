#include "lb/net/readiness.h"

#include <algorithm>

#include "lb/net/log.h"
#include "lb/net/sd_notify.h"

namespace lb::net {
namespace {
// Readiness is checked this often while waiting: short next to any probe timeout.
constexpr uint64_t kCheckMs = 20;
constexpr uint64_t kSlackMs = 250;
}  // namespace

Readiness::Readiness(uv_loop_t* loop, std::function<bool()> done,
                     std::function<std::string()> status)
    : loop_(loop), done_(std::move(done)), status_(std::move(status)) {}

Readiness::~Readiness() { close(); }

uint64_t Readiness::bound_for(uint64_t interval_ms, uint64_t timeout_ms) {
  return std::min(interval_ms / 5 + timeout_ms + kSlackMs, kMaxWaitMs);
}

void Readiness::start(uint64_t bound_ms) {
  deadline_ms_ = uv_now(loop_) + bound_ms;
  // A long wait says so, so that a tight TimeoutStartSec= does not end it (the margin
  // covers sending READY=1 once it elapsed).
  if (bound_ms > kExtendAfterMs) notify_extend(bound_ms + kExtendAfterMs);
  timer_ = new uv_timer_t;
  uv_timer_init(loop_, timer_);
  timer_->data = this;
  check();
  if (!ready_) uv_timer_start(timer_, &Readiness::on_timer, kCheckMs, kCheckMs);
}

void Readiness::close() {
  if (timer_ == nullptr) return;
  uv_close(reinterpret_cast<uv_handle_t*>(timer_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  timer_ = nullptr;
}

void Readiness::on_timer(uv_timer_t* t) { static_cast<Readiness*>(t->data)->check(); }

void Readiness::check() {
  if (ready_) return;
  const bool done = done_();
  if (!done && uv_now(loop_) < deadline_ms_) return;
  ready_ = true;
  std::string status = status_();
  if (!done) status += " (first health probes unanswered; states settle as they come)";
  notify_ready(status);
  logf(LogLevel::info, "ready: %s", status.c_str());
  close();
}

}  // namespace lb::net
