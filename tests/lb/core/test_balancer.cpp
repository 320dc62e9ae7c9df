#include <doctest.h>

#include <algorithm>
#include <cmath>
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

// Refs differ from indices, so a mix-up of the two shows.
constexpr BackendRef kRef0 = 100;

// A pool of backends k1..kn as the balancer sees it, with a weighted rendezvous selector
// built over the same list.
struct Fleet {
  std::vector<Candidate> c;
  std::unique_ptr<const Selector> selector;
  double balance_factor = 1.25;
  uint64_t slow_start_ms = 0;

  explicit Fleet(std::vector<uint32_t> weights, SelectorKind kind = SelectorKind::rendezvous) {
    std::vector<SelectorBackend> sb;
    for (size_t i = 0; i < weights.size(); ++i) {
      Candidate x;
      x.ref = kRef0 + static_cast<BackendRef>(i);
      x.weight = weights[i];
      c.push_back(x);
      sb.push_back({name_hash("k" + std::to_string(i + 1)), weights[i]});
    }
    selector = make_selector(kind, sb);
  }
  explicit Fleet(size_t n) : Fleet(std::vector<uint32_t>(n, 1)) {}

  PoolView view() const { return {c, selector.get(), balance_factor, slow_start_ms}; }

  Decision fresh(uint64_t key, uint64_t now = 0) const {
    PlacementRequest r;
    r.hash = mix_key(key);
    r.now_ms = now;
    return place(view(), r);
  }
  Decision pinned(uint64_t key, size_t to, uint64_t last_slot = 0) const {
    return pinned_ref(key, kRef0 + static_cast<BackendRef>(to), last_slot);
  }
  Decision pinned_ref(uint64_t key, BackendRef to, uint64_t last_slot = 0) const {
    PlacementRequest r;
    r.hash = mix_key(key);
    r.has_pin = true;
    r.pinned_to = to;
    r.last_slot = last_slot;
    return place(view(), r);
  }
};

constexpr int kKeys = 20000;

// |x - target| <= rel × target (doctest's Approx adds a scale of 1, too loose for shares).
bool near(double x, double target, double rel) { return std::fabs(x - target) <= rel * target; }

}  // namespace

TEST_CASE("balancer: move reason names are DESIGN.md's") {
  CHECK(std::string(move_reason_name(MoveReason::down)) == "down");
  CHECK(std::string(move_reason_name(MoveReason::removed)) == "removed");
  CHECK(std::string(move_reason_name(MoveReason::admin)) == "admin");
  CHECK(std::string(move_reason_name(MoveReason::none)) == "none");
}

TEST_CASE("balancer: a pinned user stays on an up or draining backend") {
  Fleet f(4);
  f.c[1].state = BackendState::draining;
  f.c[3].state = BackendState::draining;
  f.c[3].admin = true;  // drained by an operator: still keeps its users
  for (size_t to = 0; to < 4; ++to)
    for (uint64_t k = 0; k < 200; ++k) {
      const Decision d = f.pinned(k, to, 1234);
      CHECK(d.kind == Placement::pinned);
      CHECK(d.index == to);
      CHECK(d.reason == MoveReason::none);
      CHECK(d.min_slot == 0);
    }
}

TEST_CASE("balancer: a user pinned to a down backend moves, reason down, forward") {
  Fleet f(4);
  f.c[2].state = BackendState::down;
  for (uint64_t k = 0; k < 500; ++k) {
    const Decision d = f.pinned(k, 2, 777);
    CHECK(d.kind == Placement::moved);
    CHECK(d.reason == MoveReason::down);
    CHECK(d.min_slot == 777);
    CHECK(d.index != 2);
    CHECK(f.c[d.index].state == BackendState::up);
  }
}

TEST_CASE("balancer: a pin on an unreachable backend moves, reason down") {
  Fleet f(3);
  f.c[0].reachable = false;  // its address did not resolve
  const Decision d = f.pinned(1, 0, 5);
  CHECK(d.kind == Placement::moved);
  CHECK(d.reason == MoveReason::down);
  CHECK(d.index != 0);
  for (uint64_t k = 0; k < 2000; ++k) CHECK(f.fresh(k).index != 0);
}

TEST_CASE("balancer: a pin on a backend an operator set down moves, reason admin") {
  Fleet f(3);
  f.c[1].state = BackendState::down;
  f.c[1].admin = true;
  const Decision d = f.pinned(9, 1, 42);
  CHECK(d.kind == Placement::moved);
  CHECK(d.reason == MoveReason::admin);
  CHECK(d.min_slot == 42);
  CHECK(d.index != 1);
}

TEST_CASE("balancer: a pin on a backend no longer configured moves, reason removed") {
  Fleet f(3);
  for (uint64_t k = 0; k < 300; ++k) {
    const Decision d = f.pinned_ref(k, kRef0 + 50, 10);
    CHECK(d.kind == Placement::moved);
    CHECK(d.reason == MoveReason::removed);
    CHECK(d.min_slot == 10);
    CHECK(d.index < 3);
  }
}

TEST_CASE("balancer: the backend that just failed the request is never chosen") {
  Fleet f(3);
  for (uint64_t k = 0; k < 1000; ++k) {
    PlacementRequest r;
    r.hash = mix_key(k);
    r.has_pin = true;
    r.pinned_to = kRef0 + 1;
    r.last_slot = 3;
    r.exclude = kRef0 + 1;
    Decision d = place(f.view(), r);
    CHECK(d.kind == Placement::moved);
    CHECK(d.reason == MoveReason::down);
    CHECK(d.min_slot == 3);
    CHECK(d.index != 1);
    r.has_pin = false;  // a new user's failover likewise
    d = place(f.view(), r);
    CHECK(d.kind == Placement::new_user);
    CHECK(d.index != 1);
  }
  // Only the excluded one is up: the request is not sent back to it.
  f.c[0].state = f.c[2].state = BackendState::down;
  PlacementRequest r;
  r.exclude = kRef0 + 1;
  CHECK(place(f.view(), r).kind == Placement::none);
}

TEST_CASE("balancer: draining takes no new and no moved users while something is up") {
  Fleet f(5);
  f.c[0].state = BackendState::draining;
  f.c[3].state = BackendState::draining;
  f.c[4].state = BackendState::down;
  std::vector<int> got(5, 0);
  for (uint64_t k = 0; k < kKeys; ++k) {
    const Decision n = f.fresh(k);
    REQUIRE(n.kind == Placement::new_user);
    ++got[n.index];
    const Decision m = f.pinned(k, 4, 0);
    REQUIRE(m.kind == Placement::moved);
    ++got[m.index];
  }
  CHECK(got[0] == 0);
  CHECK(got[3] == 0);
  CHECK(got[4] == 0);
  CHECK(got[1] > kKeys / 2);  // the two up backends share everyone
  CHECK(got[2] > kKeys / 2);
}

TEST_CASE("balancer: with nothing up, draining backends serve new and moved users") {
  Fleet f(4);
  f.c[0].state = BackendState::down;
  f.c[1].state = BackendState::draining;
  f.c[2].state = BackendState::down;
  f.c[3].state = BackendState::draining;
  std::vector<int> got(4, 0);
  for (uint64_t k = 0; k < 4000; ++k) {
    const Decision n = f.fresh(k);
    REQUIRE(n.kind == Placement::new_user);
    ++got[n.index];
    const Decision m = f.pinned(k, 0, 99);
    REQUIRE(m.kind == Placement::moved);
    CHECK(m.reason == MoveReason::down);
    ++got[m.index];
  }
  CHECK(got[0] == 0);
  CHECK(got[2] == 0);
  CHECK(got[1] > 2000);
  CHECK(got[3] > 2000);
}

TEST_CASE("balancer: down backends are never chosen; nothing usable gives none") {
  Fleet f(6);
  // Every mix of states over many keys: the choice is never down nor unreachable.
  for (uint64_t round = 0; round < 200; ++round) {
    for (size_t i = 0; i < 6; ++i) {
      f.c[i].state = static_cast<BackendState>(mix_key(round * 7 + i) % 3);
      f.c[i].reachable = mix_key(round * 11 + i) % 5 != 0;
    }
    const bool any = std::any_of(f.c.begin(), f.c.end(), [](const Candidate& c) {
      return c.reachable && c.state != BackendState::down;
    });
    for (uint64_t k = 0; k < 50; ++k) {
      const Decision d = f.fresh(round * 1000 + k);
      if (!any) {
        CHECK(d.kind == Placement::none);
        continue;
      }
      REQUIRE(d.kind == Placement::new_user);
      CHECK(f.c[d.index].state != BackendState::down);
      CHECK(f.c[d.index].reachable);
    }
  }
  for (Candidate& c : f.c) c.state = BackendState::down;
  CHECK(f.fresh(1).kind == Placement::none);
  const Decision d = f.pinned(1, 2, 7);
  CHECK(d.kind == Placement::none);
  CHECK(d.reason == MoveReason::down);  // why the pin could not be used
  Fleet empty(std::vector<uint32_t>{});
  CHECK(empty.fresh(1).kind == Placement::none);
}

TEST_CASE("balancer: a moved user prefers a backend at or past its last slot") {
  Fleet f(4);
  f.c[0].state = BackendState::down;  // the old pin
  f.c[0].tip_slot = 1000;
  f.c[1].tip_slot = 900;   // behind the user
  f.c[2].tip_slot = 1000;  // exactly caught up
  f.c[3].tip_slot = 1500;
  std::vector<int> got(4, 0);
  for (uint64_t k = 0; k < 4000; ++k) {
    const Decision d = f.pinned(k, 0, 1000);
    REQUIRE(d.kind == Placement::moved);
    ++got[d.index];
  }
  CHECK(got[0] == 0);
  CHECK(got[1] == 0);
  CHECK(got[2] > 1000);
  CHECK(got[3] > 1000);
  // A caught-up backend that is draining does not beat one that is up but behind.
  f.c[2].state = f.c[3].state = BackendState::draining;
  for (uint64_t k = 0; k < 500; ++k) CHECK(f.pinned(k, 0, 1000).index == 1);
  // New users (no slot seen) ignore tips, unknown ones included.
  f.c[2].state = f.c[3].state = BackendState::up;
  f.c[1].tip_slot = 0;
  std::fill(got.begin(), got.end(), 0);
  for (uint64_t k = 0; k < 4000; ++k) ++got[f.fresh(k).index];
  CHECK(got[1] > 1000);
}

TEST_CASE("balancer: a moved user falls back to any up backend when none caught up") {
  Fleet f(3);
  f.c[0].state = BackendState::down;
  f.c[1].tip_slot = 500;
  f.c[2].tip_slot = 0;  // unknown
  f.c[2].state = BackendState::up;
  std::vector<int> got(3, 0);
  for (uint64_t k = 0; k < 3000; ++k) {
    const Decision d = f.pinned(k, 0, 2000);
    REQUIRE(d.kind == Placement::moved);
    CHECK(d.min_slot == 2000);  // the caller may still want to know the backend is behind
    ++got[d.index];
  }
  CHECK(got[0] == 0);
  CHECK(got[1] > 1000);
  CHECK(got[2] > 1000);
}

TEST_CASE("balancer: place() follows states and does not cap moves (max_percent is health's)") {
  // DESIGN.md's max_percent budget is enforced by health, which refuses to mark more than
  // that share of a pool down; place() moves every user of whatever is down.
  Fleet f(4);
  for (size_t i = 0; i < 3; ++i) f.c[i].state = BackendState::down;
  for (size_t to = 0; to < 3; ++to)
    for (uint64_t k = 0; k < 300; ++k) {
      const Decision d = f.pinned(k, to);
      CHECK(d.kind == Placement::moved);
      CHECK(d.index == 3);
    }
}

TEST_CASE("balancer: bounded loads keep every backend under ceil(c (L+1) w / W)") {
  // A selector that ranks every key the same way would pile everyone on k1; the bound
  // (Mirrokni et al.) spreads them. Checked before every placement, with weights.
  class Fixed final : public Selector {
   public:
    size_t size() const override { return 5; }
    size_t rank(uint64_t, std::span<uint16_t> out) const override {
      const size_t k = std::min<size_t>(5, out.size());
      for (size_t i = 0; i < k; ++i) out[i] = static_cast<uint16_t>(i);
      return k;
    }
  };
  const std::vector<uint32_t> w = {1, 1, 2, 1, 3};
  for (bool skewed : {true, false}) {
    Fleet f(w);
    Fixed fixed;
    const double c = 1.25;
    f.c[1].state = BackendState::draining;  // not eligible: outside L and W
    PoolView view = f.view();
    if (skewed) view.selector = &fixed;
    uint64_t over = 0;
    for (uint64_t k = 0; k < kKeys; ++k) {
      PlacementRequest r;
      r.hash = mix_key(k);
      const Decision d = place(view, r);
      REQUIRE(d.kind == Placement::new_user);
      REQUIRE(d.index != 1);
      uint64_t load = 0, weight = 0;
      for (size_t i = 0; i < 5; ++i)
        if (i != 1) load += f.c[i].pinned, weight += f.c[i].weight;
      const double bound = std::ceil(c * static_cast<double>(load + 1) * f.c[d.index].weight /
                                     static_cast<double>(weight));
      if (static_cast<double>(f.c[d.index].pinned + 1) > bound) ++over;
      ++f.c[d.index].pinned;
    }
    CHECK(over == 0);
    // And the bound is what spread the skewed ranking: k1 holds about c × its share.
    if (skewed) {
      CHECK(f.c[0].pinned <= static_cast<uint64_t>(std::ceil(c * kKeys / 7.0)) + 1);
      CHECK(f.c[3].pinned > 0);
    }
  }
}

TEST_CASE("balancer: weights are respected") {
  const std::vector<uint32_t> w = {1, 2, 3, 2};
  for (double c : {0.0, 1.25}) {
    Fleet f(w);
    f.balance_factor = c;
    for (uint64_t k = 0; k < 40000; ++k) ++f.c[f.fresh(k).index].pinned;
    for (size_t i = 0; i < w.size(); ++i)
      CHECK(near(static_cast<double>(f.c[i].pinned) / 40000, w[i] / 8.0, 0.06));
  }
}

TEST_CASE("balancer: slow_start_factor ramps linearly from 10% to 100%") {
  CHECK(slow_start_factor(1000, 1000, 30000) == doctest::Approx(0.1));
  CHECK(slow_start_factor(500, 1000, 30000) == doctest::Approx(0.1));  // clock before start
  CHECK(slow_start_factor(16000, 1000, 30000) == doctest::Approx(0.55));
  CHECK(slow_start_factor(31000, 1000, 30000) == doctest::Approx(1.0));
  CHECK(slow_start_factor(99000, 1000, 30000) == doctest::Approx(1.0));
  CHECK(slow_start_factor(1000, 0, 30000) == 1.0);  // no ramp
  CHECK(slow_start_factor(1000, 1000, 0) == 1.0);   // slow start off
}

namespace {

// Newcomers (out of kKeys) placed on backend `b` at `now`, loads held at `pinned` each.
int newcomers_on(Fleet& f, size_t b, uint64_t now, uint64_t pinned) {
  for (Candidate& c : f.c) c.pinned = pinned;
  int n = 0;
  for (uint64_t k = 0; k < kKeys; ++k) {
    const Decision d = f.fresh(k, now);
    REQUIRE(d.kind == Placement::new_user);
    n += d.index == b;
  }
  return n;
}

}  // namespace

TEST_CASE("balancer: slow start gives a ramping backend a growing share of newcomers") {
  // From 10% of its share at the start of the window through 55% halfway to all of it.
  // Loads 0 (a backend just added) and 1000 each (back from ejection, its pinned users
  // kept): the ramp is the same, not squared by the bound.
  for (uint64_t pinned : {uint64_t{0}, uint64_t{1000}}) {
    Fleet f(4);
    const int full = newcomers_on(f, 2, 50000, pinned);
    REQUIRE(full > kKeys / 5);
    f.slow_start_ms = 30000;
    f.c[2].ramp_start_ms = 10000;
    const int at_start = newcomers_on(f, 2, 10000, pinned);
    const int halfway = newcomers_on(f, 2, 25000, pinned);
    const int after = newcomers_on(f, 2, 40000, pinned);
    MESSAGE("pinned " << pinned << ": share of full at start " << double(at_start) / full
                      << ", halfway " << double(halfway) / full);
    CHECK(near(static_cast<double>(at_start) / full, 0.10, 0.2));
    CHECK(near(static_cast<double>(halfway) / full, 0.55, 0.06));
    CHECK(after == full);
    // (newcomers_on requires every newcomer placed: the others took the rest.)
    f.slow_start_ms = 0;  // slow start off: no ramp even with a ramp start
    CHECK(newcomers_on(f, 2, 10000, pinned) == full);
  }
}

TEST_CASE("balancer: slow start decides the same way for the same user") {
  Fleet f(4);
  f.slow_start_ms = 30000;
  f.c[0].ramp_start_ms = f.c[3].ramp_start_ms = 1;
  for (uint64_t k = 0; k < 2000; ++k) {
    const Decision a = f.fresh(k, 5000), b = f.fresh(k, 5000);
    CHECK(a.index == b.index);
  }
}

TEST_CASE("balancer: slow start never makes a placement fail") {
  Fleet f(3);
  f.slow_start_ms = 30000;
  for (Candidate& c : f.c) c.ramp_start_ms = 1000;  // everyone ramping, at 10%
  std::vector<int> got(3, 0);
  for (uint64_t k = 0; k < 3000; ++k) {
    const Decision d = f.fresh(k, 1000);
    REQUIRE(d.kind == Placement::new_user);
    ++got[d.index];
  }
  for (int g : got) CHECK(g > 500);
  // The only up backend is ramping: it takes everyone rather than send them to draining.
  f.c[1].state = f.c[2].state = BackendState::draining;
  for (uint64_t k = 0; k < 1000; ++k) CHECK(f.fresh(k, 1000).index == 0);
  // A moved user whose only caught-up backend is ramping goes there, not backwards.
  f.c[1].state = f.c[2].state = BackendState::up;
  f.c[0].tip_slot = 500;
  f.c[1].ramp_start_ms = f.c[2].ramp_start_ms = 0;
  for (uint64_t k = 0; k < 1000; ++k) {
    PlacementRequest r;
    r.hash = mix_key(k);
    r.has_pin = true;
    r.pinned_to = kRef0 + 77;  // a removed backend
    r.last_slot = 400;
    r.now_ms = 1000;
    CHECK(place(f.view(), r).index == 0);
  }
}

TEST_CASE("balancer: without a selector, candidates are taken in list order") {
  Fleet f(3);
  PoolView v = f.view();
  v.selector = nullptr;
  v.balance_factor = 0;
  f.c[0].state = BackendState::draining;
  PlacementRequest r;
  r.hash = 12345;
  const Decision d = place(v, r);
  CHECK(d.kind == Placement::new_user);
  CHECK(d.index == 1);
}

TEST_CASE("keep_pin is place()'s first rule alone: it agrees on every pin, state and exclusion") {
  Fleet f(4);
  const BackendState states[] = {BackendState::up, BackendState::draining, BackendState::down};
  int stays = 0, moves = 0;
  for (BackendState st : states) {
    for (bool admin : {false, true}) {
      for (bool reachable : {true, false}) {
        f.c[1].state = st;
        f.c[1].admin = admin;
        f.c[1].reachable = reachable;
        for (BackendRef to : {kRef0 + 1, kRef0 + 2, kRef0 + 9}) {  // kRef0 + 9: removed
          for (BackendRef exclude : {kNoBackend, kRef0 + 1}) {
            PlacementRequest r;
            r.hash = mix_key(to + exclude);
            r.has_pin = true;
            r.pinned_to = to;
            r.exclude = exclude;
            Decision full = place(f.view(), r);
            std::optional<Decision> quick = keep_pin(f.c, r);
            CHECK(quick.has_value() == (full.kind == Placement::pinned));
            if (quick) {
              CHECK(quick->index == full.index);
              ++stays;
            } else {
              ++moves;
            }
          }
        }
      }
    }
  }
  CHECK(stays > 0);
  CHECK(moves > 0);
  PlacementRequest fresh;
  CHECK_FALSE(keep_pin(f.c, fresh).has_value());  // no pin: always placed
}
