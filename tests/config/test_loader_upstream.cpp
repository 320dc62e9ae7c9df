// Backend `tls` and pool `resolve_interval`: the upstream keys of issue 11.
#include <doctest.h>

#include <string>

#include "config/loader.h"
#include "tests/config/loader_helpers.h"

using config::LoadResult;
using namespace loader_test;

namespace {

// One pool `bf` with the given backend list and extra pool lines (backends on line 5, extra from
// 6).
LoadResult pool_with(const std::string& backends, const std::string& extra = "") {
  return config::load_string(
      "listeners: [{name: p, listen: 127.0.0.1:8080, routes: [{prefix: /, pool: bf}]}]\n"
      "pools:\n  bf:\n    kind: http\n    backends: " +
          backends + "\n" + extra,
      "t.yaml");
}

const char* kCert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";  // shape only

}  // namespace

TEST_CASE("loader upstream: tls true, false and a map") {
  TempDir dir;
  std::string ca = dir.write("ca.pem", kCert);
  LoadResult r = pool_with(
      "[{name: a, address: example.org:443, tls: true},\n"
      "               {name: b, address: 127.0.0.1:8443, tls: {ca: " +
      ca + ", server_name: api.example.org}},\n" +
      "               {name: c, address: 127.0.0.1:80, tls: false},\n" +
      "               {name: d, address: 127.0.0.1:81}]");
  INFO(dump(r));
  REQUIRE(r.config.has_value());
  const auto& b = r.config->pools[0].backends;
  CHECK(b[0].tls);
  CHECK(b[0].tls_ca.empty());
  CHECK(b[0].tls_server_name.empty());
  CHECK(b[1].tls);
  CHECK(b[1].tls_ca == ca);
  CHECK(b[1].tls_server_name == "api.example.org");
  CHECK_FALSE(b[2].tls);
  CHECK_FALSE(b[3].tls);
}

TEST_CASE("loader upstream: a tls map with only a CA, or only a name, turns TLS on") {
  TempDir dir;
  std::string ca = dir.write("ca.pem", kCert);
  LoadResult r = pool_with("[{name: a, address: 127.0.0.1:1, tls: {ca: " + ca +
                           "}}, {name: b, address: 127.0.0.1:2, tls: {server_name: x.test}}]");
  INFO(dump(r));
  REQUIRE(r.config.has_value());
  CHECK(r.config->pools[0].backends[0].tls);
  CHECK(r.config->pools[0].backends[0].tls_server_name.empty());
  CHECK(r.config->pools[0].backends[1].tls);
  CHECK(r.config->pools[0].backends[1].tls_ca.empty());
}

TEST_CASE("loader upstream: bad tls values are refused, located") {
  TempDir dir;
  std::string not_pem = dir.write("notpem.txt", "hello\n");
  SUBCASE("a missing CA file") {
    check_single(pool_with("[{name: a, address: 127.0.0.1:1, tls: {ca: " + dir.path.string() +
                           "/none.pem}}]"),
                 5, 58, "pools.bf.backends[0].tls.ca", "cannot use");
  }
  SUBCASE("a CA file with no certificate") {
    check_single(pool_with("[{name: a, address: 127.0.0.1:1, tls: {ca: " + not_pem + "}}]"), 5, 58,
                 "pools.bf.backends[0].tls.ca", "no PEM certificate");
  }
  SUBCASE("an unknown key in the map") {
    LoadResult r = pool_with("[{name: a, address: 127.0.0.1:1, tls: {verify: false}}]");
    INFO(dump(r));
    REQUIRE_FALSE(r.config.has_value());
    CHECK(r.errors[0].key == "pools.bf.backends[0].tls.verify");
  }
  SUBCASE("a server name with a space") {
    LoadResult r = pool_with("[{name: a, address: 127.0.0.1:1, tls: {server_name: \"a b\"}}]");
    INFO(dump(r));
    REQUIRE_FALSE(r.config.has_value());
    CHECK(r.errors[0].key == "pools.bf.backends[0].tls.server_name");
  }
  SUBCASE("not a boolean") {
    LoadResult r = pool_with("[{name: a, address: 127.0.0.1:1, tls: yes-please}]");
    REQUIRE_FALSE(r.config.has_value());
    CHECK(r.errors[0].key == "pools.bf.backends[0].tls");
  }
}

TEST_CASE("loader upstream: resolve_interval defaults to 60s, is a duration of 1s or more") {
  LoadResult def = pool_with("[{name: a, address: localhost:1}]");
  REQUIRE(def.config.has_value());
  CHECK(def.config->pools[0].resolve_interval_ms == 60'000);
  LoadResult set = pool_with("[{name: a, address: localhost:1}]", "    resolve_interval: 5s\n");
  INFO(dump(set));
  REQUIRE(set.config.has_value());
  CHECK(set.config->pools[0].resolve_interval_ms == 5'000);
  check_single(pool_with("[{name: a, address: localhost:1}]", "    resolve_interval: 200ms\n"), 6,
               23, "pools.bf.resolve_interval", "at least 1s");
  LoadResult zero = pool_with("[{name: a, address: localhost:1}]", "    resolve_interval: 0\n");
  CHECK_FALSE(zero.config.has_value());
}
