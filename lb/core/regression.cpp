#include "lb/core/regression.h"

#include "lb/core/retry_policy.h"

namespace lb {

// A regression is a checkpoint strictly older than what the user saw; a user with no
// known slot, or an answer without a checkpoint, cannot regress. The regressed backend
// has already carried the request out, so a second instance may run it again only when
// that changes nothing: safe methods (RFC 9110 §9.2.1; a PUT or DELETE is idempotent on
// one server, not across two), and only while the client has seen nothing and every byte
// of the request is still ours.
RegressionAction decide_regression(const RegressionFacts& x) {
  if (!x.has_checkpoint || x.last_slot == 0 || x.checkpoint >= x.last_slot)
    return RegressionAction::none;
  if (x.response_started || !x.whole || !safe_method(x.method) ||
      x.resends >= kMaxRegressionResends)
    return RegressionAction::forward;
  return RegressionAction::resend;
}

}  // namespace lb
