#include <doctest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "health/pool_policy.h"
#include "lb/core/balancer.h"

using health::BackendRecord;
using health::Change;
using health::ForkSource;
using health::PoolHealth;
using health::PoolParams;
using health::ProbeResult;
using lb::BackendState;

namespace {

constexpr BackendState kUp = BackendState::up;
constexpr BackendState kDraining = BackendState::draining;
constexpr BackendState kDown = BackendState::down;

PoolParams params(uint32_t max_percent = 50, uint32_t rise = 1, uint32_t fall = 1) {
  PoolParams p;
  p.backend.rise = rise;
  p.backend.fall = fall;
  p.backend.consecutive_503 = 3;
  p.backend.base_eject_ms = 10'000;
  p.backend.max_eject_ms = 300'000;
  p.max_lag_slots = 600;
  p.stale_after_s = 600;
  p.max_percent = max_percent;
  p.slow_start_ms = 30'000;
  return p;
}

// A pool of n members with refs 1..n, as at process start (no ramps).
PoolHealth pool(size_t n, PoolParams p = params()) {
  PoolHealth h(p);
  std::vector<lb::BackendRef> refs;
  for (size_t i = 0; i < n; ++i) refs.push_back(static_cast<lb::BackendRef>(i + 1));
  h.set_members(refs, false, 1'000);
  return h;
}

ProbeResult probe(BackendState level, std::optional<uint64_t> tip = std::nullopt) {
  ProbeResult r;
  r.level = level;
  r.tip_slot = tip;
  r.detail = std::string(lb::state_name(level)) + " probe";
  return r;
}

// Three 503s on member i at `now`; returns the last change.
Change overload(PoolHealth& h, size_t i, uint64_t now) {
  h.on_response(i, 503, now);
  h.on_response(i, 503, now);
  return h.on_response(i, 503, now);
}

size_t ejected(const PoolHealth& h) {
  size_t n = 0;
  for (size_t i = 0; i < h.size(); ++i) n += h.at(i).sm.ejected() ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("pool policy: the eject budget rounds max_percent of the pool down") {
  CHECK(health::within_eject_budget(0, 3, 50));
  CHECK_FALSE(health::within_eject_budget(1, 3, 50));  // 2 of 3 is over 50%
  CHECK(health::within_eject_budget(0, 2, 50));
  CHECK_FALSE(health::within_eject_budget(1, 2, 50));
  CHECK_FALSE(health::within_eject_budget(0, 1, 50));  // a lone backend is never ejected
  CHECK(health::within_eject_budget(0, 1, 100));
  CHECK(health::within_eject_budget(3, 10, 40));  // the 4th of 10 is exactly 40%
  CHECK_FALSE(health::within_eject_budget(4, 10, 40));
  CHECK_FALSE(health::within_eject_budget(0, 4, 0));
  CHECK_FALSE(health::within_eject_budget(0, 0, 100));
}

TEST_CASE("pool policy: never more than max_percent of a pool ejected at once") {
  for (const auto& t : {std::tuple{4, 50u, 2u}, std::tuple{3, 50u, 1u}, std::tuple{5, 100u, 5u},
                        std::tuple{10, 30u, 3u}, std::tuple{1, 50u, 0u}}) {
    const int n = std::get<0>(t);
    const uint32_t pct = std::get<1>(t);
    const size_t want = std::get<2>(t);
    CAPTURE(n);
    CAPTURE(pct);
    PoolHealth h = pool(static_cast<size_t>(n), params(pct));
    for (size_t i = 0; i < h.size(); ++i) overload(h, i, 5'000);
    CHECK(ejected(h) == want);
    size_t draining = 0;
    for (size_t i = 0; i < h.size(); ++i) draining += h.at(i).sm.state() == kDraining ? 1 : 0;
    CHECK(draining == want);
  }
}

TEST_CASE("pool policy: budget freed by an ejection that ended lets the next one in") {
  PoolHealth h = pool(3);
  Change c = overload(h, 0, 5'000);
  CHECK(c.changed());
  CHECK(c.after == kDraining);
  CHECK(c.why.find("ejected_503") == 0);
  overload(h, 1, 5'000);
  CHECK(ejected(h) == 1);
  CHECK(h.at(1).sm.state() == kUp);  // counted, not ejected: the pool could not afford it
  // The ejection's time runs out: member 0 no longer counts against the budget.
  h.tick(0, 15'000);
  CHECK_FALSE(h.at(0).sm.ejected());
  overload(h, 1, 15'001);
  CHECK(h.at(1).sm.ejected());
}

TEST_CASE("pool policy: lag folds an up probe into draining, and only up") {
  CHECK(health::lag_level(kUp, true) == kDraining);
  CHECK(health::lag_level(kDraining, true) == kDraining);
  CHECK(health::lag_level(kDown, true) == kDown);
  CHECK(health::lag_level(kUp, false) == kUp);
  CHECK(health::lag_level(kDraining, false) == kDraining);
}

TEST_CASE("pool policy: a backend behind the pool's best tip drains and comes back") {
  PoolHealth h = pool(3);
  h.on_probe(0, probe(kUp, 10'000), 2'000);
  h.on_probe(1, probe(kUp, 9'500), 2'000);
  Change c = h.on_probe(2, probe(kUp, 9'000), 2'000);
  CHECK(c.after == kDraining);
  CHECK(c.why == "probe_behind: lagging 1000 slots behind the pool");
  CHECK(h.at(2).lagging);
  CHECK(h.at(2).lag_slots == 1'000);
  CHECK(h.at(1).lag_slots == 500);
  CHECK_FALSE(h.at(1).lagging);   // 500 behind is within max_lag_slots
  CHECK(h.at(2).probes_up == 1);  // the probe itself said up
  // Caught up: back to up at full share (it only drained; its users never left).
  c = h.on_probe(2, probe(kUp, 10'000), 4'000);
  CHECK(c.before == kDraining);
  CHECK(c.after == kUp);
  CHECK_FALSE(c.ramp_started);
  CHECK(h.at(2).ramp_start_ms == 0);
  CHECK(h.at(2).transitions == 2);
}

TEST_CASE("pool policy: a down backend's tip does not set the bar") {
  PoolHealth h = pool(2);
  h.on_probe(0, probe(kDown, 50'000), 2'000);
  Change c = h.on_probe(1, probe(kUp, 10'000), 2'000);
  CHECK(c.after == kUp);
  CHECK_FALSE(h.at(1).lagging);
  CHECK(h.at(1).lag_slots == 0);
}

TEST_CASE("pool policy: probe answers are read per kind") {
  using config::PoolKind;
  CHECK(health::interpret_probe(PoolKind::kupo, 200, 202, "{}", "").level == kDraining);
  CHECK(health::interpret_probe(PoolKind::kupo, 200, 503, "{}", "").level == kDown);
  ProbeResult k = health::interpret_probe(
      PoolKind::kupo, 200, 200,
      R"({"most_recent_checkpoint": 1234, "connection_status": "connected"})", "");
  CHECK(k.level == kUp);
  CHECK(k.tip_slot == 1234u);
  CHECK(health::interpret_probe(PoolKind::ogmios, 200, 202, "{}", "").level == kDraining);
  CHECK(health::interpret_probe(PoolKind::ogmios, 200, 500, "{}", "").level == kDown);
  CHECK(health::interpret_probe(PoolKind::blockfrost, 200, 200, R"({"is_healthy": true})", "")
            .level == kUp);
  CHECK(health::interpret_probe(PoolKind::blockfrost, 200, 200, R"({"is_healthy": false})", "")
            .level == kDown);
  // Plain HTTP: the configured status is healthy, nothing else, 200 included.
  CHECK(health::interpret_probe(PoolKind::http, 204, 204, "", "").level == kUp);
  CHECK(health::interpret_probe(PoolKind::http, 204, 200, "", "").level == kDown);
  ProbeResult none = health::interpret_probe(PoolKind::kupo, 200, 0, "", "connect: refused");
  CHECK(none.level == kDown);
  CHECK(none.detail == "connect: refused");
}

TEST_CASE("pool policy: the probed path is /health except for plain HTTP pools") {
  config::Pool p;
  p.health.path = "/ready";
  p.kind = config::PoolKind::http;
  CHECK(health::probe_path(p) == "/ready");
  p.kind = config::PoolKind::kupo;
  CHECK(health::probe_path(p) == "/health");
  p.kind = config::PoolKind::ogmios;
  CHECK(health::probe_path(p) == "/health");
}

TEST_CASE("pool policy: when a slow-start ramp begins") {
  // Straight from down, or while returning from down or an ejection.
  CHECK(health::ramp_starts(false, kDown, kUp));
  CHECK(health::ramp_starts(true, kDown, kUp));
  CHECK(health::ramp_starts(true, kDraining, kUp));
  // Only draining (lag, 202, operator drain): back at full share.
  CHECK_FALSE(health::ramp_starts(false, kDraining, kUp));
  // Not becoming up, or up already.
  CHECK_FALSE(health::ramp_starts(true, kUp, kUp));
  CHECK_FALSE(health::ramp_starts(true, kDown, kDraining));
  CHECK_FALSE(health::ramp_starts(true, kUp, kDown));
}

TEST_CASE("pool policy: the slow-start share ramps from 10% to 100%") {
  CHECK(lb::slow_start_factor(50'000, 0, 30'000) == 1.0);  // no ramp
  CHECK(lb::slow_start_factor(10'000, 10'000, 30'000) == doctest::Approx(0.1));
  CHECK(lb::slow_start_factor(25'000, 10'000, 30'000) == doctest::Approx(0.55));
  CHECK(lb::slow_start_factor(39'999, 10'000, 30'000) < 1.0);
  CHECK(lb::slow_start_factor(40'000, 10'000, 30'000) == 1.0);
  CHECK(lb::slow_start_factor(20'000, 10'000, 0) == 1.0);  // slow_start: 0
  CHECK(lb::slow_start_factor(9'000, 10'000, 30'000) ==
        doctest::Approx(0.1));  // another loop's clock, a moment behind
}

TEST_CASE("pool policy: no ramp at process start, a ramp for a reload's new backend") {
  PoolHealth h = pool(2);
  CHECK(h.at(0).ramp_start_ms == 0);
  CHECK(h.at(1).ramp_start_ms == 0);
  h.on_probe(0, probe(kDown), 2'000);  // fall 1: down
  REQUIRE(h.at(0).sm.state() == kDown);
  // Reload: member 2 stays, 3 is new, 1 keeps its record (and its state) in a new order.
  std::vector<lb::BackendRef> refs = {2, 3, 1};
  h.set_members(refs, true, 7'000);
  REQUIRE(h.size() == 3);
  CHECK(h.index_of(1) == 2u);
  CHECK(h.at(2).sm.state() == kDown);
  CHECK(h.at(0).ramp_start_ms == 0);
  CHECK(h.at(1).ref == 3u);
  CHECK(h.at(1).ramp_start_ms == 7'000);
  CHECK(h.at(1).sm.state() == kUp);
  // Removed members are gone.
  std::vector<lb::BackendRef> fewer = {3};
  h.set_members(fewer, true, 8'000);
  CHECK(h.size() == 1);
  CHECK_FALSE(h.index_of(1).has_value());
  CHECK(h.at(0).ramp_start_ms == 7'000);  // kept, not restarted
}

TEST_CASE("pool policy: up from down ramps, also through draining") {
  PoolHealth h = pool(2);
  h.on_probe(0, probe(kDown), 2'000);
  Change c = h.on_probe(0, probe(kUp), 4'000);
  CHECK(c.before == kDown);
  CHECK(c.after == kUp);
  CHECK(c.ramp_started);
  CHECK(h.at(0).ramp_start_ms == 4'000);
  // Down, then behind (202), then synced: the return still ramps, at the time of up.
  h.on_probe(1, probe(kDown), 5'000);
  c = h.on_probe(1, probe(kDraining), 6'000);
  CHECK(c.after == kDraining);
  CHECK_FALSE(c.ramp_started);
  c = h.on_probe(1, probe(kUp), 8'000);
  CHECK(c.ramp_started);
  CHECK(h.at(1).ramp_start_ms == 8'000);
  // A later drain-only episode does not ramp again.
  h.on_probe(1, probe(kDraining), 9'000);
  c = h.on_probe(1, probe(kUp), 10'000);
  CHECK(c.after == kUp);
  CHECK_FALSE(c.ramp_started);
  CHECK(h.at(1).ramp_start_ms == 8'000);
}

TEST_CASE("pool policy: up after an ejection ramps") {
  PoolHealth h = pool(2, params(50));
  overload(h, 0, 5'000);
  REQUIRE(h.at(0).sm.ejected());
  // Time over: still draining, awaiting a healthy probe; no ramp yet.
  Change c = h.tick(0, 15'000);
  CHECK(c.after == kDraining);
  CHECK_FALSE(c.ramp_started);
  c = h.on_probe(0, probe(kUp), 15'500);
  CHECK(c.before == kDraining);
  CHECK(c.after == kUp);
  CHECK(c.ramp_started);
  CHECK(h.at(0).ramp_start_ms == 15'500);
}

TEST_CASE("pool policy: operator overrides: down then up ramps, drain then auto does not") {
  PoolHealth h = pool(2);
  Change c = h.set_admin(0, kDraining, 1'000);
  CHECK(c.after == kDraining);
  CHECK(c.why == "admin: operator");
  CHECK(h.at(0).sm.admin() == kDraining);
  c = h.set_admin(0, std::nullopt, 2'000);
  CHECK(c.after == kUp);
  CHECK(c.why == "healthy: operator cleared");
  CHECK_FALSE(c.ramp_started);
  CHECK_FALSE(h.at(0).sm.admin().has_value());

  c = h.set_admin(1, kDown, 3'000);
  CHECK(c.after == kDown);
  c = h.set_admin(1, kUp, 4'000);  // an operator's up after down is a return from down
  CHECK(c.ramp_started);
  CHECK(h.at(1).ramp_start_ms == 4'000);
  CHECK(h.at(1).sm.admin() == kUp);
  h.set_admin(1, kDown, 5'000);
  c = h.set_admin(1, std::nullopt, 6'000);  // back to its probes, which say up
  CHECK(c.after == kUp);
  CHECK(c.ramp_started);
  CHECK(h.at(1).ramp_start_ms == 6'000);
}

TEST_CASE("pool policy: passive failures count toward down, and the return ramps") {
  PoolHealth h = pool(1, params(50, 2, 2));
  CHECK_FALSE(h.on_passive_failure(0, 1'000).changed());
  Change c = h.on_passive_failure(0, 1'100);
  CHECK(c.after == kDown);
  CHECK(c.why == "probe_failing: failures on live traffic");
  CHECK_FALSE(h.on_probe(0, probe(kUp), 2'000).changed());  // rise 2
  c = h.on_probe(0, probe(kUp), 4'000);
  CHECK(c.after == kUp);
  CHECK(c.ramp_started);
  CHECK(h.at(0).ramp_start_ms == 4'000);
  CHECK(h.at(0).probes_up == 2);
  CHECK(h.at(0).transitions == 2);
}

TEST_CASE("pool policy: response timeouts never mark a backend down, however many") {
  // fall 1: a single down report would flip it; timeouts must not be one.
  PoolHealth h = pool(2, params(50, 1, 1));
  for (uint64_t t = 0; t < 20; ++t) {
    h.on_response_timeout(0, 5'000 + t);
    CHECK(h.at(0).sm.state() != kDown);
    CHECK(h.at(0).sm.probe_state() == kUp);
  }
}

TEST_CASE("pool policy: response timeouts eject like 503s, within max_percent") {
  PoolHealth h = pool(2, params(50, 1, 1));
  CHECK_FALSE(h.on_response_timeout(0, 5'000).changed());
  CHECK_FALSE(h.on_response_timeout(0, 5'001).changed());
  Change c = h.on_response_timeout(0, 5'002);
  CHECK(c.after == kDraining);
  CHECK(c.why == "ejected_503: response timeouts");
  CHECK(h.at(0).sm.ejected());
  // The second member may not be ejected too (50% of 2 is 1): counted, still up.
  for (uint64_t t = 0; t < 5; ++t) h.on_response_timeout(1, 5'010 + t);
  CHECK(h.at(1).sm.state() == kUp);
  CHECK(h.at(1).sm.consecutive_503() == 5);
}

TEST_CASE("pool policy: timeouts and 503s share one streak; an answer breaks it") {
  PoolHealth h = pool(3);
  h.on_response(0, 503, 5'000);
  h.on_response_timeout(0, 5'001);
  h.on_response(0, 200, 5'002);  // a timely answer: the backend is serving
  h.on_response_timeout(0, 5'003);
  CHECK_FALSE(h.at(0).sm.ejected());
  h.on_response(0, 503, 5'004);
  Change c = h.on_response_timeout(0, 5'005);
  CHECK(c.after == kDraining);
  CHECK(h.at(0).sm.ejected());
}

TEST_CASE("pool policy: a lone backend's timeouts change nothing (no ejection budget)") {
  PoolHealth h = pool(1, params(50, 1, 1));
  for (uint64_t t = 0; t < 10; ++t) CHECK_FALSE(h.on_response_timeout(0, 5'000 + t).changed());
  CHECK(h.at(0).sm.state() == kUp);
}

TEST_CASE("pool policy: a 202 level with the pool stays up; behind the pool it drains") {
  PoolHealth h = pool(3);
  h.on_probe(0, probe(kUp, 10'000), 2'000);
  h.on_probe(1, probe(kUp, 10'000), 2'000);
  Change c = h.on_probe(2, probe(kDraining, 9'990), 2'000);  // its node says "behind"
  CHECK(c.after == kUp);
  CHECK(h.at(2).sm.state() == kUp);
  // The same 202 far behind the pool drains.
  c = h.on_probe(2, probe(kDraining, 9'000), 3'000);
  CHECK(c.after == kDraining);
  // A 202 without a tip is still believed.
  PoolHealth g = pool(2);
  CHECK(g.on_probe(0, probe(kDraining), 2'000).after == kDraining);
}

TEST_CASE("pool policy: a pool where every backend says 202 drains nobody") {
  PoolHealth h = pool(2);
  CHECK(h.on_probe(0, probe(kDraining, 5'000), 2'000).after == kUp);
  CHECK(h.on_probe(1, probe(kDraining, 5'000), 2'000).after == kUp);
  // A 500 is still down, level or not.
  CHECK(h.on_probe(1, probe(kDown, 5'000), 3'000).after == kDown);
}

TEST_CASE("pool policy: evict reasons follow move_lag_slots and staleness, and clear") {
  PoolParams p = params();
  p.move_lag_slots = 1'800;
  PoolHealth h = pool(3, p);
  h.on_probe(0, probe(kUp, 10'000), 2'000);
  h.on_probe(1, probe(kUp, 9'000), 2'000);
  h.on_probe(2, probe(kUp, 8'000), 2'000);
  CHECK(h.at(0).evict == lb::MoveReason::none);
  CHECK(h.at(1).evict == lb::MoveReason::none);  // draining only: 1000 < 1800
  CHECK(h.at(1).lagging);
  CHECK(h.at(2).evict == lb::MoveReason::lag);  // 2000 > 1800
  // The best tip moving on evicts a neighbour without its own probe.
  h.on_probe(0, probe(kUp, 10'900), 4'000);
  CHECK(h.at(1).evict == lb::MoveReason::lag);
  // Caught up: cleared.
  h.on_probe(2, probe(kUp, 10'900), 6'000);
  CHECK(h.at(2).evict == lb::MoveReason::none);
  // Staleness while others are fresh.
  ProbeResult old = probe(kUp, 10'900);
  old.seconds_since_last_block = 900;
  ProbeResult fresh = probe(kUp, 10'900);
  fresh.seconds_since_last_block = 2;
  h.on_probe(0, fresh, 7'000);
  h.on_probe(2, old, 7'000);
  CHECK(h.at(2).evict == lb::MoveReason::stale);
  CHECK(h.at(2).stale);
}

TEST_CASE("pool policy: live tips count toward the pool's best") {
  PoolParams p = params();
  p.move_lag_slots = 1'800;
  PoolHealth h = pool(2, p);
  h.on_probe(0, probe(kUp, 10'000), 2'000);
  h.on_probe(1, probe(kUp, 10'000), 2'000);
  h.note_live_tip(0, 12'000);  // X-Most-Recent-Checkpoint on live traffic
  CHECK(h.at(1).lag_slots == 2'000);
  CHECK(h.at(1).evict == lb::MoveReason::lag);
  // Its next probe folds the lag into draining.
  CHECK(h.on_probe(1, probe(kUp, 10'000), 3'000).after == kDraining);
  h.note_live_tip(1, 0);  // "unknown" is ignored
  CHECK(h.at(1).lag_slots == 2'000);
}

TEST_CASE("pool policy: fork check slot is fork_depth below the lowest counting tip") {
  PoolParams p = params();
  p.fork_depth_slots = 60;
  PoolHealth h = pool(4, p);
  CHECK_FALSE(h.fork_check_slot());
  h.on_probe(0, probe(kUp, 10'000), 2'000);
  CHECK_FALSE(h.fork_check_slot());  // one member: nothing to compare
  h.on_probe(1, probe(kUp, 9'990), 2'000);
  h.on_probe(2, probe(kDown, 100), 2'000);  // down: does not pull the slot down
  h.on_probe(3, probe(kUp, 1'000), 2'000);  // lagging: neither
  CHECK(h.fork_check_slot() == std::optional<uint64_t>(9'930));
}

TEST_CASE("pool policy: fork rounds mark the minority down with reason fork, then heal") {
  PoolHealth h = pool(3);
  for (size_t i = 0; i < 3; ++i) h.on_probe(i, probe(kUp, 10'000), 2'000);
  std::vector<health::Ballot> split(3);
  split[0].value = "9940:aa";
  split[1].value = "9940:aa";
  split[2].value = "9940:bb";
  std::vector<std::pair<size_t, Change>> changes;
  CHECK(h.fork_round(split, ForkSource::probes, 3'000, changes).result ==
        health::ForkResult::disagree);
  CHECK(changes.empty());
  h.fork_round(split, ForkSource::probes, 5'000, changes);
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].first == 2);
  CHECK(changes[0].second.after == kDown);
  CHECK(changes[0].second.why.rfind("fork: ", 0) == 0);
  CHECK(h.at(2).sm.state() == kDown);
  CHECK(std::string(health::reason_name(h.at(2).sm.reason())) == "fork");
  CHECK(h.at(2).evict == lb::MoveReason::fork);
  // Its probes still say up: it stays down while forked.
  CHECK(h.on_probe(2, probe(kUp, 10'000), 6'000).after == kDown);
  // It still votes (so it can heal) and the slot still counts it.
  CHECK(h.fork_check_slot().has_value());
  split[2].value = "9940:aa";
  changes.clear();
  h.fork_round(split, ForkSource::probes, 7'000, changes);
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].second.after == kUp);
  CHECK(h.at(2).evict == lb::MoveReason::none);
}

TEST_CASE("pool policy: Ogmios tip ballots only where tips coincide") {
  PoolHealth h = pool(3);
  auto tipped = [](uint64_t slot, const char* hash) {
    ProbeResult r = probe(kUp, slot);
    r.tip_hash = hash;
    return r;
  };
  h.on_probe(0, tipped(10'000, "aa"), 2'000);
  h.on_probe(1, tipped(10'000, "bb"), 2'000);
  h.on_probe(2, tipped(10'020, "cc"), 2'000);
  const std::vector<uint32_t> w = {1, 2, 1};
  std::optional<health::SlotRound> r = h.tip_ballots(w);
  REQUIRE(r);
  CHECK(r->slot == 10'000);
  const std::vector<health::Ballot>& b = r->ballots;
  REQUIRE(b.size() == 3);
  CHECK(b[0].value == std::optional<std::string>("10000:aa"));
  CHECK(b[1].value == std::optional<std::string>("10000:bb"));
  CHECK(b[1].weight == 2);
  CHECK_FALSE(b[2].value);  // its tip is elsewhere: abstains
  CHECK(health::tally(b).majority == std::optional<std::string>("10000:bb"));
  // Once counted, the same probes are not evidence again: a second round needs new ones.
  std::vector<std::pair<size_t, Change>> changes;
  h.fork_round(b, ForkSource::tips, 2'500, changes);
  CHECK_FALSE(h.tip_ballots(w));
  h.on_probe(0, tipped(10'000, "aa"), 3'000);
  CHECK_FALSE(h.tip_ballots(w));  // one fresh probe: nobody to compare it with
  h.on_probe(1, tipped(10'000, "bb"), 3'000);
  REQUIRE(h.tip_ballots(w));
  CHECK(h.tip_ballots(w)->slot == 10'000);
  h.on_probe(1, tipped(10'010, "bb"), 3'000);
  CHECK_FALSE(h.tip_ballots(w));  // tips apart
}

TEST_CASE("pool policy: tip and live rounds decide only with a majority of the pool's weight") {
  // Five members; two of them (3 and 4) on a fork hold a slot the others do not.
  PoolHealth h = pool(5);
  for (size_t i = 0; i < 5; ++i) h.on_probe(i, probe(kUp, 10'000), 2'000);
  std::vector<health::Ballot> only_minority(5);
  only_minority[3].value = "9940:ff";
  only_minority[4].value = "9940:ff";
  std::vector<std::pair<size_t, Change>> changes;
  // Probe rounds count those that answered; tip and live rounds need more than half of
  // the pool behind the winner, so a forked pair that "agrees" decides nothing.
  CHECK(h.fork_round(only_minority, ForkSource::live, 3'000, changes).result ==
        health::ForkResult::none);
  std::vector<health::Ballot> three_of_five(5);
  for (size_t i : {0, 1, 3}) three_of_five[i].value = i == 3 ? "9900:ff" : "9900:aa";
  // 2 of 5 behind the winner: not enough either.
  CHECK(h.fork_round(three_of_five, ForkSource::tips, 3'000, changes).result ==
        health::ForkResult::none);
  std::vector<health::Ballot> four(5);
  for (size_t i : {0, 1, 2, 3}) four[i].value = i == 3 ? "9800:ff" : "9800:aa";
  CHECK(h.fork_round(four, ForkSource::live, 3'000, changes).result ==
        health::ForkResult::disagree);
  h.fork_round(four, ForkSource::live, 4'000, changes);
  REQUIRE(changes.size() == 1);
  CHECK(h.at(3).live_fork.forked);
  CHECK(h.at(3).evict == lb::MoveReason::fork);
  // Probe rounds agreeing do not heal a live mark (each source heals its own) ...
  std::vector<health::Ballot> all_agree(5);
  for (auto& x : all_agree) x.value = "9700:aa";
  changes.clear();
  h.fork_round(all_agree, ForkSource::probes, 5'000, changes);
  CHECK(changes.empty());
  CHECK(h.at(3).sm.state() == kDown);
  // ... a live round where it agrees with the majority does.
  h.fork_round(all_agree, ForkSource::live, 6'000, changes);
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].second.after == kUp);
}

TEST_CASE("pool policy: best_tip is the highest counted tip, probe or live") {
  PoolHealth h = pool(3);
  CHECK_FALSE(h.best_tip().has_value());  // nobody answered yet
  h.on_probe(0, probe(kUp), 2'000);       // an answer without a tip (Blockfrost, http)
  CHECK_FALSE(h.best_tip().has_value());
  h.on_probe(0, probe(kUp, 10'000), 2'000);
  CHECK(h.best_tip() == std::optional<uint64_t>(10'000));
  h.on_probe(1, probe(kDraining, 10'500), 2'000);  // 202 still reports a usable tip
  CHECK(h.best_tip() == std::optional<uint64_t>(10'500));
  h.note_live_tip(2, 99'999);  // never probed: its live tip does not count
  CHECK(h.best_tip() == std::optional<uint64_t>(10'500));
  h.note_live_tip(0, 11'000);  // X-Most-Recent-Checkpoint beyond the last probe
  CHECK(h.best_tip() == std::optional<uint64_t>(11'000));
  // It falls again when the best member's probe is down: a stale tip sets no bar.
  h.on_probe(0, probe(kDown, 11'000), 3'000);
  CHECK(h.best_tip() == std::optional<uint64_t>(10'500));
  h.on_probe(1, probe(kDown), 3'000);
  CHECK_FALSE(h.best_tip().has_value());
}

TEST_CASE("pool policy: a forked member's tip never becomes the best tip") {
  PoolHealth h = pool(3);
  h.on_probe(0, probe(kUp, 10'000), 2'000);
  h.on_probe(1, probe(kUp, 10'000), 2'000);
  h.on_probe(2, probe(kUp, 10'400), 2'000);
  CHECK(h.best_tip() == std::optional<uint64_t>(10'400));
  std::vector<health::Ballot> split(3);
  split[0].value = "9940:aa";
  split[1].value = "9940:aa";
  split[2].value = "9940:bb";
  std::vector<std::pair<size_t, Change>> changes;
  h.fork_round(split, ForkSource::probes, 3'000, changes);
  h.fork_round(split, ForkSource::probes, 5'000, changes);
  REQUIRE(h.at(2).forked());
  CHECK(h.best_tip() == std::optional<uint64_t>(10'000));
  // Neither its probes nor its live traffic raise it while it is forked.
  h.on_probe(2, probe(kUp, 20'000), 6'000);
  h.note_live_tip(2, 30'000);
  CHECK(h.best_tip() == std::optional<uint64_t>(10'000));
  split[2].value = "9940:aa";  // healed: it counts again
  h.fork_round(split, ForkSource::probes, 7'000, changes);
  CHECK_FALSE(h.at(2).forked());
  CHECK(h.best_tip() == std::optional<uint64_t>(30'000));
}
