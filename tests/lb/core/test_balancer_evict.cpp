// Issue 13, users move forward: placement of users whose backend chain-aware health
// evicts (lag, fork, stale), and of a request re-sent after a regression (require_slot).
#include <doctest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lb/core/balancer.h"
#include "lb/core/session_key.h"
#include "tests/lb/core/selector_fixtures.h"

using namespace lb;
using selector_test::mix_key;

namespace {

constexpr BackendRef kBase = 40;  // refs differ from indices

struct Pool {
  std::vector<Candidate> c;
  std::unique_ptr<const Selector> selector;

  explicit Pool(size_t n) {
    std::vector<SelectorBackend> sb;
    for (size_t i = 0; i < n; ++i) {
      Candidate x;
      x.ref = kBase + static_cast<BackendRef>(i);
      c.push_back(x);
      sb.push_back({name_hash("e" + std::to_string(i + 1)), 1});
    }
    selector = make_selector(SelectorKind::rendezvous, sb);
  }
  PoolView view() const { return {c, selector.get(), 0.0, 0}; }
  PlacementRequest pinned(uint64_t key, size_t to, uint64_t last_slot) const {
    PlacementRequest r;
    r.hash = mix_key(key);
    r.has_pin = true;
    r.pinned_to = kBase + static_cast<BackendRef>(to);
    r.last_slot = last_slot;
    return r;
  }
};

}  // namespace

TEST_CASE("evict: names of the chain-aware move reasons") {
  CHECK(std::string(move_reason_name(MoveReason::lag)) == "lag");
  CHECK(std::string(move_reason_name(MoveReason::fork)) == "fork");
  CHECK(std::string(move_reason_name(MoveReason::stale)) == "stale");
  CHECK(std::string(move_reason_name(MoveReason::regression)) == "regression");
}

TEST_CASE("evict: a pinned user of an evicted backend moves forward, with the eviction's reason") {
  for (MoveReason why : {MoveReason::lag, MoveReason::fork, MoveReason::stale}) {
    Pool p(4);
    p.c[0].evict = why;
    p.c[0].state = BackendState::draining;  // health drains a lagging backend as well
    p.c[0].tip_slot = 500;
    p.c[1].tip_slot = 800;   // behind the user
    p.c[2].tip_slot = 1000;  // at the user's slot
    p.c[3].tip_slot = 1200;
    std::vector<int> got(4, 0);
    for (uint64_t k = 0; k < 2000; ++k) {
      PlacementRequest r = p.pinned(k, 0, 1000);
      CHECK_FALSE(keep_pin(p.c, r).has_value());
      Decision d = place(p.view(), r);
      REQUIRE(d.kind == Placement::moved);
      CHECK(d.reason == why);
      CHECK(d.min_slot == 1000);
      ++got[d.index];
    }
    CHECK(got[0] == 0);
    CHECK(got[1] == 0);  // behind the user while others are at or past its slot
    CHECK(got[2] > 500);
    CHECK(got[3] > 500);
  }
}

TEST_CASE("evict: a backend down on a fork moves its users for fork, not down") {
  Pool p(3);
  p.c[1].state = BackendState::down;
  p.c[1].evict = MoveReason::fork;
  Decision d = place(p.view(), p.pinned(7, 1, 0));
  REQUIRE(d.kind == Placement::moved);
  CHECK(d.reason == MoveReason::fork);
  CHECK(d.index != 1);
  // Without the eviction it is the plain down move.
  p.c[1].evict = MoveReason::none;
  CHECK(place(p.view(), p.pinned(7, 1, 0)).reason == MoveReason::down);
  // An operator's override still names itself.
  p.c[1].evict = MoveReason::fork;
  p.c[1].admin = true;
  CHECK(place(p.view(), p.pinned(7, 1, 0)).reason == MoveReason::admin);
}

TEST_CASE("evict: an evicted backend takes no new or moved users while another can") {
  Pool p(3);
  p.c[0].evict = MoveReason::stale;  // still up by health's state alone
  p.c[2].state = BackendState::down;
  for (uint64_t k = 0; k < 500; ++k) {
    PlacementRequest fresh;
    fresh.hash = mix_key(k);
    CHECK(place(p.view(), fresh).index == 1);
    CHECK(place(p.view(), p.pinned(k, 2, 0)).index == 1);
  }
}

TEST_CASE("evict: an evicted pin with nowhere else to go stays, not a move in place") {
  Pool p(2);
  p.c[0].evict = MoveReason::lag;
  p.c[1].state = BackendState::down;
  Decision d = place(p.view(), p.pinned(3, 0, 100));
  CHECK(d.kind == Placement::pinned);
  CHECK(d.index == 0);
  CHECK(d.reason == MoveReason::none);
}

TEST_CASE("evict: lag below move_lag_slots (draining, no eviction) keeps pinned users") {
  Pool p(3);
  p.c[0].state = BackendState::draining;
  std::optional<Decision> d = keep_pin(p.c, p.pinned(1, 0, 100));
  REQUIRE(d.has_value());
  CHECK(d->kind == Placement::pinned);
  CHECK(d->index == 0);
}

TEST_CASE("regression resend: the excluded pin gives reason regression, only caught-up targets") {
  Pool p(4);
  p.c[0].tip_slot = 1000;  // answered older than the user's slot: excluded
  p.c[1].tip_slot = 900;   // up but behind
  p.c[2].tip_slot = 1000;  // draining, at the slot
  p.c[2].state = BackendState::draining;
  p.c[3].tip_slot = 900;
  for (uint64_t k = 0; k < 300; ++k) {
    PlacementRequest r = p.pinned(k, 0, 1000);
    r.exclude = ExcludedBackends(kBase);
    r.excluded_reason = MoveReason::regression;
    r.require_slot = true;
    Decision d = place(p.view(), r);
    REQUIRE(d.kind == Placement::moved);
    CHECK(d.reason == MoveReason::regression);
    CHECK(d.index == 2);  // the only one at the slot, draining or not
    // Without require_slot an up backend behind would beat the draining one.
    r.require_slot = false;
    CHECK(place(p.view(), r).index != 2);
  }
  // Nobody at or past the slot: none, so the caller forwards the answer.
  p.c[2].tip_slot = 999;
  PlacementRequest r = p.pinned(5, 0, 1000);
  r.exclude = ExcludedBackends(kBase);
  r.excluded_reason = MoveReason::regression;
  r.require_slot = true;
  CHECK(place(p.view(), r).kind == Placement::none);
}
