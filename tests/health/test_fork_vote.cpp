#include <doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "health/fork_vote.h"

using health::Ballot;
using health::ForkMark;
using health::ForkResult;

namespace {

Ballot b(const char* v, uint32_t w = 1) {
  Ballot x;
  if (v) x.value = v;
  x.weight = w;
  return x;
}

}  // namespace

TEST_CASE("fork vote: tally by weight") {
  CHECK(health::tally(std::vector<Ballot>{}).result == ForkResult::none);
  CHECK(health::tally(std::vector<Ballot>{b("a")}).result == ForkResult::none);
  CHECK(health::tally(std::vector<Ballot>{b("a"), b(nullptr)}).result == ForkResult::none);
  auto t = health::tally(std::vector<Ballot>{b("a"), b("a"), b(nullptr)});
  CHECK(t.result == ForkResult::agree);
  CHECK(t.majority == std::optional<std::string>("a"));
  t = health::tally(std::vector<Ballot>{b("a"), b("a"), b("x")});
  CHECK(t.result == ForkResult::disagree);
  CHECK(t.majority == std::optional<std::string>("a"));
  // Weight, not heads: one backend of weight 3 outvotes two of weight 1.
  t = health::tally(std::vector<Ballot>{b("a"), b("a"), b("x", 3)});
  CHECK(t.result == ForkResult::disagree);
  CHECK(t.majority == std::optional<std::string>("x"));
  // Ties and pluralities decide nothing: a strict majority of the weight is needed.
  CHECK(health::tally(std::vector<Ballot>{b("a"), b("x")}).result == ForkResult::no_majority);
  CHECK(health::tally(std::vector<Ballot>{b("a", 2), b("x"), b("y")}).result ==
        ForkResult::no_majority);
  CHECK(health::tally(std::vector<Ballot>{b("a", 2), b("x"), b("y"), b(nullptr, 9)}).result ==
        ForkResult::no_majority);
  // Abstentions do not count toward the total.
  CHECK(health::tally(std::vector<Ballot>{b("a", 2), b("x"), b(nullptr, 9)}).result ==
        ForkResult::disagree);
}

TEST_CASE("fork vote: two rounds in a row mark, one agreement heals") {
  std::vector<ForkMark> m(3);
  const std::vector<Ballot> split = {b("a"), b("a"), b("x")};
  CHECK(health::vote(split, m).result == ForkResult::disagree);
  CHECK_FALSE(m[2].forked);  // one round is not enough (a rollback in flight)
  CHECK(m[2].disagreements == 1);
  health::vote(split, m);
  CHECK(m[2].forked);
  CHECK_FALSE(m[0].forked);
  CHECK_FALSE(m[1].forked);
  // Staying outside keeps it marked.
  health::vote(split, m);
  CHECK(m[2].forked);
  // Agreeing again clears the mark at once.
  CHECK(health::vote(std::vector<Ballot>{b("a"), b("a"), b("a")}, m).result == ForkResult::agree);
  CHECK_FALSE(m[2].forked);
  CHECK(m[2].disagreements == 0);
}

TEST_CASE("fork vote: an agreement between two disagreements restarts the count") {
  std::vector<ForkMark> m(3);
  health::vote(std::vector<Ballot>{b("a"), b("a"), b("x")}, m);
  health::vote(std::vector<Ballot>{b("a"), b("a"), b("a")}, m);
  health::vote(std::vector<Ballot>{b("a"), b("a"), b("x")}, m);
  CHECK_FALSE(m[2].forked);
}

TEST_CASE("fork vote: abstaining and undecided rounds change no mark") {
  std::vector<ForkMark> m(3);
  health::vote(std::vector<Ballot>{b("a"), b("a"), b("x")}, m);
  // Member 2 does not answer: its streak waits, neither broken nor advanced.
  health::vote(std::vector<Ballot>{b("a"), b("a"), b(nullptr)}, m);
  CHECK(m[2].disagreements == 1);
  CHECK_FALSE(m[2].forked);
  health::vote(std::vector<Ballot>{b("a"), b("a"), b("x")}, m);
  CHECK(m[2].forked);
  // No majority: nobody is marked or healed.
  std::vector<ForkMark> n(2);
  for (int i = 0; i < 3; ++i)
    CHECK(health::vote(std::vector<Ballot>{b("a"), b("x")}, n).result == ForkResult::no_majority);
  CHECK_FALSE(n[0].forked);
  CHECK_FALSE(n[1].forked);
  CHECK(n[1].disagreements == 0);
  health::vote(std::vector<Ballot>{b("a"), b("x")}, m);  // a tie after the mark
  CHECK(m[2].forked);
}

TEST_CASE("fork vote: the minority by weight is the one marked") {
  std::vector<ForkMark> m(3);
  const std::vector<Ballot> r = {b("a"), b("a"), b("x", 5)};
  health::vote(r, m);
  health::vote(r, m);
  CHECK(m[0].forked);
  CHECK(m[1].forked);
  CHECK_FALSE(m[2].forked);
  CHECK(std::string(health::fork_result_name(ForkResult::no_majority)) == "no_majority");
}
