#pragma once
// Users move forward, never back (DESIGN.md "Behaviour"): what to do with a response head
// whose X-Most-Recent-Checkpoint is older than the slot its user has already seen (a
// restarted or rolled-back instance). Pure: the caller supplies the facts.
#include <cstdint>
#include <string_view>

namespace lb {

enum class RegressionAction : uint8_t {
  none,     // not a regression: forward as usual
  resend,   // discard this answer, re-send to a backend at or past the user's slot
  forward,  // a regression that cannot be avoided here: forward it and count it
};

struct RegressionFacts {
  uint64_t last_slot = 0;         // newest slot the user has seen (0 = unknown)
  bool has_checkpoint = false;    // the head carried a valid X-Most-Recent-Checkpoint
  uint64_t checkpoint = 0;        // its slot
  std::string_view method;        // the request's
  bool whole = false;             // the request is complete and bodyless: resendable as is
  bool response_started = false;  // the client has seen part of an answer
  uint8_t resends = 0;            // regressions of this request already re-sent
};

// How many times one request may be re-sent for a regression (each to a backend at or
// past the user's slot, never one that regressed already).
inline constexpr uint8_t kMaxRegressionResends = 2;

// Whether this head is a regression, and if so whether it may be replaced: only a safe
// (GET, HEAD, OPTIONS), whole request whose answer has not started, within kMaxRegressionResends.
// `resend` still needs a backend at or past the user's slot: when placement finds none,
// the caller forwards (the whole pool rolled back).
RegressionAction decide_regression(const RegressionFacts& facts);

}  // namespace lb
