// The exchange's part in "users move forward, never back" (DESIGN.md "Behaviour"): a move
// counted by reason and logged, and an answer older than its user's last checkpoint
// discarded and re-sent to a backend at or past it (lb/core/regression decides).
#include <string>

#include "lb/core/regression.h"
#include "lb/net/exchange.h"
#include "lb/net/log.h"
#include "lb/net/worker.h"

namespace lb::net {

// Counted on the backend the user moved to: it is in this pool, so remaps per pool sum
// over the pool's backends (removed ones included, Registry::for_each_in_pool). One info
// line per move, under the shared limit (a whole pool's users may move at once).
void Exchange::note_move(const Decision& d, BackendRef from) {
  const RuntimeBackend& to = pool_->backends[d.index];
  BackendShard& sh = to.stats->local();
  std::atomic<uint64_t>* counter = &sh.remaps_down;
  switch (d.reason) {
    case MoveReason::removed:
      counter = &sh.remaps_removed;
      break;
    case MoveReason::admin:
      counter = &sh.remaps_admin;
      break;
    case MoveReason::lag:
      counter = &sh.remaps_lag;
      break;
    case MoveReason::fork:
      counter = &sh.remaps_fork;
      break;
    case MoveReason::stale:
      counter = &sh.remaps_stale;
      break;
    case MoveReason::regression:
      counter = &sh.remaps_regression;
      break;
    case MoveReason::down:
    case MoveReason::none:
      break;
  }
  counter->fetch_add(1, std::memory_order_relaxed);
  std::string_view from_name = "(removed)";
  for (const RuntimeBackend& b : pool_->backends)
    if (b.ref == from) from_name = b.name;
  log_event_limited(LogLevel::info, "user moved",
                    {{"pool", pool_->name},
                     {"from", from_name},
                     {"to", to.name},
                     {"reason", move_reason_name(d.reason)}});
}

// DESIGN.md "Users move forward, never back". lb/core/regression decides whether this
// answer may be replaced; placement (require_slot) finds a backend at or past the user's
// slot, other than any that regressed for this request, and re-pins the user there.
bool Exchange::regression(uint64_t checkpoint, uint64_t seen) {
  RegressionFacts f;
  const RetryFacts rf = retry_facts();
  f.last_slot = seen;
  f.has_checkpoint = true;
  f.checkpoint = checkpoint;
  f.method = rf.method;
  f.whole = rf.whole;
  f.response_started = rf.response_started;
  f.resends = regression_resends_;
  BackendShard& sh = backend_->stats->local();
  const std::string cp_text = std::to_string(checkpoint), seen_text = std::to_string(seen);
  const char* why = "request cannot be re-sent (not GET/HEAD/OPTIONS, a body, or the answer began)";
  if (f.resends >= kMaxRegressionResends) why = "re-sent as often as allowed";
  if (decide_regression(f) == RegressionAction::resend) {
    why = "no backend at or past the user's slot";
    failed_.add(backend_->ref);
    Decision d = place_excluding(failed_, true, MoveReason::regression, true);
    if (d.kind != Placement::none) {
      if (!regressed_on_) regressed_on_ = backend_->stats.get();
      ++regression_resends_;
      resend_index_ = d.index;
      regressed_checkpoint_ = checkpoint;
      regressed_ = swallow_ = true;  // the rest of this answer is read and dropped
      return true;
    }
  }
  sh.regressions_forwarded.fetch_add(1, std::memory_order_relaxed);
  regressed_on_ = nullptr;  // not prevented after all: every backend tried was behind
  log_event_limited(LogLevel::warn, "answer older than the user's last checkpoint forwarded",
                    {{"pool", pool_->name},
                     {"backend", backend_->name},
                     {"checkpoint", cp_text, true},
                     {"user_slot", seen_text, true},
                     {"why", why}});
  return false;
}

// Called once the head's bytes are read: the connection is closed, not pooled (the rest
// of the answer may still be on its way), and the request goes where placement said.
void Exchange::resend_after_regression() {
  regressed_ = swallow_ = false;
  UpstreamConn* up = up_;
  up_ = nullptr;
  if (up) up->abort();
  end_in_flight();
  Reroute r;
  r.failed = backend_->ref;
  r.why = MoveReason::regression;
  r.require_slot = true;
  r.checkpoint = regressed_checkpoint_;
  if (!client_->exchange_rerouting(r)) return;  // nobody waits (a flight's last left)
  launch(resend_index_);
}

bool Exchange::would_retry_503() const {
  return decide_retry(Failure::status_503, retry_facts()) == RetryAction::failover;
}

void Exchange::start_solo(const Reroute& r) {
  failed_.add(r.failed);
  Decision d = place_excluding(failed_, r.count_move, r.why, r.require_slot);
  if (d.kind == Placement::none) {
    backend_ = nullptr;
    client_->exchange_failed(r.status, r.reason, r.headers);
    return;
  }
  launch(d.index);
}

}  // namespace lb::net
