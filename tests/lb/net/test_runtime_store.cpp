// build_runtime's sticky.store: the host resolved on the control thread into a numeric IP,
// the password's value carried, and a host that does not resolve never failing the build.
#include <doctest.h>

#include <cstdlib>
#include <string>

#include "config/loader.h"
#include "lb/net/runtime.h"

using namespace lb::net;

namespace {

config::Config with_store(const std::string& store) {
  config::LoadResult r = config::load_string(
      "listeners: [{name: p, listen: 127.0.0.1:0, routes: [{prefix: /, pool: k}]}]\n"
      "pools: {k: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}\n" +
          store,
      "t.yaml");
  std::string errors;
  for (const config::ConfigError& e : r.errors) errors += e.str() + "\n";
  REQUIRE_MESSAGE(r.config.has_value(), errors);
  return *r.config;
}

}  // namespace

TEST_CASE("runtime store: none without sticky.store") {
  Registry reg;
  auto rt = build_runtime(with_store(""), reg);
  CHECK_FALSE(rt->store.has_value());
}

TEST_CASE("runtime store: IP literals need no lookup; the password value is carried") {
  setenv("CORRAL_RT_STORE_PW", "pw-value", 1);
  config::Config v4 =
      with_store("sticky: {store: {redis: 127.0.0.1:6390, password: {env: CORRAL_RT_STORE_PW}}}\n");
  unsetenv("CORRAL_RT_STORE_PW");
  Registry reg;
  auto rt = build_runtime(v4, reg);
  REQUIRE(rt->store.has_value());
  CHECK(rt->store->ip == "127.0.0.1");
  CHECK(rt->store->port == 6390);
  CHECK(rt->store->password == "pw-value");

  auto rt6 = build_runtime(with_store("sticky: {store: {redis: \"[::1]:6391\"}}\n"), reg);
  REQUIRE(rt6->store.has_value());
  CHECK(rt6->store->ip == "::1");  // no brackets: ready for inet_pton
  CHECK(rt6->store->port == 6391);
  CHECK(rt6->store->password.empty());
}

TEST_CASE("runtime store: a name resolves to its first address (from /etc/hosts)") {
  Registry reg;
  auto rt = build_runtime(with_store("sticky: {store: {redis: localhost:6392}}\n"), reg);
  REQUIRE(rt->store.has_value());
  CHECK((rt->store->ip == "127.0.0.1" || rt->store->ip == "::1"));
  CHECK(rt->store->port == 6392);
}

TEST_CASE("runtime store: a host that does not resolve leaves the store down, never the build") {
  // .invalid never resolves (RFC 6761).
  const config::Config cfg =
      with_store("sticky: {store: {redis: corral-store-test.invalid:6379}}\n");
  Registry reg;
  auto rt = build_runtime(cfg, reg);
  REQUIRE(rt->store.has_value());
  CHECK(rt->store->ip.empty());
  CHECK(rt->store->port == 6379);
  CHECK(rt->pools.size() == 1);  // the rest of the snapshot is built

  // A reload of the same host:port keeps the last good address when the lookup fails.
  Runtime prev;
  prev.config = cfg;
  prev.store = RuntimeStore{"10.1.2.3", 6379, ""};
  auto again = build_runtime(cfg, reg, &prev);
  REQUIRE(again->store.has_value());
  CHECK(again->store->ip == "10.1.2.3");
  // ... but not for another host:port.
  auto other = build_runtime(
      with_store("sticky: {store: {redis: corral-store-test.invalid:6380}}\n"), reg, &prev);
  REQUIRE(other->store.has_value());
  CHECK(other->store->ip.empty());
}
