#include "lb/core/regression.h"

#include "lb/core/retry_policy.h"

namespace lb {

// A regression is a checkpoint strictly older than what the user saw; a user with no
// known slot, or an answer without a checkpoint, cannot regress. Sending a request twice
// is harmless only for idempotent methods (RFC 9110 §9.2.2), and only while the client
// has seen nothing and every byte of the request is still ours.
RegressionAction decide_regression(const RegressionFacts& x) {
  if (!x.has_checkpoint || x.last_slot == 0 || x.checkpoint >= x.last_slot)
    return RegressionAction::none;
  if (x.response_started || !x.whole || !idempotent_method(x.method) ||
      x.resends >= kMaxRegressionResends)
    return RegressionAction::forward;
  return RegressionAction::resend;
}

}  // namespace lb
