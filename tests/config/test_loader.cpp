#include <doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "config/loader.h"
#include "tests/config/loader_helpers.h"

using config::ConfigError;
using config::LoadResult;
using namespace loader_test;

namespace {

// DESIGN.md's example as it stood before it grew keys corral does not implement yet (those
// are refused; see test_loader_keys.cpp, which loads today's example verbatim).
const char* kDesignExample = R"(
workers: 1                      # event-loop threads; 0 = one per core
admin: {listen: 127.0.0.1:9901}  # token_file: optional bearer token
listeners:
  - name: public
    listen: 127.0.0.1:8080
    # tls: {cert: cert.pem, key: key.pem}
    routes:                      # first prefix that matches wins
      - {prefix: /kupo/, pool: kupo, strip_prefix: true, methods: [GET, HEAD, OPTIONS]}
      - {prefix: /ogmios, pool: ogmios, strip_prefix: true, websocket: false}
      - {prefix: /blockfrost/, pool: blockfrost, strip_prefix: true}
sticky:
  keys:                          # tried in order; the first that yields a key wins
    - {from: path, prefix: /s/}  # /s/<token>/rest -> key <token>, forwards /rest
    - {from: cookie, name: corral}
    - {from: header, name: X-Session-Key}
    - {from: address}            # stake credential of a Cardano address in the path
    - {from: client_ip}
  ttl: 1h                        # idle pins expire
  max_sessions: 1000000
  balance_factor: 1.25           # bounded loads for new users; 0 = off
pools:
  kupo:
    kind: kupo                   # kupo | ogmios | blockfrost | http
    backends:
      - {name: kupo-1, address: 127.0.0.1:1442}
      - {name: kupo-2, address: 127.0.0.1:1443, weight: 2}
    health: {interval: 2s, timeout: 1s, rise: 2, fall: 3, max_lag_slots: 600}
    eject: {consecutive_503: 3, base_time: 10s, max_time: 5m, max_percent: 50}
    timeouts: {connect: 2s, response: 30s}
  blockfrost:
    kind: blockfrost
    backends: [{name: bf, address: cardano-preprod.blockfrost.io:443, tls: false}]
    set_headers: {project_id: {env: BLOCKFROST_PROJECT_ID}}
    slow_start: 0
limits: {max_connections: 10000, max_header_bytes: 16384, header_timeout: 10s, idle_timeout: 60s}
)";

// A listener and a one-backend Kupo pool on lines 1-5 (pools in flow style), for cases
// that add a key or two: their lines are numbered from 6 on.
const char* kOnePoolHead = R"(
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo}]
pools: {kupo: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}
)";

// Loads kOnePoolHead followed by `tail`, whose first line is line 6.
LoadResult load_one_pool(const char* tail) {
  return load((std::string(kOnePoolHead) + tail).c_str());
}

// A small valid file that error tests mutate one line at a time.
const char* kMinimal = R"(
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - {prefix: /, pool: kupo}
pools:
  kupo:
    kind: kupo
    backends:
      - {name: kupo-1, address: 127.0.0.1:1442}
)";

}  // namespace

TEST_CASE("loader: the DESIGN.md example names a pool it does not define") {
  setenv("BLOCKFROST_PROJECT_ID", "preprodSECRET123", 1);
  LoadResult r = load(kDesignExample);
  // The example routes /ogmios to a pool 'ogmios' but defines only kupo and blockfrost.
  check_single(r, 9, 33, "listeners[0].routes[1].pool", "route to unknown pool 'ogmios'");
  unsetenv("BLOCKFROST_PROJECT_ID");
}

TEST_CASE("loader: the DESIGN.md example, completed with an ogmios pool, loads") {
  setenv("BLOCKFROST_PROJECT_ID", "  preprodSECRET123\n", 1);
  std::string text = yaml(kDesignExample);
  std::string ogmios =
      "  ogmios:\n    kind: ogmios\n    backends: [{name: ogmios-1, address: 127.0.0.1:1337}]\n";
  text.insert(text.find("limits:"), ogmios);
  LoadResult r = config::load_string(text, "design.yaml");
  unsetenv("BLOCKFROST_PROJECT_ID");
  INFO(dump(r));
  REQUIRE(r.errors.empty());
  REQUIRE(r.config.has_value());
  const config::Config& c = *r.config;
  CHECK(c.source == "design.yaml");
  CHECK(c.workers == 1);
  CHECK(c.admin.listen.host == "127.0.0.1");
  CHECK(c.admin.listen.port == 9901);
  CHECK(c.admin.token.empty());

  REQUIRE(c.listeners.size() == 1);
  const config::Listener& l = c.listeners[0];
  CHECK(l.name == "public");
  CHECK(l.listen.text == "127.0.0.1:8080");
  CHECK(l.listen.port == 8080);
  CHECK_FALSE(l.tls.has_value());
  REQUIRE(l.routes.size() == 3);
  CHECK(l.routes[0].prefix == "/kupo/");
  CHECK(l.routes[0].pool == "kupo");
  CHECK(l.routes[0].strip_prefix);
  CHECK(l.routes[0].methods == std::vector<std::string>{"GET", "HEAD", "OPTIONS"});
  CHECK_FALSE(l.routes[0].websocket);
  CHECK_FALSE(l.routes[0].allow_writes);
  CHECK(l.routes[1].prefix == "/ogmios");
  CHECK_FALSE(l.routes[1].websocket);
  CHECK(l.routes[1].methods.empty());
  CHECK(l.routes[2].pool == "blockfrost");

  REQUIRE(c.sticky.keys.size() == 5);
  CHECK(c.sticky.keys[0].from == lb::KeySource::path);
  CHECK(c.sticky.keys[0].arg == "/s/");
  CHECK(c.sticky.keys[1].from == lb::KeySource::cookie);
  CHECK(c.sticky.keys[1].arg == "corral");
  CHECK(c.sticky.keys[2].from == lb::KeySource::header);
  CHECK(c.sticky.keys[2].arg == "X-Session-Key");
  CHECK(c.sticky.keys[3].from == lb::KeySource::address);
  CHECK(c.sticky.keys[4].from == lb::KeySource::client_ip);
  CHECK(c.sticky.ttl_ms == 3'600'000);
  CHECK(c.sticky.max_sessions == 1'000'000);
  CHECK(c.sticky.balance_factor == doctest::Approx(1.25));
  CHECK(c.sticky.hash == lb::SelectorKind::rendezvous);

  REQUIRE(c.pools.size() == 3);  // file order
  CHECK(c.pools[0].name == "kupo");
  CHECK(c.pools[1].name == "blockfrost");
  CHECK(c.pools[2].name == "ogmios");
  const config::Pool& kupo = c.pools[0];
  CHECK(kupo.kind == config::PoolKind::kupo);
  REQUIRE(kupo.backends.size() == 2);
  CHECK(kupo.backends[0].name == "kupo-1");
  CHECK(kupo.backends[0].address.port == 1442);
  CHECK(kupo.backends[0].weight == 1);
  CHECK(kupo.backends[1].weight == 2);
  CHECK_FALSE(kupo.backends[1].tls);
  CHECK(kupo.health.interval_ms == 2000);
  CHECK(kupo.health.timeout_ms == 1000);
  CHECK(kupo.health.rise == 2);
  CHECK(kupo.health.fall == 3);
  CHECK(kupo.health.max_lag_slots == 600);
  CHECK(kupo.eject.consecutive_503 == 3);
  CHECK(kupo.eject.base_time_ms == 10'000);
  CHECK(kupo.eject.max_time_ms == 300'000);
  CHECK(kupo.eject.max_percent == 50);
  CHECK(kupo.timeouts.connect_ms == 2000);
  CHECK(kupo.timeouts.response_ms == 30'000);
  CHECK_FALSE(kupo.rate_limit.has_value());
  CHECK(kupo.set_headers.empty());
  CHECK(kupo.slow_start_ms == 30'000);  // default

  const config::Pool* bf = c.find_pool("blockfrost");
  REQUIRE(bf);
  CHECK(bf->kind == config::PoolKind::blockfrost);
  REQUIRE(bf->backends.size() == 1);
  CHECK_FALSE(bf->backends[0].tls);
  CHECK(bf->backends[0].address.host == "cardano-preprod.blockfrost.io");
  CHECK(bf->backends[0].address.port == 443);
  REQUIRE(bf->set_headers.size() == 1);
  CHECK(bf->set_headers[0].first == "project_id");
  CHECK(bf->set_headers[0].second.env == "BLOCKFROST_PROJECT_ID");
  CHECK(bf->set_headers[0].second.value == "preprodSECRET123");  // trimmed
  CHECK_FALSE(bf->rate_limit.has_value());
  CHECK(bf->slow_start_ms == 0);  // 0 = off
  CHECK(c.find_pool("ogmios")->kind == config::PoolKind::ogmios);

  CHECK(c.limits.max_connections == 10'000);
  CHECK(c.limits.max_header_bytes == 16'384);
  CHECK(c.limits.max_body_bytes == 10 * 1024 * 1024);  // default kept
  CHECK(c.limits.header_timeout_ms == 10'000);
  CHECK(c.limits.idle_timeout_ms == 60'000);
  CHECK(c.limits.buffer_bytes == 16 * 1024);                  // default
  CHECK(c.limits.max_buffer_memory == 256ull * 1024 * 1024);  // default
}

TEST_CASE("loader: the embedded default loads") {
  LoadResult r = config::load_string(config::embedded_default_yaml(), "<embedded>");
  INFO(dump(r));
  REQUIRE(r.config.has_value());
  const config::Config& c = *r.config;
  CHECK(c.source == "<embedded>");
  CHECK(c.workers == 1);
  CHECK(c.admin.listen.text == "127.0.0.1:9901");
  REQUIRE(c.listeners.size() == 1);
  CHECK(c.listeners[0].name == "public");
  CHECK(c.listeners[0].listen.text == "127.0.0.1:8080");
  REQUIRE(c.listeners[0].routes.size() == 1);
  CHECK(c.listeners[0].routes[0].prefix == "/");
  CHECK(c.listeners[0].routes[0].pool == "kupo");
  CHECK(c.listeners[0].routes[0].methods == std::vector<std::string>{"GET", "HEAD", "OPTIONS"});
  REQUIRE(c.sticky.keys.size() == 5);
  CHECK(c.sticky.keys[0].arg == "/s/");
  CHECK(c.sticky.keys[1].arg == "corral");
  CHECK(c.sticky.keys[2].arg == "X-Session-Key");
  CHECK(c.sticky.keys[3].from == lb::KeySource::address);
  CHECK(c.sticky.keys[4].from == lb::KeySource::client_ip);
  REQUIRE(c.pools.size() == 1);
  CHECK(c.pools[0].name == "kupo");
  CHECK(c.pools[0].kind == config::PoolKind::kupo);
  REQUIRE(c.pools[0].backends.size() == 1);
  CHECK(c.pools[0].backends[0].name == "kupo-1");
  CHECK(c.pools[0].backends[0].address.text == "127.0.0.1:1442");
}

TEST_CASE("loader: defaults fill what a minimal file leaves out") {
  LoadResult r = load(kMinimal);
  INFO(dump(r));
  REQUIRE(r.config.has_value());
  const config::Config& c = *r.config;
  CHECK(c.workers == 1);
  CHECK(c.admin.listen.text == "127.0.0.1:9901");
  REQUIRE(c.sticky.keys.size() == 1);  // absent sticky.keys -> [{from: client_ip}]
  CHECK(c.sticky.keys[0].from == lb::KeySource::client_ip);
  CHECK(c.sticky.ttl_ms == 3'600'000);
  CHECK(c.pools[0].health.path == "/health");
  CHECK(c.pools[0].health.expect_status == 200);
  CHECK(c.limits.max_header_bytes == 16'384);
}

TEST_CASE("loader: unknown keys are errors, with a suggestion when one is close") {
  LoadResult r = load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo, method: [GET]}]
pools:
  kupo:
    kind: kupo
    backends: [{name: kupo-1, address: 127.0.0.1:1442}]
    helth: {interval: 2s}
colour: blue
)");
  INFO(dump(r));
  REQUIRE(r.errors.size() == 3);
  CHECK(has_error(r, 4, 38, "listeners[0].routes[0].method",
                  "unknown key 'method'; did you mean 'methods'?"));
  CHECK(has_error(r, 9, 5, "pools.kupo.helth", "unknown key 'helth'; did you mean 'health'?"));
  CHECK(r.errors[2].str() == "t.yaml:10:1: colour: unknown key 'colour'");  // nothing close
  CHECK_FALSE(r.config.has_value());
}

TEST_CASE("loader: 'lisen' suggests 'listen', and the missing 'listen' is reported too") {
  LoadResult r = load(R"(
admin:
  lisen: 127.0.0.1:9902
listeners:
  - name: public
    lisen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo}]
pools: {kupo: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}
)");
  INFO(dump(r));
  REQUIRE(r.errors.size() == 3);
  CHECK(r.errors[0].str() ==
        "t.yaml:2:3: admin.lisen: unknown key 'lisen'; did you mean 'listen'?");
  CHECK(r.errors[1].str() == "t.yaml:4:5: listeners[0].listen: required key is missing");
  CHECK(r.errors[2].str() ==
        "t.yaml:5:5: listeners[0].lisen: unknown key 'lisen'; did you mean 'listen'?");
}

TEST_CASE("loader: a misspelt top-level key gets a suggestion") {
  std::string text = yaml(kMinimal) + "lmits: {max_connections: 5}\n";
  LoadResult r = config::load_string(text, "t.yaml");
  check_single(r, 11, 1, "lmits", "unknown key 'lmits'; did you mean 'limits'?");
}

TEST_CASE("loader: type errors name the key and point at the value") {
  SUBCASE("duration") {
    check_single(load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo}]
pools:
  kupo:
    kind: kupo
    backends: [{name: kupo-1, address: 127.0.0.1:1442}]
    health:
      interval: 2 seconds
)"),
                 10, 17, "pools.kupo.health.interval",
                 "bad duration \"2 seconds\": no space is allowed between the number and the unit");
  }
  SUBCASE("bare number is not a duration") {
    check_single(load(R"(
sticky: {ttl: 3600}
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo}]
pools: {kupo: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}
)"),
                 1, 15, "sticky.ttl", "bad duration \"3600\": the unit is missing");
  }
  SUBCASE("list") {
    check_single(load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo, methods: GET}]
pools: {kupo: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}
)"),
                 4, 47, "listeners[0].routes[0].methods", "expected a list");
  }
  SUBCASE("positive integer") {
    check_single(load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo}]
pools:
  kupo:
    kind: kupo
    backends: [{name: k, address: 127.0.0.1:1442}]
    health: {rise: 0}
)"),
                 9, 20, "pools.kupo.health.rise", "expected a positive integer");
  }
  SUBCASE("weight range") {
    check_single(load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo}]
pools:
  kupo:
    kind: kupo
    backends:
      - name: k
        address: 127.0.0.1:1442
        weight: 1001
)"),
                 11, 17, "pools.kupo.backends[0].weight", "expected an integer from 1 to 1000");
  }
  SUBCASE("boolean") {
    check_single(load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - prefix: /
        pool: kupo
        strip_prefix: yes please
pools: {kupo: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}
)"),
                 7, 23, "listeners[0].routes[0].strip_prefix", "expected true or false");
  }
  SUBCASE("mapping") {
    check_single(load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo}]
pools: {kupo: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}
limits: 100
)"),
                 6, 9, "limits", "expected a mapping");
  }
  SUBCASE("an empty value is reported at its key") {
    check_single(load(R"(
listeners:
  - name: public
    listen:
    routes: [{prefix: /, pool: kupo}]
pools: {kupo: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}
)"),
                 3, 5, "listeners[0].listen", "expected an address");
  }
  SUBCASE("address") {
    check_single(load(R"(
listeners:
  - name: public
    listen: ::1:8080
    routes: [{prefix: /, pool: kupo}]
pools: {kupo: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}
)"),
                 3, 13, "listeners[0].listen", "IPv6 address must be bracketed");
  }
  SUBCASE("enumeration") {
    check_single(load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo}]
pools: {kupo: {kind: kupoo, backends: [{name: k, address: 127.0.0.1:1442}]}}
)"),
                 5, 22, "pools.kupo.kind", "expected kupo, ogmios, blockfrost or http");
  }
}

TEST_CASE("loader: several errors in one file are all reported, in file order") {
  LoadResult r = load(R"(
workers: 300
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - {prefix: kupo/, pool: kupoo}
sticky:
  balance_factor: 0.5
  hash: ring
pools:
  kupo:
    kind: kupo
    backends:
      - {name: kupo-1, address: 127.0.0.1:1442, weight: 0}
    health: {interval: 1s, timeout: 1s}
    eject: {base_time: 10m, max_time: 5m, max_percent: 101}
limits: {max_header_bytes: 100}
)");
  INFO(dump(r));
  CHECK_FALSE(r.config.has_value());
  std::vector<std::string> got;
  for (const ConfigError& e : r.errors)
    got.push_back(std::to_string(e.line) + ":" + std::to_string(e.column) + " " + e.key);
  std::vector<std::string> want = {
      "1:10 workers",
      "6:18 listeners[0].routes[0].prefix",
      "6:31 listeners[0].routes[0].pool",
      "8:19 sticky.balance_factor",
      "9:9 sticky.hash",
      "14:57 pools.kupo.backends[0].weight",
      "15:37 pools.kupo.health.timeout",
      "16:24 pools.kupo.eject.base_time",
      "16:56 pools.kupo.eject.max_percent",
      "17:28 limits.max_header_bytes",
  };
  CHECK(got == want);
  CHECK(has_error(r, 1, 10, "workers", "expected an integer from 0 to 256"));
  CHECK(has_error(r, 6, 18, "listeners[0].routes[0].prefix", "must start with '/'"));
  CHECK(has_error(r, 6, 31, "listeners[0].routes[0].pool",
                  "route to unknown pool 'kupoo'; did you mean 'kupo'?"));
  CHECK(has_error(r, 8, 19, "sticky.balance_factor", "expected 0 (off) or a number >= 1.0"));
  CHECK(has_error(r, 9, 9, "sticky.hash", "expected rendezvous or maglev"));
  CHECK(has_error(r, 15, 37, "pools.kupo.health.timeout", "must be less than health.interval"));
  CHECK(has_error(r, 16, 24, "pools.kupo.eject.base_time", "must not exceed eject.max_time"));
  CHECK(has_error(r, 16, 56, "pools.kupo.eject.max_percent", "from 0 to 100"));
  CHECK(has_error(r, 17, 28, "limits.max_header_bytes", "from 1024 to 1048576"));
}

TEST_CASE("loader: listeners must be present, named uniquely and bound uniquely") {
  SUBCASE("no listeners at all") {
    check_single(load(R"(
pools: {kupo: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}
)"),
                 1, 1, "listeners", "at least one listener is required");
  }
  SUBCASE("empty listener list") {
    check_single(load(R"(
listeners: []
)"),
                 1, 12, "listeners", "at least one listener is required");
  }
  SUBCASE("duplicates") {
    LoadResult r = load(R"(
admin: {listen: 127.0.0.1:9000}
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo}]
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo}]
  - name: other
    listen: 0.0.0.0:9000
    routes: [{prefix: /, pool: kupo}]
  - name: ""
    listen: 127.0.0.1:8081
pools: {kupo: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}
)");
    INFO(dump(r));
    REQUIRE(r.errors.size() == 5);
    CHECK(has_error(r, 6, 11, "listeners[1].name",
                    "duplicate listener name 'public' (also listeners[0])"));
    CHECK(has_error(r, 7, 13, "listeners[1].listen",
                    "listen address 127.0.0.1:8080 clashes with listeners[0].listen"));
    CHECK(has_error(r, 10, 13, "listeners[2].listen", "clashes with admin.listen"));
    CHECK(has_error(r, 12, 11, "listeners[3].name", "must not be empty"));
    CHECK(has_error(r, 12, 5, "listeners[3].routes", "a listener needs at least one route"));
  }
  SUBCASE("a listener on the default admin address") {
    check_single(load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:9901
    routes: [{prefix: /, pool: kupo}]
pools: {kupo: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}
)"),
                 3, 13, "listeners[0].listen", "clashes with the default admin.listen");
  }
}

TEST_CASE("loader: routes") {
  SUBCASE("methods are upper-cased tokens; an invalid one is named by index") {
    LoadResult r = load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - {prefix: /a/, pool: kupo, methods: [get, Head, GET]}
      - {prefix: /b/, pool: kupo, methods: [GET, "BAD METHOD"], allow_writes: true}
      - {prefix: /a/, pool: kupo, methods: []}
pools: {kupo: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}
)");
    INFO(dump(r));
    REQUIRE(r.errors.size() == 3);
    CHECK(has_error(r, 6, 50, "listeners[0].routes[1].methods[1]", "not a valid HTTP method"));
    CHECK(has_error(r, 7, 18, "listeners[0].routes[2].prefix",
                    "duplicate prefix '/a/' (listeners[0].routes[0] always matches first)"));
    CHECK(has_error(r, 7, 44, "listeners[0].routes[2].methods", "list at least one method"));
  }
  SUBCASE("methods normalised") {
    LoadResult r = load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - {prefix: /a/, pool: kupo, methods: [get, Head, GET], allow_writes: true}
pools: {kupo: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}
)");
    INFO(dump(r));
    REQUIRE(r.config.has_value());
    const config::Route& route = r.config->listeners[0].routes[0];
    CHECK(route.methods == std::vector<std::string>{"GET", "HEAD"});
    CHECK(route.allow_writes);
  }
  SUBCASE("missing required keys are reported at the mapping") {
    LoadResult r = load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - prefix: /
pools: {kupo: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}
)");
    check_single(r, 5, 9, "listeners[0].routes[0].pool", "required key is missing");
  }
}

TEST_CASE("loader: backends") {
  SUBCASE("backend names are unique across every pool") {
    LoadResult r = load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo}]
pools:
  kupo:
    kind: kupo
    backends:
      - {name: node-1, address: 127.0.0.1:1442}
      - {name: node-2, address: 127.0.0.1:1443}
  ogmios:
    kind: ogmios
    backends:
      - {name: node-1, address: 127.0.0.1:1337}
)");
    check_single(r, 14, 16, "pools.ogmios.backends[0].name",
                 "duplicate backend name 'node-1' (also pools.kupo.backends[0])");
  }
  SUBCASE("a pool needs a backend") {
    LoadResult r = load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo}]
pools:
  kupo:
    kind: kupo
    backends: []
  http:
    kind: http
)");
    INFO(dump(r));
    REQUIRE(r.errors.size() == 2);
    CHECK(has_error(r, 8, 15, "pools.kupo.backends", "a pool needs at least one backend"));
    CHECK(has_error(r, 10, 5, "pools.http.backends", "a pool needs at least one backend"));
  }
}

TEST_CASE("loader: pools keep file order") {
  LoadResult r = load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: zeta}]
pools:
  zeta: {kind: http, backends: [{name: z, address: 127.0.0.1:1}]}
  alpha: {kind: ogmios, backends: [{name: a, address: 127.0.0.1:2}]}
  mid: {kind: blockfrost, backends: [{name: m, address: example.org:443}]}
)");
  INFO(dump(r));
  REQUIRE(r.config.has_value());
  REQUIRE(r.config->pools.size() == 3);
  CHECK(r.config->pools[0].name == "zeta");
  CHECK(r.config->pools[0].kind == config::PoolKind::http);
  CHECK(r.config->pools[1].name == "alpha");
  CHECK(r.config->pools[1].kind == config::PoolKind::ogmios);
  CHECK(r.config->pools[2].name == "mid");
  CHECK(r.config->pools[2].kind == config::PoolKind::blockfrost);
}

TEST_CASE("loader: sticky keys") {
  SUBCASE("cookie and header need a name; prefix and name apply to their sources only") {
    LoadResult r = load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo}]
pools: {kupo: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}
sticky:
  keys:
    - {from: cookie}
    - {from: header, name: "X Bad"}
    - {from: client_ip, name: x}
    - {from: path, prefix: s}
    - {from: stake}
)");
    INFO(dump(r));
    REQUIRE(r.errors.size() == 5);
    CHECK(has_error(r, 8, 7, "sticky.keys[0].name", "required key is missing"));
    CHECK(has_error(r, 9, 28, "sticky.keys[1].name", "not a valid header name"));
    CHECK(has_error(r, 10, 31, "sticky.keys[2].name", "'name' applies only to from: cookie"));
    CHECK(has_error(r, 11, 28, "sticky.keys[3].prefix", "must start and end with '/'"));
    CHECK(has_error(r, 12, 14, "sticky.keys[4].from",
                    "expected path, cookie, header, address or client_ip"));
  }
  SUBCASE("path prefix defaults to /s/, maglev selectable") {
    LoadResult r = load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo}]
pools: {kupo: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}
sticky:
  keys: [{from: path}, {from: header, name: X-User}]
  hash: maglev
  balance_factor: 0
  ttl: 30m
)");
    INFO(dump(r));
    REQUIRE(r.config.has_value());
    const config::Sticky& s = r.config->sticky;
    REQUIRE(s.keys.size() == 2);
    CHECK(s.keys[0].from == lb::KeySource::path);
    CHECK(s.keys[0].arg == "/s/");
    CHECK(s.keys[1].arg == "X-User");
    CHECK(s.hash == lb::SelectorKind::maglev);
    CHECK(s.balance_factor == 0.0);
    CHECK(s.ttl_ms == 30 * 60 * 1000);
  }
}

TEST_CASE("loader: workers 0 means one per core") {
  std::string text = "workers: 0\n" + yaml(kMinimal);
  LoadResult r = config::load_string(text, "t.yaml");
  REQUIRE(r.config.has_value());
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  CHECK(r.config->workers == std::min(cores, 256u));
}

TEST_CASE("loader: duplicate keys in one mapping are errors") {
  std::string text = yaml(kMinimal) + "workers: 2\nworkers: 3\n";
  LoadResult r = config::load_string(text, "t.yaml");
  check_single(r, 12, 1, "workers", "duplicate key 'workers'");
}

TEST_CASE("loader: YAML syntax errors carry their mark") {
  LoadResult r = load(R"(
listeners:
  - name: public
    listen: [127.0.0.1:8080
pools: {}
)");
  INFO(dump(r));
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].line > 0);
  CHECK(r.errors[0].key.empty());
  CHECK(r.errors[0].message.find("invalid YAML") != std::string::npos);
  CHECK_FALSE(r.config.has_value());

  LoadResult tabs = config::load_string("a: 1\n  b: 2\n", "t.yaml");
  REQUIRE(tabs.errors.size() == 1);
  CHECK(tabs.errors[0].line == 2);
  CHECK(tabs.errors[0].column == 4);
  CHECK(tabs.errors[0].str() ==
        "t.yaml:2:4: invalid YAML: unexpected ':' here: a key is indented deeper than its "
        "neighbours, or a value holding ': ' needs quotes [yaml-cpp: illegal map value]; the line "
        "reads \"b: 2\"");
}

TEST_CASE("loader: a document that is not a mapping, or is empty") {
  check_single(config::load_string("- a\n- b\n", "t.yaml"), 1, 1, "", "expected a mapping");
  check_single(config::load_string("", "t.yaml"), 1, 1, "listeners",
               "at least one listener is required");
}

TEST_CASE("loader: secrets from env and file resolve; missing ones never leak") {
  TempDir dir;
  std::string key_file = dir.write("bf.key", "fileSECRET987\n");
  setenv("CORRAL_TEST_SECRET", "envSECRET456", 1);
  unsetenv("CORRAL_TEST_MISSING");
  std::string head = yaml(R"(
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: bf}]
pools:
  bf:
    kind: blockfrost
    backends: [{name: bf, address: example.org:443, tls: false}]
    set_headers:
)");

  SUBCASE("both resolve") {
    std::string text = head + "      project_id: {env: CORRAL_TEST_SECRET}\n" +
                       "      X-Other: {file: " + key_file + "}\n";
    LoadResult r = config::load_string(text, "t.yaml");
    INFO(dump(r));
    REQUIRE(r.config.has_value());
    const auto& h = r.config->pools[0].set_headers;
    REQUIRE(h.size() == 2);
    CHECK(h[0].first == "project_id");
    CHECK(h[0].second.value == "envSECRET456");
    CHECK(h[1].first == "X-Other");
    CHECK(h[1].second.file == key_file);
    CHECK(h[1].second.value == "fileSECRET987");  // trailing newline trimmed
  }
  SUBCASE("missing env var, unreadable file, inline value, bad header") {
    std::string text = head + "      project_id: {env: CORRAL_TEST_MISSING}\n" +
                       "      X-File: {file: " + dir.path.string() + "/nope}\n" +
                       "      X-Inline: inlineSECRET111\n" +
                       "      X-Both: {env: CORRAL_TEST_SECRET, file: " + key_file + "}\n" +
                       "      Content-Length: {env: CORRAL_TEST_SECRET}\n" +
                       "      project_ID: {env: CORRAL_TEST_SECRET}\n";
    LoadResult r = config::load_string(text, "t.yaml");
    INFO(dump(r));
    CHECK_FALSE(r.config.has_value());
    REQUIRE(r.errors.size() == 6);
    CHECK(has_error(r, 10, 25, "pools.bf.set_headers.project_id.env",
                    "environment variable 'CORRAL_TEST_MISSING' is not set"));
    CHECK(has_error(r, 11, 22, "pools.bf.set_headers.X-File.file", "No such file"));
    CHECK(has_error(r, 12, 17, "pools.bf.set_headers.X-Inline",
                    "expected {env: VAR} or {file: PATH}"));
    CHECK(has_error(r, 13, 15, "pools.bf.set_headers.X-Both", "either env or file"));
    CHECK(has_error(r, 14, 7, "pools.bf.set_headers.Content-Length", "message framing"));
    CHECK(has_error(r, 15, 7, "pools.bf.set_headers.project_ID", "set twice"));
    std::string all = dump(r);
    CHECK(all.find("SECRET") == std::string::npos);  // no secret value in any message
  }
  SUBCASE("a secret with a line break is refused without echoing it") {
    std::string bad = dir.write("bad.key", "line1SECRET\nline2SECRET\n");
    std::string text = head + "      project_id: {file: " + bad + "}\n";
    LoadResult r = config::load_string(text, "t.yaml");
    check_single(r, 10, 26, "pools.bf.set_headers.project_id.file", "line break");
    CHECK(r.errors[0].str().find("SECRET") == std::string::npos);
  }
  SUBCASE("an empty env var is an error") {
    setenv("CORRAL_TEST_EMPTY", "  ", 1);
    std::string text = head + "      project_id: {env: CORRAL_TEST_EMPTY}\n";
    check_single(config::load_string(text, "t.yaml"), 10, 25, "pools.bf.set_headers.project_id.env",
                 "is empty");
    unsetenv("CORRAL_TEST_EMPTY");
  }
  unsetenv("CORRAL_TEST_SECRET");
}

TEST_CASE("loader: load_file reads the file and resolves relative paths beside it") {
  TempDir dir;
  dir.write("admin.token", "  tokenVALUE \n");
  std::string path = dir.write("corral.yaml", yaml(R"(
admin: {listen: 127.0.0.1:9901, token_file: admin.token}
listeners:
  - name: public
    listen: 127.0.0.1:8443
    routes: [{prefix: /, pool: kupo}]
pools: {kupo: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}
)"));
  LoadResult r = config::load_file(path);
  INFO(dump(r));
  REQUIRE(r.config.has_value());
  CHECK(r.config->source == path);
  CHECK(r.config->admin.token == "tokenVALUE");
  CHECK(r.config->admin.token_file == (dir.path / "admin.token").string());
  CHECK_FALSE(r.config->listeners[0].tls.has_value());

  // A missing token file is located.
  std::filesystem::remove(dir.path / "admin.token");
  LoadResult bad = config::load_file(path);
  INFO(dump(bad));
  REQUIRE(bad.errors.size() == 1);
  CHECK(bad.errors[0].file == path);
  CHECK(has_error(bad, 1, 45, "admin.token_file", "cannot read token file"));
}

TEST_CASE("loader: an unreadable file is one error at line 0") {
  LoadResult r = config::load_file("/nonexistent/corral.yaml");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].line == 0);
  CHECK(r.errors[0].file == "/nonexistent/corral.yaml");
  CHECK(r.errors[0].str() ==
        "/nonexistent/corral.yaml: cannot read config file: No such file or directory");
  CHECK_FALSE(r.config.has_value());

  TempDir dir;
  LoadResult d = config::load_file(dir.path.string());
  REQUIRE(d.errors.size() == 1);
  CHECK(d.errors[0].message.find("is a directory") != std::string::npos);
}

TEST_CASE("loader: limits and health values") {
  LoadResult r = load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: web}]
pools:
  web:
    kind: http
    backends: [{name: w, address: "[::1]:8000", weight: 1000}]
    health: {path: /ready, expect_status: 204, interval: 5s, timeout: 250ms}
limits:
  max_connections: 1_000
  max_header_bytes: 1048576
  max_body_bytes: 1024
  header_timeout: 500ms
  idle_timeout: 1d
)");
  INFO(dump(r));
  REQUIRE(r.config.has_value());
  const config::Pool& p = r.config->pools[0];
  CHECK(p.backends[0].address.host == "::1");
  CHECK(p.backends[0].weight == 1000);
  CHECK(p.health.path == "/ready");
  CHECK(p.health.expect_status == 204);
  CHECK(p.health.timeout_ms == 250);
  const config::Limits& l = r.config->limits;
  CHECK(l.max_connections == 1000);
  CHECK(l.max_header_bytes == 1048576);
  CHECK(l.max_body_bytes == 1024);
  CHECK(l.header_timeout_ms == 500);
  CHECK(l.idle_timeout_ms == 86'400'000);
  // buffer_bytes left out follows a header limit above its 16 KiB default.
  CHECK(l.buffer_bytes == 1048576);
}

TEST_CASE("loader: limits.body_timeout and limits.send_timeout") {
  LoadResult d = load(kMinimal);
  INFO(dump(d));
  REQUIRE(d.config.has_value());
  CHECK(d.config->limits.body_timeout_ms == 60'000);
  CHECK(d.config->limits.send_timeout_ms == 60'000);

  LoadResult r = load_one_pool("limits: {body_timeout: 1500ms, send_timeout: 2m}\n");
  INFO(dump(r));
  REQUIRE(r.config.has_value());
  CHECK(r.config->limits.body_timeout_ms == 1500);
  CHECK(r.config->limits.send_timeout_ms == 120'000);

  SUBCASE("zero is refused, located") {
    check_single(load_one_pool("limits: {body_timeout: 0s}\n"), 6, 24, "limits.body_timeout",
                 "greater than zero");
  }
  SUBCASE("not a duration") {
    check_single(load_one_pool("limits:\n  send_timeout: soon\n"), 7, 17, "limits.send_timeout",
                 "bad duration \"soon\": it must start with a whole number");
  }
  SUBCASE("tunnel_idle_timeout: read, defaults to 1h, checked like the others") {
    LoadResult t = load_one_pool("limits: {tunnel_idle_timeout: 90m}\n");
    REQUIRE(t.config.has_value());
    CHECK(t.config->limits.tunnel_idle_timeout_ms == 90 * 60 * 1000);
    LoadResult d = load_one_pool("");
    REQUIRE(d.config.has_value());
    CHECK(d.config->limits.tunnel_idle_timeout_ms == 3600 * 1000);
    check_single(load_one_pool("limits: {tunnel_idle_timeout: 0s}\n"), 6, 31,
                 "limits.tunnel_idle_timeout", "greater than zero");
  }
}

TEST_CASE("loader: ConfigError::str") {
  ConfigError e{"c.yaml", 3, 7, "pools.kupo.backends[1].address", "invalid address: missing port"};
  CHECK(e.str() == "c.yaml:3:7: pools.kupo.backends[1].address: invalid address: missing port");
}

TEST_CASE("loader: health.stale_after is a duration, 10m by default") {
  LoadResult d = load(kMinimal);
  INFO(dump(d));
  REQUIRE(d.config.has_value());
  CHECK(d.config->pools[0].health.stale_after_ms == 600'000);

  LoadResult r = load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo}]
pools:
  kupo:
    kind: kupo
    backends: [{name: k, address: 127.0.0.1:1442}]
    health: {stale_after: 90s, max_lag_slots: 120}
)");
  INFO(dump(r));
  REQUIRE(r.config.has_value());
  CHECK(r.config->pools[0].health.stale_after_ms == 90'000);
  CHECK(r.config->pools[0].health.max_lag_slots == 120);

  SUBCASE("not a duration") {
    check_single(load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo}]
pools:
  kupo:
    kind: kupo
    backends: [{name: k, address: 127.0.0.1:1442}]
    health: {stale_after: 600}
)"),
                 9, 27, "pools.kupo.health.stale_after",
                 "bad duration \"600\": the unit is missing (a bare number is not a duration); "
                 "expected a whole number with a unit: "
                 "ms, s, m, h or d");
  }
  SUBCASE("zero is refused") {
    check_single(load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo}]
pools:
  kupo:
    kind: kupo
    backends: [{name: k, address: 127.0.0.1:1442}]
    health: {stale_after: 0s}
)"),
                 9, 27, "pools.kupo.health.stale_after", "greater than zero");
  }
  SUBCASE("a misspelling is an unknown key") {
    LoadResult bad = load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo}]
pools:
  kupo:
    kind: kupo
    backends: [{name: k, address: 127.0.0.1:1442}]
    health: {stale_afer: 5m}
)");
    INFO(dump(bad));
    CHECK_FALSE(bad.config.has_value());
    CHECK(has_error(bad, 9, 14, "pools.kupo.health.stale_afer", "unknown key 'stale_afer'"));
  }
}

TEST_CASE("loader: state_file and stop_timeout default to off and 10s") {
  LoadResult r = load(kMinimal);
  INFO(dump(r));
  REQUIRE(r.config.has_value());
  CHECK(r.config->state_file.empty());
  CHECK(r.config->stop_timeout_ms == 10'000);
}

TEST_CASE("loader: state_file resolves beside the config; stop_timeout is a duration") {
  TempDir dir;
  std::filesystem::create_directory(dir.path / "var");
  std::string path = dir.write("corral.yaml", yaml(R"(
state_file: var/pins.bin
stop_timeout: 30s
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo}]
pools: {kupo: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}
)"));
  LoadResult r = config::load_file(path);
  INFO(dump(r));
  REQUIRE(r.config.has_value());
  CHECK(r.config->state_file == (dir.path / "var" / "pins.bin").string());
  CHECK(r.config->stop_timeout_ms == 30'000);

  // An absolute path is kept as written.
  std::string abs = (dir.path / "pins.bin").string();
  std::string path2 = dir.write("abs.yaml", "state_file: " + abs + "\n" + yaml(kMinimal));
  LoadResult r2 = config::load_file(path2);
  INFO(dump(r2));
  REQUIRE(r2.config.has_value());
  CHECK(r2.config->state_file == abs);
}

TEST_CASE("loader: a state_file whose directory is missing is an error naming the key") {
  TempDir dir;
  std::string path = dir.write("corral.yaml", yaml(R"(
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo}]
pools: {kupo: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}
state_file: nowhere/pins.bin
)"));
  LoadResult r = config::load_file(path);
  INFO(dump(r));
  CHECK_FALSE(r.config.has_value());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].file == path);
  CHECK(has_error(r, 6, 13, "state_file", "does not exist"));

  // A directory is not a file.
  std::filesystem::create_directory(dir.path / "isdir");
  std::string path2 =
      dir.write("dir.yaml", yaml(kMinimal) + "state_file: " + (dir.path / "isdir").string() + "\n");
  LoadResult d = config::load_file(path2);
  INFO(dump(d));
  REQUIRE(d.errors.size() == 1);
  CHECK(d.errors[0].key == "state_file");
  CHECK(d.errors[0].message.find("is a directory") != std::string::npos);
}

TEST_CASE("loader: state_file and stop_timeout type errors") {
  SUBCASE("empty state_file") {
    check_single(load(R"(
state_file: ""
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo}]
pools: {kupo: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}
)"),
                 1, 13, "state_file", "must not be empty");
  }
  SUBCASE("state_file is not a string") {
    check_single(load(R"(
state_file: [a, b]
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo}]
pools: {kupo: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}
)"),
                 1, 13, "state_file", "expected a string");
  }
  SUBCASE("stop_timeout without a unit") {
    check_single(load(R"(
stop_timeout: 10
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo}]
pools: {kupo: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}
)"),
                 1, 15, "stop_timeout", "bad duration \"10\": the unit is missing");
  }
  SUBCASE("stop_timeout of zero") {
    check_single(load(R"(
stop_timeout: 0s
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo}]
pools: {kupo: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}
)"),
                 1, 15, "stop_timeout", "greater than zero");
  }
  SUBCASE("a misspelling suggests the key") {
    LoadResult bad = load(R"(
stop_timout: 5s
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{prefix: /, pool: kupo}]
pools: {kupo: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}
)");
    INFO(dump(bad));
    CHECK_FALSE(bad.config.has_value());
    CHECK(has_error(bad, 1, 1, "stop_timout", "unknown key 'stop_timout'"));
    CHECK(has_error(bad, 1, 1, "stop_timout", "stop_timeout"));
  }
}
