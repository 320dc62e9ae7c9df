#include <doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "health/live_points.h"
#include "lb/net/live_points.h"

using health::LiveMember;
using health::pack_live_point;

namespace {

uint64_t pt(uint64_t slot, uint32_t hash) { return (slot << 32) | hash; }

}  // namespace

TEST_CASE("live points: packing a Kupo checkpoint and its ETag") {
  CHECK(pack_live_point(1000, "0a1b2c3d4e5f") == pt(1000, 0x0a1b2c3d));
  CHECK(pack_live_point(1000, "\"0a1b2c3d\"") == pt(1000, 0x0a1b2c3d));
  CHECK(pack_live_point(1000, "W/\"0a1b2c3d\"") == pt(1000, 0x0a1b2c3d));
  CHECK(pack_live_point(0, "0a1b2c3d") == 0);           // no slot
  CHECK(pack_live_point(1ULL << 33, "0a1b2c3d") == 0);  // past 32 bits
  CHECK(pack_live_point(1000, "0a1b2c") == 0);          // too short
  CHECK(pack_live_point(1000, "0a1b2cxz") == 0);        // not hex
  CHECK(health::live_point_slot(pack_live_point(77, "ffffffff")) == 77);
}

TEST_CASE("live round: the newest slot two voters share, below the depth, not used before") {
  std::vector<uint64_t> a{pt(100, 1), pt(120, 1), pt(200, 1)};
  std::vector<uint64_t> b{pt(100, 1), pt(120, 2), pt(200, 2)};
  std::vector<uint64_t> c{pt(100, 1), pt(120, 1)};
  std::vector<LiveMember> m{{a, true, 1}, {b, true, 1}, {c, true, 1}};
  // 200 is above the depth: 120 is compared; all three hold it.
  auto r = health::live_round(m, 150, 0);
  REQUIRE(r);
  CHECK(r->slot == 120);
  REQUIRE(r->ballots.size() == 3);
  CHECK(r->ballots[0].value == std::string("120:00000001"));
  CHECK(r->ballots[1].value == std::string("120:00000002"));
  CHECK(r->ballots[2].value == r->ballots[0].value);
  CHECK(health::tally(r->ballots).result == health::ForkResult::disagree);
  // Once used, 120 is not evidence again: the next round takes nothing until newer points.
  CHECK_FALSE(health::live_round(m, 150, 120));
  // With the depth further on, 200 (held by a and b only) is next; c abstains.
  r = health::live_round(m, 250, 120);
  REQUIRE(r);
  CHECK(r->slot == 200);
  CHECK_FALSE(r->ballots[2].value);
  CHECK(health::tally(r->ballots).result == health::ForkResult::no_majority);
}

TEST_CASE("live round: members that do not vote neither count nor make a slot shared") {
  std::vector<uint64_t> a{pt(100, 1)}, b{pt(100, 2)}, c{pt(90, 1)};
  std::vector<LiveMember> m{{a, true, 1}, {b, false, 1}, {c, true, 1}};
  CHECK_FALSE(health::live_round(m, 150, 0));  // 100: one voter; 90: one holder
  m[1].votes = true;
  auto r = health::live_round(m, 150, 0);
  REQUIRE(r);
  CHECK(r->slot == 100);
  // Weights come with the ballots: 3 against 1 is a strict majority.
  m[0].weight = 3;
  r = health::live_round(m, 150, 0);
  auto t = health::tally(r->ballots);
  CHECK(t.result == health::ForkResult::disagree);
  CHECK(t.majority == std::string("100:00000001"));
}

TEST_CASE("live point ring: keeps newer checkpoints once, forgets a chain rolled back") {
  lb::net::LivePoints ring;
  auto count = [&](uint64_t slot) {
    int n = 0;
    for (uint64_t p : ring.snapshot())
      if (p != 0 && (p >> 32) == slot) ++n;
    return n;
  };
  ring.record(0);  // unusable: ignored
  ring.record(pt(100, 1));
  ring.record(pt(100, 1));  // the same checkpoint again: kept once
  ring.record(pt(120, 1));
  CHECK(count(100) == 1);
  CHECK(count(120) == 1);
  // An answer at 110 after 120: the backend rolled back (or was overtaken); 120 may be on
  // a chain it left, so it goes; 100 stays.
  ring.record(pt(110, 7));
  CHECK(count(120) == 0);
  CHECK(count(100) == 1);
  CHECK(count(110) == 1);  // where it is now
  ring.record(pt(130, 2));
  CHECK(count(130) == 1);
  // Another block at 130 (a slot battle it switched to): only the new one stays.
  ring.record(pt(130, 5));
  CHECK(count(130) == 1);
  bool has5 = false;
  for (uint64_t p : ring.snapshot()) has5 = has5 || p == pt(130, 5);
  CHECK(has5);
  // The ring keeps the newest kSize points.
  for (uint64_t s = 1000; s < 1000 + lb::net::LivePoints::kSize + 5; ++s) ring.record(pt(s, 3));
  CHECK(count(100) == 0);
  CHECK(count(1000 + lb::net::LivePoints::kSize + 4) == 1);
}
