// pools.NAME.cache (config/read_cache.cpp): defaults, every range edge, the kind rules
// and sizes; every error located at file:line:col, naming the key and the value.
#include <doctest.h>

#include <string>

#include "config/loader.h"
#include "config/size.h"
#include "tests/config/loader_helpers.h"

using config::LoadResult;
using namespace loader_test;

namespace {

// One pool of `kind` with `cache: VALUE` on line 6: the value starts at column 12 and a
// flow mapping's first key at column 13.
LoadResult with_cache(const std::string& value, const std::string& kind = "kupo") {
  return config::load_string(
      "listeners: [{name: p, listen: 127.0.0.1:8080, routes: [{prefix: /, pool: k}]}]\n"
      "pools:\n"
      "  k:\n"
      "    kind: " +
          kind +
          "\n"
          "    backends: [{name: b, address: 127.0.0.1:1442}]\n"
          "    cache: " +
          value + "\n",
      "t.yaml");
}

// The cache of a file that must load.
config::CacheConfig loaded(const std::string& value, const std::string& kind = "kupo") {
  LoadResult r = with_cache(value, kind);
  INFO(value, "\n", dump(r));
  REQUIRE(r.config.has_value());
  REQUIRE(r.config->pools[0].cache.has_value());
  return *r.config->pools[0].cache;
}

// `value` is refused with one error naming `key` whose message holds `msg` and `echo`
// (the offending value as written).
void refused(const std::string& value, const std::string& key, const std::string& msg,
             const std::string& echo = "", const std::string& kind = "kupo") {
  LoadResult r = with_cache(value, kind);
  INFO(value, "\n", dump(r));
  CHECK_FALSE(r.config.has_value());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].file == "t.yaml");
  CHECK(r.errors[0].line == 6);
  CHECK(r.errors[0].column >= 5);
  CHECK(r.errors[0].key == key);
  CHECK(r.errors[0].message.find(msg) != std::string::npos);
  CHECK(r.errors[0].message.find(echo) != std::string::npos);
  CHECK(r.errors[0].str().find("t.yaml:6:") == 0);
}

}  // namespace

TEST_CASE("loader cache: absent means no cache; an empty mapping means every default") {
  LoadResult none = config::load_string(
      "listeners: [{name: p, listen: 127.0.0.1:8080, routes: [{prefix: /, pool: k}]}]\n"
      "pools: {k: {kind: kupo, backends: [{name: b, address: 127.0.0.1:1442}]}}\n",
      "t.yaml");
  REQUIRE(none.config.has_value());
  CHECK_FALSE(none.config->pools[0].cache.has_value());

  config::CacheConfig c = loaded("{}");
  CHECK(c.max_bytes == 64ull * 1024 * 1024);
  CHECK(c.immutable_after_slots == 129600);
  CHECK(c.prefixes.empty());
  CHECK(c.max_age_ms == 0);
  CHECK(c.collapse);
}

TEST_CASE("loader cache: every key read") {
  config::CacheConfig c = loaded(
      "{max_bytes: 256MB, immutable_after_slots: 25920, prefixes: [/v1/foo/, /health], "
      "max_age: 10m, collapse: false}");
  CHECK(c.max_bytes == 256ull << 20);
  CHECK(c.immutable_after_slots == 25920);
  CHECK(c.prefixes == std::vector<std::string>{"/v1/foo/", "/health"});
  CHECK(c.max_age_ms == 600'000);
  CHECK_FALSE(c.collapse);
  CHECK(loaded("{collapse: true}").collapse);
}

TEST_CASE("loader cache: max_bytes sizes and range edges") {
  // The same parser as every other size: the loaded value is what parse_size_bytes says.
  for (const char* s : {"1MB", "1048576", "1024KB", "256MB", "1_048_576", "1GB", "64GB"}) {
    INFO(s);
    REQUIRE(config::parse_size_bytes(s).has_value());
    CHECK(loaded(std::string("{max_bytes: ") + s + "}").max_bytes == *config::parse_size_bytes(s));
  }
  CHECK(loaded("{max_bytes: 1MB}").max_bytes == 1024 * 1024);
  CHECK(loaded("{max_bytes: 64GB}").max_bytes == 64ull << 30);
  refused("{max_bytes: 1048575}", "pools.k.cache.max_bytes", "out of range", "1048575");
  refused("{max_bytes: 1023KB}", "pools.k.cache.max_bytes", "out of range", "1023KB");
  refused("{max_bytes: 65GB}", "pools.k.cache.max_bytes", "out of range", "65GB");
  refused("{max_bytes: 68719476737}", "pools.k.cache.max_bytes", "out of range", "68719476737");
  refused("{max_bytes: 256mb}", "pools.k.cache.max_bytes", "units are upper-case", "256mb");
  refused("{max_bytes: 1.5GB}", "pools.k.cache.max_bytes", "whole numbers only", "1.5GB");
  refused("{max_bytes: -1MB}", "pools.k.cache.max_bytes", "negative", "-1MB");
  refused("{max_bytes: 0}", "pools.k.cache.max_bytes", "out of range", "\"0\"");
  // The column is the value's: `    cache: {max_bytes: 256mb}` puts it at 24.
  check_single(with_cache("{max_bytes: 256mb}"), 6, 24, "pools.k.cache.max_bytes", "bad size");
}

TEST_CASE("loader cache: immutable_after_slots range edges") {
  CHECK(loaded("{immutable_after_slots: 1}").immutable_after_slots == 1);
  CHECK(loaded("{immutable_after_slots: 10000000}").immutable_after_slots == 10'000'000);
  CHECK(loaded("{immutable_after_slots: 10_000_000}").immutable_after_slots == 10'000'000);
  for (const char* bad : {"0", "10000001", "-1", "1.5", "lots"}) {
    INFO(bad);
    refused(std::string("{immutable_after_slots: ") + bad + "}",
            "pools.k.cache.immutable_after_slots", "expected an integer from 1 to 10000000", bad);
  }
}

TEST_CASE("loader cache: prefixes") {
  CHECK(loaded("{prefixes: [/a/], max_age: 1s}").prefixes == std::vector<std::string>{"/a/"});
  std::string many = "[";
  for (int i = 0; i < 64; ++i) many += (i ? ", /p" : "/p") + std::to_string(i);
  CHECK(loaded("{prefixes: " + many + "], max_age: 1m}").prefixes.size() == 64);
  refused("{prefixes: " + many + ", /p64], max_age: 1m}", "pools.k.cache.prefixes",
          "at most 64 cache prefixes", "65");
  refused("{prefixes: [v1/foo], max_age: 1m}", "pools.k.cache.prefixes[0]",
          "expected a path starting with '/'", "v1/foo");
  refused("{prefixes: [/a, \"/b?x=1\"], max_age: 1m}", "pools.k.cache.prefixes[1]", "without '?'",
          "/b?x=1");
  refused("{prefixes: [/a, /b, /a], max_age: 1m}", "pools.k.cache.prefixes[2]",
          "duplicate cache prefix", "/a");
  refused("{prefixes: /a, max_age: 1m}", "pools.k.cache.prefixes", "expected a list");
  refused("{prefixes: [[/a]], max_age: 1m}", "pools.k.cache.prefixes[0]", "expected a string");
  refused("{prefixes: [/a]}", "pools.k.cache.prefixes", "cache prefixes need max_age");
}

TEST_CASE("loader cache: max_age range edges, and only with prefixes") {
  CHECK(loaded("{prefixes: [/a], max_age: 1s}").max_age_ms == 1000);
  CHECK(loaded("{prefixes: [/a], max_age: 365d}").max_age_ms == 365ull * 86'400'000);
  refused("{prefixes: [/a], max_age: 999ms}", "pools.k.cache.max_age", "from 1s to 365d", "999ms");
  refused("{prefixes: [/a], max_age: 366d}", "pools.k.cache.max_age", "from 1s to 365d", "366d");
  refused("{prefixes: [/a], max_age: 10}", "pools.k.cache.max_age", "bad duration", "10");
  refused("{max_age: 10m}", "pools.k.cache.max_age", "max_age applies to prefixes", "10m");
  refused("{prefixes: [], max_age: 10m}", "pools.k.cache.max_age", "max_age applies to prefixes",
          "10m");
  // Located at the key, which is what the operator removes.
  check_single(with_cache("{max_age: 10m}"), 6, 13, "pools.k.cache.max_age",
               "max_age applies to prefixes");
}

TEST_CASE("loader cache: collapse, unknown keys and a value that is no mapping") {
  refused("{collapse: yes}", "pools.k.cache.collapse", "expected true or false", "yes");
  check_single(with_cache("{max_byte: 1MB}"), 6, 13, "pools.k.cache.max_byte",
               "unknown key 'max_byte'; did you mean 'max_bytes'?");
  refused("256MB", "pools.k.cache", "expected a mapping");
}

TEST_CASE("loader cache: the pool's kind decides what a cache may hold") {
  SUBCASE("ogmios answers POST and WebSocket only: refused, prefixes or not") {
    check_single(with_cache("{}", "ogmios"), 6, 5, "pools.k.cache",
                 "cache does not apply to kind: ogmios");
    refused("{prefixes: [/a], max_age: 1m}", "pools.k.cache", "kind: ogmios", "", "ogmios");
  }
  SUBCASE("http and blockfrost need prefixes") {
    for (const char* kind : {"http", "blockfrost"}) {
      INFO(kind);
      check_single(
          with_cache("{max_bytes: 256MB}", kind), 6, 5, "pools.k.cache",
          std::string("corral knows no immutable answers of kind ") + kind + "; list prefixes");
      config::CacheConfig c = loaded("{prefixes: [/api/v0/blocks/], max_age: 1h}", kind);
      CHECK(c.prefixes.size() == 1);
      CHECK(c.max_age_ms == 3'600'000);
    }
  }
  SUBCASE("immutable_after_slots is read by kupo pools only") {
    check_single(with_cache("{prefixes: [/a], max_age: 1m, immutable_after_slots: 25920}", "http"),
                 6, 42, "pools.k.cache.immutable_after_slots",
                 "applies only to kind: kupo; this pool's kind (http) never reads it");
  }
  SUBCASE("kupo takes built-in rules and prefixes together") {
    config::CacheConfig c = loaded("{prefixes: [/matches/], max_age: 5s}");
    CHECK(c.immutable_after_slots == 129600);
    CHECK(c.max_age_ms == 5000);
  }
}
