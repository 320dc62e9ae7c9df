#pragma once
// Fork detection by weighted vote (issue 13), pure. Each round, every backend of a pool
// that answered names the block it holds at one common point (a checkpoint at least
// fork_depth_slots below the lowest tip, so ordinary rollbacks of the last blocks do not
// count). The value held by a strict majority of the weight among those that answered
// wins; a backend outside it is marked forked once it has disagreed in two rounds in a
// row, and unmarked as soon as it agrees again. Without a strict majority nobody's mark
// changes: the caller logs and counts it.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace health {

// One backend's answer in a round: what it holds at the common point (e.g.
// "slot:header_hash"), or nothing (no answer, not asked).
struct Ballot {
  std::optional<std::string> value;
  uint32_t weight = 1;
};

enum class ForkResult : uint8_t {
  none,         // fewer than two answers: nothing to compare
  agree,        // every answer is the same
  disagree,     // a strict majority exists and someone is outside it
  no_majority,  // answers differ and no value holds more than half the weight
};
const char* fork_result_name(ForkResult r);

struct Tally {
  ForkResult result = ForkResult::none;
  std::optional<std::string> majority;  // the winning value (agree, disagree)
  uint64_t majority_weight = 0;         // the weight that holds it
  uint64_t answered_weight = 0;         // the weight of every ballot with a value
};

// Ballots about one slot (a shared tip, or a checkpoint live traffic saw).
struct SlotRound {
  uint64_t slot = 0;
  std::vector<Ballot> ballots;  // one per member; members without a value abstain
};

// Counts one round's ballots.
Tally tally(std::span<const Ballot> ballots);

// A backend's memory between rounds.
struct ForkMark {
  uint32_t disagreements = 0;  // consecutive rounds outside the majority
  bool forked = false;
};

// Applies one round to each backend's mark (marks[i] for ballots[i]): outside a decided
// majority twice in a row -> forked; inside it -> cleared. No answer, or a round without
// a decision, leaves the mark as it was. Returns the tally.
// `quorum_weight` (0: none): the weight of every member that may vote. When the ballots
// come only from the members that happen to hold one slot (a shared tip, live traffic's
// checkpoints), those may be a minority of the pool, even a forked one: unless the
// ballots, and the winner among them, hold more than half of the quorum, the round
// decides nothing (result none, no mark changes).
Tally vote(std::span<const Ballot> ballots, std::span<ForkMark> marks, uint64_t quorum_weight = 0);

}  // namespace health
