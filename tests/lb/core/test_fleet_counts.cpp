#include <doctest.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "lb/core/fleet_counts.h"

using lb::BackendRef;
using lb::FleetCounts;
using lb::parse_fleet_reply;

namespace {
// A resolver over a fixed name -> ref map, as the control loop builds from its Registry.
auto resolver(std::map<std::string, BackendRef, std::less<>> m) {
  return [m = std::move(m)](std::string_view name) -> std::optional<BackendRef> {
    auto it = m.find(name);
    if (it == m.end()) return std::nullopt;
    return it->second;
  };
}
}  // namespace

TEST_CASE("fleet_counts: others, replace and clear") {
  FleetCounts f;
  CHECK(f.others(3) == 0);
  CHECK(f.live_instances() == 1);
  std::vector<std::pair<BackendRef, uint64_t>> a{{3, 10}, {5, 7}, {3, 2}};
  f.replace(a);
  CHECK(f.others(3) == 12);
  CHECK(f.others(5) == 7);
  CHECK(f.others(4) == 0);
  std::vector<std::pair<BackendRef, uint64_t>> b{{5, 1}, {lb::kMaxBackends, 9}};
  f.replace(b);  // 3 no longer listed: back to 0; an out-of-range ref is ignored
  CHECK(f.others(3) == 0);
  CHECK(f.others(5) == 1);
  CHECK(f.others(lb::kMaxBackends) == 0);
  f.set_live_instances(4);
  f.clear();
  CHECK(f.others(5) == 0);
  CHECK(f.live_instances() == 4);
  f.set_live_instances(0);
  CHECK(f.live_instances() == 1);  // this instance is always live
}

TEST_CASE("fleet_counts: the reply is summed per local ref, unknown names skipped") {
  CHECK(lb::fleet_count_name("kupo", "kupo-2") == "kupo/kupo-2");
  auto resolve = resolver({{"kupo/kupo-1", 0}, {"kupo/kupo-2", 1}, {"ogmios/og-1", 7}});
  std::vector<std::string_view> pairs{"kupo/kupo-1", "3", "kupo/kupo-2", "40", "kupo/kupo-1", "5",
                                      "gone/old-1",  "9", "ogmios/og-1", "0"};
  auto r = parse_fleet_reply(3, pairs, resolve);
  REQUIRE(r);
  CHECK(r->live_instances == 3);
  CHECK(r->unknown == 1);
  std::vector<std::pair<BackendRef, uint64_t>> want{{0, 8}, {1, 40}, {7, 0}};
  CHECK(r->counts == want);
  FleetCounts f;
  f.replace(r->counts);
  CHECK(f.others(0) == 8);
  CHECK(f.others(1) == 40);
}

TEST_CASE("fleet_counts: a lone instance's reply is empty, not malformed") {
  auto r = parse_fleet_reply(1, {}, resolver({}));
  REQUIRE(r);
  CHECK(r->live_instances == 1);
  CHECK(r->counts.empty());
}

TEST_CASE("fleet_counts: malformed replies are refused whole") {
  auto resolve = resolver({{"p/a", 0}});
  std::vector<std::string_view> odd{"p/a", "1", "p/a"};
  CHECK_FALSE(parse_fleet_reply(2, odd, resolve));
  std::vector<std::string_view> ok{"p/a", "1"};
  CHECK_FALSE(parse_fleet_reply(0, ok, resolve));
  CHECK_FALSE(parse_fleet_reply(-1, ok, resolve));
  for (std::string_view bad : {"", "-1", "1.5", "x", "1 ", "18446744073709551616"}) {
    INFO(bad);
    std::vector<std::string_view> p{"p/a", bad};
    CHECK_FALSE(parse_fleet_reply(2, p, resolve));
  }
}
