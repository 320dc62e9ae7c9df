#include <doctest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "health/backend_health.h"

using health::BackendHealth;
using health::HealthParams;
using health::Reason;
using lb::BackendState;

namespace {

constexpr BackendState kUp = BackendState::up;
constexpr BackendState kDraining = BackendState::draining;
constexpr BackendState kDown = BackendState::down;

HealthParams params(uint32_t rise = 2, uint32_t fall = 3) {
  HealthParams p;
  p.rise = rise;
  p.fall = fall;
  p.consecutive_503 = 3;
  p.base_eject_ms = 10'000;
  p.max_eject_ms = 300'000;
  return p;
}

// Sends consecutive_503 503s at `now`; returns what the last one returned.
bool three_503(BackendHealth& h, uint64_t now, bool may_eject = true) {
  CHECK_FALSE(h.on_response(503, now, may_eject));
  CHECK_FALSE(h.on_response(503, now, may_eject));
  return h.on_response(503, now, may_eject);
}

// Runs one full ejection starting at `now` and returns how long it lasted; leaves the
// backend up again (time over, then a healthy probe) at the returned end time.
uint64_t eject_once(BackendHealth& h, uint64_t now) {
  REQUIRE(h.state() == kUp);
  CHECK(three_503(h, now));
  REQUIRE(h.ejected());
  const uint64_t until = h.eject_until_ms();
  CHECK_FALSE(h.tick(until - 1));
  CHECK(h.ejected());
  CHECK_FALSE(h.tick(until));  // time over, still draining: awaiting a probe
  CHECK_FALSE(h.ejected());
  CHECK(h.reason() == Reason::awaiting_probe);
  CHECK(h.on_probe(kUp, until));
  CHECK(h.state() == kUp);
  return until - now;
}

}  // namespace

TEST_CASE("backend_health: starts up and healthy, before any probe") {
  BackendHealth h(params());
  CHECK(h.state() == kUp);
  CHECK(h.probe_state() == kUp);
  CHECK(h.reason() == Reason::healthy);
  CHECK_FALSE(h.ejected());
  CHECK(h.ejections() == 0);
  CHECK(h.eject_until_ms() == 0);
  CHECK(h.consecutive_503() == 0);
  CHECK_FALSE(h.tick(1'000'000));
}

TEST_CASE("backend_health: fall down-reports take it down, rise up-reports bring it back") {
  BackendHealth h(params(2, 3));
  CHECK_FALSE(h.on_probe(kDown, 1));
  CHECK_FALSE(h.on_probe(kDown, 2));
  CHECK(h.state() == kUp);
  CHECK(h.on_probe(kDown, 3));  // the third, exactly
  CHECK(h.state() == kDown);
  CHECK(h.reason() == Reason::probe_failing);
  CHECK_FALSE(h.on_probe(kDown, 4));  // no flip while staying down

  CHECK_FALSE(h.on_probe(kUp, 5));
  CHECK(h.state() == kDown);
  CHECK(h.on_probe(kUp, 6));  // the second, exactly
  CHECK(h.state() == kUp);
  CHECK(h.reason() == Reason::healthy);
  CHECK_FALSE(h.on_probe(kUp, 7));
}

TEST_CASE("backend_health: other rise/fall values count exactly too") {
  for (uint32_t fall : {1u, 2u, 5u}) {
    for (uint32_t rise : {1u, 4u}) {
      CAPTURE(fall);
      CAPTURE(rise);
      BackendHealth h(params(rise, fall));
      for (uint32_t i = 1; i < fall; ++i) CHECK_FALSE(h.on_probe(kDown, i));
      CHECK(h.on_probe(kDown, 100));
      for (uint32_t i = 1; i < rise; ++i) CHECK_FALSE(h.on_probe(kUp, 100 + i));
      CHECK(h.on_probe(kUp, 200));
      CHECK(h.state() == kUp);
    }
  }
}

TEST_CASE("backend_health: rise and fall of 0 behave as 1") {
  BackendHealth h(params(0, 0));
  CHECK(h.on_probe(kDown, 1));
  CHECK(h.on_probe(kUp, 2));
}

TEST_CASE("backend_health: a report the other way resets the pending count") {
  BackendHealth h(params(2, 3));
  CHECK_FALSE(h.on_probe(kDown, 1));
  CHECK_FALSE(h.on_probe(kDown, 2));
  CHECK_FALSE(h.on_probe(kUp, 3));  // breaks the streak
  CHECK_FALSE(h.on_probe(kDown, 4));
  CHECK_FALSE(h.on_probe(kDown, 5));
  CHECK(h.state() == kUp);
  CHECK(h.on_probe(kDown, 6));
  CHECK(h.state() == kDown);

  CHECK_FALSE(h.on_probe(kUp, 7));
  CHECK_FALSE(h.on_probe(kDown, 8));  // breaks the rise streak
  CHECK_FALSE(h.on_probe(kUp, 9));
  CHECK(h.state() == kDown);
  CHECK(h.on_probe(kUp, 10));
}

TEST_CASE("backend_health: alternating answers never flip the state (rise 2, fall 3)") {
  // (start, the bad answer): every bad answer is followed by an up one and vice versa.
  // (down, draining) is left out on purpose: draining,up,... are all "draining or better",
  // so a down backend rightly rises to draining.
  const std::pair<BackendState, BackendState> cases[] = {
      {kUp, kDown}, {kUp, kDraining}, {kDown, kDown}, {kDraining, kDown}};
  for (auto [start, bad] : cases) {
    for (int phase = 0; phase < 2; ++phase) {  // bad answer first, or up answer first
      // Copies: clang 14 cannot capture a structured binding (CAPTURE makes a lambda).
      const int start_ = static_cast<int>(start);
      const int bad_ = static_cast<int>(bad);
      CAPTURE(start_);
      CAPTURE(bad_);
      CAPTURE(phase);
      BackendHealth h(params(2, 3));
      if (start != kUp)
        for (int i = 0; i < 3; ++i) h.on_probe(start, 0);
      REQUIRE(h.state() == start);
      int flips = 0;
      for (uint64_t i = 0; i < 100; ++i) flips += h.on_probe((i + phase) % 2 ? kUp : bad, i);
      CHECK(flips == 0);
      CHECK(h.state() == start);
      // Passive failures between healthy probes do not flip it either.
      const uint64_t shift = phase;  // keep alternating across the two loops
      for (uint64_t i = 0; i < 100; ++i)
        flips += (i + shift) % 2 ? h.on_probe(kUp, i) : h.on_passive_failure(i);
      CHECK(flips == 0);
      CHECK(h.state() == start);
    }
  }
}

TEST_CASE("backend_health: behind probes make it draining after fall, and up after rise") {
  BackendHealth h(params(2, 3));
  CHECK_FALSE(h.on_probe(kDraining, 1));
  CHECK_FALSE(h.on_probe(kDraining, 2));
  CHECK(h.on_probe(kDraining, 3));
  CHECK(h.state() == kDraining);
  CHECK(h.reason() == Reason::probe_behind);
  CHECK_FALSE(h.on_probe(kUp, 4));
  CHECK(h.on_probe(kUp, 5));
  CHECK(h.state() == kUp);
}

TEST_CASE("backend_health: a mixed worsening streak goes to its mildest level, then on") {
  // draining,down,down: three reports "draining or worse" but only two "down or worse".
  BackendHealth h(params(2, 3));
  CHECK_FALSE(h.on_probe(kDraining, 1));
  CHECK_FALSE(h.on_probe(kDown, 2));
  CHECK(h.on_probe(kDown, 3));
  CHECK(h.state() == kDraining);
  // The fourth makes three in a row at down: the streak carries on.
  CHECK(h.on_probe(kDown, 4));
  CHECK(h.state() == kDown);

  // From draining, a report at draining breaks a run towards down.
  BackendHealth g(params(2, 3));
  for (int i = 0; i < 3; ++i) g.on_probe(kDraining, 1);
  REQUIRE(g.state() == kDraining);
  CHECK_FALSE(g.on_probe(kDown, 2));
  CHECK_FALSE(g.on_probe(kDown, 3));
  CHECK_FALSE(g.on_probe(kDraining, 4));
  CHECK_FALSE(g.on_probe(kDown, 5));
  CHECK_FALSE(g.on_probe(kDown, 6));
  CHECK(g.on_probe(kDown, 7));
  CHECK(g.state() == kDown);
}

TEST_CASE("backend_health: a mixed improving streak goes to its worst level, then on") {
  BackendHealth h(params(2, 3));
  for (int i = 0; i < 3; ++i) h.on_probe(kDown, 1);
  REQUIRE(h.state() == kDown);
  CHECK_FALSE(h.on_probe(kDraining, 2));
  CHECK(h.on_probe(kUp, 3));  // two reports "draining or better"
  CHECK(h.state() == kDraining);
  CHECK(h.on_probe(kUp, 4));  // two in a row "up"
  CHECK(h.state() == kUp);

  // Straight from down to up when the whole streak is up.
  BackendHealth g(params(2, 3));
  for (int i = 0; i < 3; ++i) g.on_probe(kDown, 1);
  CHECK_FALSE(g.on_probe(kUp, 2));
  CHECK(g.on_probe(kUp, 3));
  CHECK(g.state() == kUp);
}

TEST_CASE("backend_health: passive failures take it down after fall; probes bring it back") {
  BackendHealth h(params(2, 3));
  CHECK_FALSE(h.on_passive_failure(1));
  CHECK_FALSE(h.on_passive_failure(2));
  CHECK(h.on_passive_failure(3));
  CHECK(h.state() == kDown);
  CHECK(h.reason() == Reason::probe_failing);
  CHECK_FALSE(h.on_probe(kUp, 4));
  CHECK(h.on_probe(kUp, 5));
  CHECK(h.state() == kUp);
  // They mix with failing probes in one streak.
  CHECK_FALSE(h.on_probe(kDown, 6));
  CHECK_FALSE(h.on_passive_failure(7));
  CHECK(h.on_probe(kDown, 8));
  CHECK(h.state() == kDown);
  // And one interrupts a recovery.
  CHECK_FALSE(h.on_probe(kUp, 9));
  CHECK_FALSE(h.on_passive_failure(10));
  CHECK_FALSE(h.on_probe(kUp, 11));
  CHECK(h.on_probe(kUp, 12));
  // Passive failures do not touch the 503 streak.
  CHECK_FALSE(h.on_response(503, 13, true));
  CHECK_FALSE(h.on_passive_failure(14));
  CHECK(h.consecutive_503() == 1);
}

TEST_CASE("backend_health: 503 ejections last 10s, 20s, 40s, ... capped at max") {
  BackendHealth h(params());
  uint64_t now = 1'000;
  // First ejection, step by step.
  CHECK_FALSE(h.on_response(503, now, true));
  CHECK_FALSE(h.on_response(503, now, true));
  CHECK(h.consecutive_503() == 2);
  CHECK(h.on_response(503, now, true));
  CHECK(h.state() == kDraining);
  CHECK(h.probe_state() == kUp);
  CHECK(h.ejected());
  CHECK(h.reason() == Reason::ejected_503);
  CHECK(h.ejections() == 1);
  CHECK(h.eject_until_ms() == now + 10'000);
  CHECK(h.consecutive_503() == 0);  // reset by the ejection
  CHECK_FALSE(h.tick(now + 9'999));
  CHECK(h.ejected());
  CHECK_FALSE(h.tick(now + 10'000));
  CHECK_FALSE(h.ejected());
  CHECK(h.eject_until_ms() == 0);
  CHECK(h.state() == kDraining);
  CHECK(h.reason() == Reason::awaiting_probe);
  CHECK(h.on_probe(kUp, now + 12'000));
  CHECK(h.state() == kUp);
  CHECK(h.reason() == Reason::healthy);
  now += 13'000;

  CHECK(eject_once(h, now) == 20'000);
  now += 20'000 + 1'000;
  CHECK(eject_once(h, now) == 40'000);
  now += 40'000 + 1'000;
  CHECK(eject_once(h, now) == 80'000);
  now += 80'000 + 1'000;
  CHECK(eject_once(h, now) == 160'000);
  now += 160'000 + 1'000;
  CHECK(eject_once(h, now) == 300'000);  // 320s, capped
  now += 300'000 + 1'000;
  CHECK(eject_once(h, now) == 300'000);
  CHECK(h.ejections() == 7);
}

TEST_CASE("backend_health: the cap applies when max is not a power-of-two multiple") {
  HealthParams p = params();
  p.max_eject_ms = 30'000;
  BackendHealth h(p);
  uint64_t now = 0;
  CHECK(eject_once(h, now) == 10'000);
  now += 10'000;
  CHECK(eject_once(h, now) == 20'000);
  now += 20'000;
  CHECK(eject_once(h, now) == 30'000);
  now += 30'000;
  CHECK(eject_once(h, now) == 30'000);
}

TEST_CASE("backend_health: huge ejection times saturate instead of wrapping") {
  HealthParams p = params();
  p.base_eject_ms = 1'000;
  p.max_eject_ms = uint64_t{1} << 62;
  BackendHealth h(p);
  uint64_t now = 0;
  const uint64_t kMax = std::numeric_limits<uint64_t>::max();
  for (int k = 1; k <= 70; ++k) {
    CAPTURE(k);
    REQUIRE(three_503(h, now));
    const uint64_t until = h.eject_until_ms();
    REQUIRE(until >= now);
    const uint64_t want = k <= 53 ? uint64_t{1'000} << (k - 1) : p.max_eject_ms;
    if (now <= kMax - want)
      CHECK(until - now == want);
    else
      CHECK(until == kMax);
    h.tick(until);
    REQUIRE(h.on_probe(kUp, until));
    now = until;
  }
}

TEST_CASE("backend_health: after the ejection time only a healthy probe ends the wait") {
  BackendHealth h(params());
  REQUIRE(three_503(h, 0));
  // A healthy probe during the ejection says nothing about the overload.
  CHECK_FALSE(h.on_probe(kUp, 5'000));
  CHECK(h.ejected());
  CHECK_FALSE(h.tick(10'000));
  CHECK(h.reason() == Reason::awaiting_probe);
  // Probes that are not up keep it waiting.
  CHECK_FALSE(h.on_probe(kDraining, 11'000));
  CHECK_FALSE(h.on_probe(kDown, 12'000));
  CHECK(h.state() == kDraining);
  CHECK(h.reason() == Reason::awaiting_probe);
  // Responses, 503s included, neither end the wait nor start a new ejection.
  CHECK_FALSE(h.on_response(200, 13'000, true));
  for (int i = 0; i < 10; ++i) CHECK_FALSE(h.on_response(503, 13'000, true));
  CHECK(h.ejections() == 1);
  CHECK(h.consecutive_503() == 10);
  CHECK(h.reason() == Reason::awaiting_probe);
  CHECK(h.on_probe(kUp, 14'000));
  CHECK(h.state() == kUp);
  // The streak counted while waiting: the next 503 ejects at once, for 20s.
  CHECK(h.on_response(503, 15'000, true));
  CHECK(h.eject_until_ms() == 35'000);
}

TEST_CASE("backend_health: a healthy probe after the deadline counts without a tick") {
  BackendHealth h(params());
  REQUIRE(three_503(h, 0));
  CHECK(h.on_probe(kUp, 10'000));
  CHECK(h.state() == kUp);
  CHECK_FALSE(h.ejected());
}

TEST_CASE("backend_health: 503s during an ejection do not extend it") {
  BackendHealth h(params());
  REQUIRE(three_503(h, 0));
  for (int i = 0; i < 9; ++i) CHECK_FALSE(h.on_response(503, 5'000, true));
  CHECK(h.ejections() == 1);
  CHECK(h.eject_until_ms() == 10'000);
}

TEST_CASE("backend_health: may_eject=false counts the streak but never ejects") {
  BackendHealth h(params());
  for (int i = 0; i < 100; ++i) CHECK_FALSE(h.on_response(503, i, false));
  CHECK_FALSE(h.ejected());
  CHECK(h.state() == kUp);
  CHECK(h.ejections() == 0);
  CHECK(h.consecutive_503() == 100);
  // Once the pool can afford it, the next 503 of the streak ejects.
  CHECK(h.on_response(503, 200, true));
  CHECK(h.ejected());
  CHECK(h.eject_until_ms() == 10'200);
}

TEST_CASE("backend_health: any non-503 response resets the 503 streak") {
  for (int other : {200, 202, 404, 429, 500, 502, 504}) {
    CAPTURE(other);
    BackendHealth h(params());
    CHECK_FALSE(h.on_response(503, 1, true));
    CHECK_FALSE(h.on_response(503, 2, true));
    CHECK_FALSE(h.on_response(other, 3, true));
    CHECK(h.consecutive_503() == 0);
    CHECK_FALSE(h.on_response(503, 4, true));
    CHECK_FALSE(h.on_response(503, 5, true));
    CHECK_FALSE(h.ejected());
    CHECK(h.on_response(503, 6, true));
    CHECK(h.ejected());
  }
}

TEST_CASE("backend_health: consecutive_503 = 0 never ejects") {
  HealthParams p = params();
  p.consecutive_503 = 0;
  BackendHealth h(p);
  for (int i = 0; i < 50; ++i) CHECK_FALSE(h.on_response(503, i, true));
  CHECK_FALSE(h.ejected());
  CHECK(h.consecutive_503() == 50);
}

TEST_CASE("backend_health: the ejection time decays back to base after max without one") {
  BackendHealth h(params());               // base 10s, max 300s
  CHECK(eject_once(h, 0) == 10'000);       // ends at 10s
  CHECK(eject_once(h, 10'000) == 20'000);  // ends at 30s
  // Just under max after that end: still doubling.
  CHECK(eject_once(h, 30'000 + 299'999) == 40'000);  // ends at 369'999
  // max after the end: back to base.
  CHECK(eject_once(h, 369'999 + 300'000) == 10'000);  // ends at 679'999
  CHECK(eject_once(h, 679'999 + 1) == 20'000);
  CHECK(h.ejections() == 5);

  // The end counts from the deadline, not from the probe that ended the wait.
  BackendHealth g(params());
  REQUIRE(three_503(g, 0));  // deadline 10s
  CHECK_FALSE(g.tick(10'000));
  CHECK(g.on_probe(kUp, 200'000));  // waited long for a probe
  REQUIRE(three_503(g, 310'000));   // exactly max after the deadline
  CHECK(g.eject_until_ms() == 320'000);
}

TEST_CASE("backend_health: the worst input wins; reasons follow it") {
  BackendHealth h(params(2, 3));
  REQUIRE(three_503(h, 0));
  REQUIRE(h.state() == kDraining);
  // Probes failing during an ejection: down wins.
  CHECK_FALSE(h.on_probe(kDown, 1'000));
  CHECK_FALSE(h.on_probe(kDown, 2'000));
  CHECK(h.on_probe(kDown, 3'000));
  CHECK(h.state() == kDown);
  CHECK(h.reason() == Reason::probe_failing);
  CHECK(h.ejected());
  // Probes recover while the ejection still runs: back to draining only.
  CHECK_FALSE(h.on_probe(kUp, 4'000));
  CHECK(h.on_probe(kUp, 5'000));
  CHECK(h.state() == kDraining);
  CHECK(h.reason() == Reason::ejected_503);
  // The deadline passes; the same up probes already counted, but the wait needs a new one.
  CHECK_FALSE(h.tick(10'000));
  CHECK(h.reason() == Reason::awaiting_probe);
  CHECK(h.on_probe(kUp, 11'000));
  CHECK(h.state() == kUp);

  // Behind and ejected: the ejection is named.
  BackendHealth g(params(2, 1));
  CHECK(g.on_probe(kDraining, 0));
  CHECK(g.reason() == Reason::probe_behind);
  CHECK_FALSE(three_503(g, 1));
  CHECK(g.ejected());
  CHECK(g.reason() == Reason::ejected_503);
  CHECK_FALSE(g.tick(10'001));
  CHECK(g.reason() == Reason::awaiting_probe);
  // A behind probe does not end the wait; an up probe ends it but rise is 2.
  CHECK_FALSE(g.on_probe(kDraining, 10'002));
  CHECK_FALSE(g.on_probe(kUp, 10'003));
  CHECK(g.reason() == Reason::probe_behind);
  CHECK(g.on_probe(kUp, 10'004));
  CHECK(g.state() == kUp);
}

TEST_CASE("backend_health: the admin override wins outright, both ways") {
  BackendHealth h(params(2, 3));
  CHECK(h.set_admin(kDraining));
  CHECK(h.state() == kDraining);
  CHECK(h.reason() == Reason::admin);
  CHECK_FALSE(h.set_admin(kDraining));  // same state: no flip
  CHECK(h.set_admin(kDown));
  CHECK(h.state() == kDown);
  // Events under an override are tracked but do not flip the effective state.
  CHECK_FALSE(h.on_probe(kDown, 1));
  CHECK_FALSE(h.on_probe(kDown, 2));
  CHECK_FALSE(h.on_probe(kDown, 3));
  CHECK(h.probe_state() == kDown);
  CHECK_FALSE(three_503(h, 4));
  CHECK(h.ejected());
  // Forced up beats failing probes and an ejection.
  CHECK(h.set_admin(kUp));
  CHECK(h.state() == kUp);
  CHECK(h.reason() == Reason::admin);
  // Clearing it reveals the underlying state.
  CHECK(h.set_admin(std::nullopt));
  CHECK(h.state() == kDown);
  CHECK(h.reason() == Reason::probe_failing);
  CHECK_FALSE(h.set_admin(std::nullopt));
  // Forcing the state it already has is no flip.
  CHECK_FALSE(h.set_admin(kDown));
  CHECK_FALSE(h.set_admin(std::nullopt));
}

TEST_CASE("backend_health: set_params applies to the next events") {
  BackendHealth h(params(2, 3));
  CHECK_FALSE(h.on_probe(kDown, 1));
  h.set_params(params(2, 2));
  CHECK(h.on_probe(kDown, 2));  // the run so far counts against the new fall
  HealthParams p = params(1, 2);
  p.consecutive_503 = 1;
  p.base_eject_ms = 5'000;
  h.set_params(p);
  CHECK(h.on_probe(kUp, 3));
  CHECK(h.on_response(503, 4, true));
  CHECK(h.eject_until_ms() == 5'004);
}

TEST_CASE("backend_health: reason names") {
  CHECK(std::string(health::reason_name(Reason::healthy)) == "healthy");
  CHECK(std::string(health::reason_name(Reason::probe_failing)) == "probe_failing");
  CHECK(std::string(health::reason_name(Reason::probe_behind)) == "probe_behind");
  CHECK(std::string(health::reason_name(Reason::ejected_503)) == "ejected_503");
  CHECK(std::string(health::reason_name(Reason::awaiting_probe)) == "awaiting_probe");
  CHECK(std::string(health::reason_name(Reason::admin)) == "admin");
}
