#pragma once
// Checkpoint regressions for `corral-bench load`: per user, the highest
// X-Most-Recent-Checkpoint received so far, shared by every worker thread (a user's
// requests travel over several connections and threads), so an answer older than what the
// user had already seen is counted however it reached them. One atomic u64 per user: the
// slot in the low 63 bits, and the top bit marks a user who has had a regression.
//
// What counts: an answer whose checkpoint is below the highest one its user had received
// when the request was *sent*. That is the causal order a dApp relies on ("I saw slot S, so
// my next query reflects at least S"); the answers of two requests of one user in flight
// at once are not ordered against each other, since nobody could tell which was first.
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

namespace bench {

inline constexpr std::string_view kCheckpointHeader = "X-Most-Recent-Checkpoint";

// A header value as Kupo writes it: decimal digits only, below 2^63 (the top bit is the
// tracker's flag). Anything else: nullopt (not a checkpoint, never a regression).
std::optional<uint64_t> parse_checkpoint(std::string_view v);

class UserCheckpoints {
 public:
  explicit UserCheckpoints(uint32_t users);

  uint32_t users() const { return users_; }
  // The highest checkpoint `user` has received (0: none yet). Read when a request is sent.
  uint64_t seen(uint32_t user) const;
  // Records `slot` received by `user` for a request sent when seen() was `seen_at_send`;
  // raises the user's highest. Returns by how many slots the answer is below
  // `seen_at_send`: 0 when it is not a regression.
  uint64_t receive(uint32_t user, uint64_t seen_at_send, uint64_t slot);
  // Marks `user` as affected (once counted regressions are known to be in the window).
  void mark(uint32_t user);
  // Users marked so far.
  uint64_t users_affected() const;

 private:
  static constexpr uint64_t kFlag = uint64_t{1} << 63;
  uint32_t users_;
  std::unique_ptr<std::atomic<uint64_t>[]> slots_;
};

// What one worker counted (merged by summing; max_slots by max).
struct RegressionCount {
  uint64_t checked = 0;  // answers that carried a checkpoint
  uint64_t answers = 0;  // of those, regressions
  uint64_t max_slots = 0;

  // Adds one checked answer `slots` below its user's (0: no regression).
  void add(uint64_t slots) {
    ++checked;
    if (slots == 0) return;
    ++answers;
    if (slots > max_slots) max_slots = slots;
  }
  void merge(const RegressionCount& o) {
    checked += o.checked;
    answers += o.answers;
    if (o.max_slots > max_slots) max_slots = o.max_slots;
  }
};

}  // namespace bench
