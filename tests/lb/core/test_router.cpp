#include <doctest.h>

#include <string>
#include <vector>

#include "lb/core/path_normalizer.h"
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

// ---- the Kupo write guard against Kupo's own routing ----------------------------------

namespace {

// Kupo's router (src/Kupo/App/Http.hs on WAI): pathInfo is the path before '?', its one
// leading '/' dropped, split on '/', each segment fully percent-decoded
// (decodePathSegments); a leading "v1" is dropped and routing starts again; segments
// compare exactly. True when Kupo would take `raw` as a write.
bool kupo_takes_write(std::string_view method, std::string_view raw) {
  raw = raw.substr(0, raw.find('?'));
  if (raw.starts_with('/')) raw.remove_prefix(1);
  std::vector<std::string> segs;
  if (!raw.empty()) {
    std::string cur;
    for (size_t i = 0; i <= raw.size(); ++i) {
      if (i == raw.size() || raw[i] == '/') {
        segs.push_back(cur);
        cur.clear();
      } else if (raw[i] == '%' && i + 2 < raw.size()) {
        cur.push_back(static_cast<char>(std::stoi(std::string(raw.substr(i + 1, 2)), nullptr, 16)));
        i += 2;
      } else {
        cur.push_back(raw[i]);
      }
    }
  }
  size_t k = 0;
  while (k < segs.size() && segs[k] == "v1") ++k;
  if (k == segs.size()) return false;
  if (segs[k] == "patterns") return method == "PUT" || method == "DELETE";
  if (segs[k] == "matches") return method == "DELETE";
  return false;
}

struct Routed {
  Admission admission = Admission::no_route;
  bool bad = false;       // the normaliser refused the target (400)
  std::string forwarded;  // what the backend would receive, when admitted
};

// The connection's steps: normalise in place, match, forward.
Routed route(const std::vector<RouteSpec>& routes, std::string_view method, std::string target) {
  Routed out;
  NormalizedTarget t = normalize_target(target.data(), target.size());
  if (t.error) {
    out.bad = true;
    return out;
  }
  RouteMatch m = match_route(routes, method, t.origin);
  out.admission = m.admission;
  if (m.admission == Admission::ok)
    out.forwarded = std::string(m.needs_slash ? "/" : "") + std::string(m.forward);
  return out;
}

std::vector<RouteSpec> kupo_route(std::string prefix, bool strip, bool allow_writes = false) {
  std::vector<RouteSpec> r(1);
  r[0].prefix = std::move(prefix);
  r[0].strip_prefix = strip;
  r[0].kupo = true;
  r[0].allow_writes = allow_writes;
  return r;
}

struct GuardCase {
  const char* method;
  const char* target;
  // Expected on a `/kupo/` route with strip_prefix (s) and on a `/` route without (n).
  const char* s;
  const char* n;
};

// "403": write_blocked, "ok": admitted, "404": no route, "400": refused by the normaliser.
const GuardCase kGuardCases[] = {
    // The three examples and their relatives.
    {"PUT", "/kupo/v1/patterns/*", "403", "ok"},
    {"DELETE", "/kupo/v1/matches/*", "403", "ok"},
    {"PUT", "/kupo/%70atterns/*", "403", "ok"},
    {"PUT", "/v1/patterns/*", "404", "403"},
    {"DELETE", "/v1/v1/matches", "404", "403"},
    {"PUT", "/kupo/v1/v1/patterns", "403", "ok"},
    {"PUT", "/kupo/patterns", "403", "ok"},
    {"DELETE", "/kupo/patterns/addr1x", "403", "ok"},
    {"DELETE", "/kupo/matches?spent", "403", "ok"},
    {"PUT", "/kupo/patterns?x=1", "403", "ok"},
    {"PUT", "/kupo//patterns", "403", "ok"},
    {"PUT", "//patterns", "404", "403"},
    {"PUT", "/kupo/./patterns", "403", "ok"},
    {"PUT", "/./patterns", "404", "403"},
    {"PUT", "/kupo/x/../patterns", "403", "ok"},
    {"PUT", "/x/../patterns", "404", "403"},
    {"PUT", "/kupo/%2E/patterns", "403", "ok"},
    {"PUT", "/kupo/v%31/%70%61tterns", "403", "ok"},
    {"DELETE", "/kupo/v1/./v1//matches/", "403", "ok"},
    {"PUT", "http://h/kupo/v1/patterns", "403", "ok"},
    {"PUT", "http://h/v1/patterns?x", "404", "403"},
    // Not writes by Kupo's rules (it answers 404 or 405): admitted like any request.
    {"PUT", "/kupo/PATTERNS", "ok", "ok"},
    {"PUT", "/kupo/matches", "ok", "ok"},
    {"GET", "/kupo/v1/patterns", "ok", "ok"},
    {"GET", "/kupo/matches/*?unspent", "ok", "ok"},
    {"DELETE", "/kupo/v1", "ok", "ok"},
    {"PUT", "/kupo/v2/patterns", "ok", "ok"},
    {"PUT", "/kupo/patternsx", "ok", "ok"},
    {"PUT", "/kupo/x/patterns", "ok", "ok"},
    {"PUT", "/kupo/?patterns", "ok", "ok"},
    // Out of the prefix by dot segments: not this route.
    {"PUT", "/kupo/../patterns", "404", "403"},
    // Ambiguous encodings: refused before any routing.
    {"PUT", "/kupo/patterns%2Fx", "400", "400"},
    {"DELETE", "/kupo/%2Fmatches", "400", "400"},
    {"PUT", "/kupo/%00patterns", "400", "400"},
    {"PUT", "/kupo/%7patterns", "400", "400"},
    {"PUT", "/../kupo/patterns", "400", "400"},
};

std::string outcome(const Routed& r) {
  if (r.bad) return "400";
  switch (r.admission) {
    case Admission::ok:
      return "ok";
    case Admission::write_blocked:
      return "403";
    case Admission::no_route:
      return "404";
    case Admission::method_not_allowed:
      return "405";
  }
  return "?";
}

}  // namespace

TEST_CASE("the Kupo write guard follows Kupo's routing, with and without strip_prefix") {
  const auto strip = kupo_route("/kupo/", true);
  const auto whole = kupo_route("/", false);
  for (const GuardCase& c : kGuardCases) {
    CAPTURE(c.method);
    CAPTURE(c.target);
    Routed s = route(strip, c.method, c.target);
    Routed n = route(whole, c.method, c.target);
    CHECK(outcome(s) == c.s);
    CHECK(outcome(n) == c.n);
    // The property the guard exists for: whatever is admitted, Kupo does not take as a
    // write (judged on the forwarded bytes by Kupo's own rules).
    if (s.admission == Admission::ok) CHECK_FALSE(kupo_takes_write(c.method, s.forwarded));
    if (n.admission == Admission::ok) CHECK_FALSE(kupo_takes_write(c.method, n.forwarded));
    // And the reference agrees that what is blocked is a write once forwarded.
    if (outcome(s) == "403") {
      auto open = kupo_route("/kupo/", true, true);
      Routed o = route(open, c.method, c.target);
      REQUIRE(o.admission == Admission::ok);
      CHECK(kupo_takes_write(c.method, o.forwarded));
    }
  }
}

TEST_CASE("the guard forwards the normalised target it checked") {
  const auto strip = kupo_route("/kupo/", true);
  CHECK(route(strip, "GET", "/kupo//v1/%6Datches/addr1x?unspent&x=%41").forwarded ==
        "/v1/matches/addr1x?unspent&x=%41");
  CHECK(route(strip, "GET", "/kupo/a/../health").forwarded == "/health");
  CHECK(route(strip, "GET", "http://h:1/kupo").forwarded == "/");
  const auto open = kupo_route("/kupo/", true, true);
  CHECK(route(open, "PUT", "/kupo/%70atterns/*").forwarded == "/patterns/*");
}

TEST_CASE("is_kupo_write drops any number of leading v1 segments") {
  struct {
    const char* method;
    const char* path;
    bool write;
  } cases[] = {
      {"PUT", "/v1/patterns", true},   {"PUT", "/v1/v1/v1/patterns/x", true},
      {"DELETE", "/v1/matches", true}, {"DELETE", "/v1", false},
      {"DELETE", "/", false},          {"DELETE", "", false},
      {"PUT", "/V1/patterns", false},  {"PUT", "/v1x/patterns", false},
  };
  for (const auto& c : cases) {
    CAPTURE(c.method);
    CAPTURE(c.path);
    CHECK(is_kupo_write(c.method, c.path) == c.write);
  }
}
