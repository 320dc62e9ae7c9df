#include <doctest.h>

#include <cctype>
#include <string_view>

#include "lb/core/store_scripts.h"

namespace s = lb::store_scripts;

namespace {
bool has(std::string_view script, std::string_view word) {
  return script.find(word) != std::string_view::npos;
}
}  // namespace

// The scripts' behaviour is checked against a real redis-server by the integration tests;
// here: each is present and touches the keys and commands its contract names.
TEST_CASE("store_scripts: each script uses the keys and commands of its contract") {
  CHECK(has(s::pin_claim, "KEYS[1]"));
  CHECK(has(s::pin_claim, "'NX', 'PX'"));
  CHECK_FALSE(has(s::pin_claim, "KEYS[2]"));

  CHECK(has(s::pin_cas, "PUBLISH"));
  CHECK(has(s::pin_cas, "ARGV[5]"));
  CHECK(has(s::pin_cas, "^v1|"));

  CHECK(has(s::pin_touch, "PEXPIRE"));
  CHECK(has(s::pin_touch, "ARGV[4]"));

  CHECK(has(s::fleet_sync, "KEYS[2]"));
  CHECK(has(s::fleet_sync, "ZREMRANGEBYSCORE"));
  CHECK(has(s::fleet_sync, "'counts:'"));
  CHECK(has(s::fleet_sync, "HGETALL"));

  CHECK(has(s::quota_take, "KEYS[2]"));
  CHECK(has(s::quota_take, "TIME"));
  CHECK(has(s::quota_take, "86400000"));
  CHECK(has(s::quota_cool, "PUBLISH"));
}

TEST_CASE("store_scripts: TIME-reading writers ask for effects replication (Redis 5-6)") {
  for (std::string_view script : {s::fleet_sync, s::quota_take}) {
    size_t rc = script.find("redis.replicate_commands()");
    REQUIRE(rc != std::string_view::npos);
    CHECK(rc < script.find("'TIME'"));
  }
}

TEST_CASE("store_scripts: every script returns and has balanced if/function ... end") {
  for (std::string_view script :
       {s::pin_claim, s::pin_cas, s::pin_touch, s::fleet_sync, s::quota_take, s::quota_cool}) {
    CHECK(has(script, "return"));
    // A cheap structural check: each opener ("if ... then", "for/while ... do",
    // "function") has one "end" (Lua has no other block closers we use).
    auto count = [&](std::string_view w) {
      size_t n = 0;
      for (size_t at = script.find(w); at != std::string_view::npos; at = script.find(w, at + 1)) {
        bool left = at == 0 || !std::isalnum(static_cast<unsigned char>(script[at - 1]));
        bool right = at + w.size() >= script.size() ||
                     !std::isalnum(static_cast<unsigned char>(script[at + w.size()]));
        n += left && right;
      }
      return n;
    };
    CHECK(count("then") + count("do") + count("function") == count("end"));
  }
}
