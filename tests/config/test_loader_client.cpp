// Route client_rate_limit and pool remove_headers (issue 11): read, defaulted, refused.
#include <doctest.h>

#include <string>

#include "config/loader.h"
#include "tests/config/loader_helpers.h"

using config::LoadResult;
using namespace loader_test;

namespace {

// A valid file; `route` goes inside the route's mapping (line 3), `pool` on line 6.
std::string file(const std::string& route, const std::string& pool = "") {
  return "listeners:\n  - {name: p, listen: 127.0.0.1:8080,\n     routes: [{prefix: /, pool: bf" +
         route +
         "}]}\npools:\n  bf: {kind: blockfrost, backends: [{name: b, address: 127.0.0.1:1}]" +
         pool + "}\n";
}

LoadResult load_text(const std::string& s) { return config::load_string(s, "t.yaml"); }

}  // namespace

TEST_CASE("client_rate_limit: read, with burst defaulting to one second of rps") {
  LoadResult r = load_text(file(", client_rate_limit: {rps: 5, burst: 50, per_ip_rps: 20}"));
  INFO(dump(r));
  REQUIRE(r.config.has_value());
  const lb::ClientLimit& l = r.config->listeners[0].routes[0].client_rate_limit;
  CHECK(l.rps == 5);
  CHECK(l.burst == 50);
  CHECK(l.per_ip_rps == 20);
  CHECK(l.enabled());

  LoadResult d = load_text(file(", client_rate_limit: {rps: 2.5}"));
  REQUIRE(d.config.has_value());
  const lb::ClientLimit& dl = d.config->listeners[0].routes[0].client_rate_limit;
  CHECK(dl.burst == 3);
  CHECK(dl.per_ip_rps == 0);

  LoadResult none = load_text(file(""));
  REQUIRE(none.config.has_value());
  CHECK_FALSE(none.config->listeners[0].routes[0].client_rate_limit.enabled());
}

TEST_CASE("client_rate_limit: bad values are refused with their key") {
  check_single(load_text(file(", client_rate_limit: {burst: 5}")), 3, 56,
               "listeners[0].routes[0].client_rate_limit.rps", "required key is missing");
  check_single(load_text(file(", client_rate_limit: {rps: 0}")), 3, 62,
               "listeners[0].routes[0].client_rate_limit.rps", "rps must be above 0");
  check_single(load_text(file(", client_rate_limit: {rps: 5, burst: 0.5}")), 3, 72,
               "listeners[0].routes[0].client_rate_limit.burst", "burst must be at least 1");
  check_single(load_text(file(", client_rate_limit: {rps: 5, per_ip_rps: 2}")), 3, 77,
               "listeners[0].routes[0].client_rate_limit.per_ip_rps", "below rps");
  check_single(load_text(file(", client_rate_limit: {rps: 5, rate: 2}")), 3, 65,
               "listeners[0].routes[0].client_rate_limit.rate", "unknown key 'rate'");
}

TEST_CASE("remove_headers: names read both ways") {
  LoadResult r = load_text(
      file("", ", remove_headers: {request: [Cookie, X-Debug], response: [server, X-Powered-By]}"));
  INFO(dump(r));
  REQUIRE(r.config.has_value());
  const config::RemoveHeaders& h = r.config->pools[0].remove_headers;
  CHECK(h.request == std::vector<std::string>{"Cookie", "X-Debug"});
  CHECK(h.response == std::vector<std::string>{"server", "X-Powered-By"});
}

TEST_CASE("remove_headers: bad names, framing fields, repeats and injected names refused") {
  check_single(load_text(file("", ", remove_headers: {request: [\"X Bad\"]}")), 5, 98,
               "pools.bf.remove_headers.request[0]", "not a valid header name");
  check_single(load_text(file("", ", remove_headers: {response: [Content-Length]}")), 5, 99,
               "pools.bf.remove_headers.response[0]", "cannot be removed");
  check_single(load_text(file("", ", remove_headers: {request: [host]}")), 5, 98,
               "pools.bf.remove_headers.request[0]", "cannot be removed");
  // Host may go from a response (it means nothing there).
  CHECK(load_text(file("", ", remove_headers: {response: [host]}")).config.has_value());
  check_single(load_text(file("", ", remove_headers: {request: [a, A]}")), 5, 101,
               "pools.bf.remove_headers.request[1]", "listed twice");
  check_single(load_text(file("", ", remove_headers: {requests: [a]}")), 5, 88,
               "pools.bf.remove_headers.requests", "unknown key");
  TempDir dir;
  std::string secret = dir.write("key", "s3cret\n");
  LoadResult inj = load_text(file("", ", set_headers: {project_id: {file: " + secret +
                                          "}}, remove_headers: {request: [Project_ID]}"));
  INFO(dump(inj));
  REQUIRE(inj.errors.size() == 1);
  CHECK(inj.errors[0].key == "pools.bf.remove_headers.request[0]");
  CHECK(inj.errors[0].message.find("injected by set_headers") != std::string::npos);
  CHECK(inj.errors[0].message.find("s3cret") == std::string::npos);
}
