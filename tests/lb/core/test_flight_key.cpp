#include <doctest.h>

#include <string>
#include <unordered_set>

#include "lb/core/flight_key.h"

using namespace lb;

namespace {
const CacheVerdict kImmutable{CacheClass::immutable, 0, ""};
const CacheVerdict kNone{};
std::string why(std::string_view m, const ReqFacts& f, const CacheVerdict& v, bool ws = false,
                bool stream_pool = true) {
  Collapse c = collapsible(m, f, v, ws, stream_pool);
  return c.ok ? "ok" : c.reason;
}
}  // namespace

TEST_CASE("flight_key: only plain GETs collapse") {
  ReqFacts f;
  CHECK(why("GET", f, kNone) == "ok");
  CHECK(why("GET", f, kImmutable) == "ok");
  CHECK(why("HEAD", f, kImmutable) == "method");
  CHECK(why("POST", f, kNone) == "method");
  CHECK(why("GET", f, kNone, true) == "websocket");
  for (bool ReqFacts::*m : {&ReqFacts::has_body, &ReqFacts::upgrade, &ReqFacts::expect}) {
    ReqFacts g;
    g.*m = true;
    CHECK(why("GET", g, kImmutable) == "body");
  }
  ReqFacts r;
  r.range = true;
  CHECK(why("GET", r, kImmutable) == "range");
  for (bool ReqFacts::*m :
       {&ReqFacts::if_match, &ReqFacts::if_range, &ReqFacts::if_modified_since}) {
    ReqFacts g;
    g.*m = true;
    CHECK(why("GET", g, kImmutable) == "conditional");
  }
}

TEST_CASE("flight_key: credentials and If-None-Match only block stream flights") {
  for (bool ReqFacts::*m : {&ReqFacts::authorization, &ReqFacts::cookie}) {
    ReqFacts g;
    g.*m = true;
    CHECK(why("GET", g, kNone) == "credentials");
    CHECK(why("GET", g, kImmutable) == "ok");
  }
  ReqFacts inm;
  inm.if_none_match = true;
  CHECK(why("GET", inm, kNone) == "conditional");
  CHECK(why("GET", inm, kImmutable) == "ok");
}

TEST_CASE("flight_key: stream flights only on pools whose answers ignore per-user headers") {
  // An http or blockfrost backend may answer by X-Api-Key, project_id or Origin, none of
  // which the key holds: only cacheable requests (fill flights) collapse there.
  ReqFacts f;
  CHECK(why("GET", f, kNone, false, false) == "pool kind");
  CHECK(why("GET", f, kImmutable, false, false) == "ok");
  CHECK(why("GET", f, kNone, false, true) == "ok");
  // The other refusals still come first.
  CHECK(why("HEAD", f, kNone, false, false) == "method");
}

TEST_CASE("flight_key: scope separates fill flights from each backend's stream flights") {
  CacheKey k = cache_key(1, "/matches/x?unspent\n\n");
  FlightKey fill = fill_flight_key(k);
  FlightKey b0 = stream_flight_key(k, 0);
  FlightKey b1 = stream_flight_key(k, 1);
  CHECK(fill.scope == kPoolScope);
  CHECK(b0.scope == 0);
  CHECK_FALSE(fill == b0);
  CHECK_FALSE(b0 == b1);
  CHECK(b1 == stream_flight_key(k, 1));
  std::unordered_set<FlightKey, FlightKeyHash> set{fill, b0, b1, stream_flight_key(k, 1)};
  CHECK(set.size() == 3);
  CHECK_FALSE(stream_flight_key(cache_key(2, "/matches/x?unspent\n\n"), 1) == b1);
}
