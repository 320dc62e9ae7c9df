#include "health/fork_vote.h"

#include <algorithm>
#include <map>

namespace health {

constexpr uint32_t kRoundsToMark = 2;  // a disagreement must be seen twice in a row

const char* fork_result_name(ForkResult r) {
  switch (r) {
    case ForkResult::none:
      return "none";
    case ForkResult::agree:
      return "agree";
    case ForkResult::disagree:
      return "disagree";
    case ForkResult::no_majority:
      return "no_majority";
  }
  return "unknown";
}

// Weights are summed in 64 bits: a thousand backends of weight 1000 cannot overflow.
// "Strict majority" is 2 * w > total, so an even split (1:1, 2:2) decides nothing.
Tally tally(std::span<const Ballot> ballots) {
  std::map<std::string, uint64_t> weight_of;
  uint64_t total = 0;
  size_t answers = 0;
  for (const Ballot& b : ballots) {
    if (!b.value) continue;
    ++answers;
    total += b.weight;
    weight_of[*b.value] += b.weight;
  }
  Tally t;
  t.answered_weight = total;
  if (answers < 2) return t;
  if (weight_of.size() == 1) {
    t.result = ForkResult::agree;
    t.majority = weight_of.begin()->first;
    t.majority_weight = total;
    return t;
  }
  auto top = std::max_element(weight_of.begin(), weight_of.end(),
                              [](const auto& a, const auto& b) { return a.second < b.second; });
  if (2 * top->second > total) {
    t.result = ForkResult::disagree;
    t.majority = top->first;
    t.majority_weight = top->second;
  } else {
    t.result = ForkResult::no_majority;
  }
  return t;
}

Tally vote(std::span<const Ballot> ballots, std::span<ForkMark> marks, uint64_t quorum_weight) {
  const Tally t = tally(ballots);
  if (quorum_weight != 0 && (2 * t.answered_weight <= quorum_weight ||
                             (t.majority && 2 * t.majority_weight <= quorum_weight)))
    return Tally{};
  if (!t.majority) return t;
  const size_t n = std::min(ballots.size(), marks.size());
  for (size_t i = 0; i < n; ++i) {
    if (!ballots[i].value) continue;
    ForkMark& m = marks[i];
    if (*ballots[i].value == *t.majority) {
      m = ForkMark{};
    } else {
      m.disagreements = std::min<uint32_t>(m.disagreements + 1, kRoundsToMark);
      if (m.disagreements >= kRoundsToMark) m.forked = true;
    }
  }
  return t;
}

}  // namespace health
