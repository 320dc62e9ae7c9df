#include <doctest.h>

#include "lb/core/router.h"

using namespace lb;

namespace {
std::vector<RouteSpec> routes() {
  std::vector<RouteSpec> r(3);
  r[0].prefix = "/kupo/";
  r[0].pool = 0;
  r[0].strip_prefix = true;
  r[0].methods = {"GET", "HEAD", "OPTIONS"};
  r[0].kupo = true;
  r[1].prefix = "/ogmios";
  r[1].pool = 1;
  r[1].strip_prefix = true;
  r[2].prefix = "/admin-kupo/";
  r[2].pool = 0;
  r[2].kupo = true;
  r[2].allow_writes = true;
  r[2].strip_prefix = true;
  return r;
}
}  // namespace

TEST_CASE("prefix matching respects segment boundaries") {
  CHECK(prefix_matches("/ogmios", "/ogmios"));
  CHECK(prefix_matches("/ogmios", "/ogmios/x"));
  CHECK(prefix_matches("/ogmios", "/ogmios?x=1"));
  CHECK_FALSE(prefix_matches("/ogmios", "/ogmiosx"));
  CHECK(prefix_matches("/kupo/", "/kupo/matches"));
  CHECK(prefix_matches("/kupo/", "/kupo"));
  CHECK_FALSE(prefix_matches("/kupo/", "/kup"));
  CHECK(prefix_matches("/", "/anything"));
}

TEST_CASE("strip_prefix keeps a leading slash") {
  auto r = routes();
  RouteMatch m = match_route(r, "GET", "/kupo/matches/addr1x?unspent");
  REQUIRE(m.admission == Admission::ok);
  CHECK(m.route == &r[0]);
  CHECK(m.forward == "/matches/addr1x?unspent");
  CHECK_FALSE(m.needs_slash);
  m = match_route(r, "GET", "/kupo");
  CHECK(m.admission == Admission::ok);
  CHECK(m.forward.empty());
  CHECK(m.needs_slash);
  m = match_route(r, "POST", "/ogmios?x");
  CHECK(m.route == &r[1]);
  CHECK(m.forward == "?x");
  CHECK(m.needs_slash);
}

TEST_CASE("first matching route wins and unknown paths have no route") {
  auto r = routes();
  CHECK(match_route(r, "GET", "/nothing").admission == Admission::no_route);
  CHECK(match_route(r, "GET", "/admin-kupo/patterns").route == &r[2]);
}

TEST_CASE("method allowlist") {
  auto r = routes();
  CHECK(match_route(r, "POST", "/kupo/matches").admission == Admission::method_not_allowed);
  CHECK(match_route(r, "HEAD", "/kupo/matches").admission == Admission::ok);
  CHECK(match_route(r, "DELETE", "/ogmios").admission == Admission::ok);  // no list: all
}

TEST_CASE("Kupo write endpoints are blocked unless the route allows writes") {
  CHECK(is_kupo_write("PUT", "/patterns/addr1x"));
  CHECK(is_kupo_write("DELETE", "/patterns"));
  CHECK(is_kupo_write("DELETE", "/matches/*"));
  CHECK_FALSE(is_kupo_write("GET", "/patterns"));
  CHECK_FALSE(is_kupo_write("GET", "/matches/x"));
  CHECK_FALSE(is_kupo_write("DELETE", "/matchesx"));
  auto r = routes();
  r[0].methods.clear();
  CHECK(match_route(r, "PUT", "/kupo/patterns/x").admission == Admission::write_blocked);
  CHECK(match_route(r, "DELETE", "/kupo/matches/x").admission == Admission::write_blocked);
  CHECK(match_route(r, "GET", "/kupo/patterns").admission == Admission::ok);
  CHECK(match_route(r, "PUT", "/admin-kupo/patterns/x").admission == Admission::ok);
  // Not a Kupo pool: no guard.
  CHECK(match_route(r, "DELETE", "/ogmios/matches").admission == Admission::ok);
}
