// lb/core/regression: when an answer older than the user's last slot is replaced.
#include <doctest.h>

#include "lb/core/regression.h"

using namespace lb;

namespace {

RegressionFacts facts(uint64_t seen, uint64_t checkpoint) {
  RegressionFacts f;
  f.last_slot = seen;
  f.has_checkpoint = true;
  f.checkpoint = checkpoint;
  f.method = "GET";
  f.whole = true;
  return f;
}

}  // namespace

TEST_CASE("regression: only a checkpoint strictly older than the user's slot is one") {
  CHECK(decide_regression(facts(1000, 999)) == RegressionAction::resend);
  CHECK(decide_regression(facts(1000, 1000)) == RegressionAction::none);
  CHECK(decide_regression(facts(1000, 1001)) == RegressionAction::none);
  CHECK(decide_regression(facts(0, 5)) == RegressionAction::none);  // user saw nothing yet
  RegressionFacts f = facts(1000, 10);
  f.has_checkpoint = false;  // no header, or not a number
  CHECK(decide_regression(f) == RegressionAction::none);
}

TEST_CASE("regression: safe whole requests are re-sent, others forwarded") {
  for (const char* m : {"GET", "HEAD", "OPTIONS"}) {
    RegressionFacts f = facts(1000, 950);
    f.method = m;
    CHECK(decide_regression(f) == RegressionAction::resend);
  }
  // PUT and DELETE already ran on the backend that answered: not again elsewhere.
  for (const char* m : {"POST", "PATCH", "PUT", "DELETE", "get"}) {
    RegressionFacts f = facts(1000, 950);
    f.method = m;
    CHECK(decide_regression(f) == RegressionAction::forward);
  }
  RegressionFacts body = facts(1000, 950);
  body.whole = false;  // a body streamed through: not ours to send again
  CHECK(decide_regression(body) == RegressionAction::forward);
  RegressionFacts started = facts(1000, 950);
  started.response_started = true;
  CHECK(decide_regression(started) == RegressionAction::forward);
}

TEST_CASE("regression: re-sends are bounded") {
  RegressionFacts f = facts(1000, 950);
  for (uint8_t i = 0; i < kMaxRegressionResends; ++i) {
    f.resends = i;
    CHECK(decide_regression(f) == RegressionAction::resend);
  }
  f.resends = kMaxRegressionResends;
  CHECK(decide_regression(f) == RegressionAction::forward);
}
