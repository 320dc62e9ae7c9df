#include <doctest.h>

#include <cstdlib>
#include <string>

#include "config/diff.h"
#include "loader_helpers.h"

namespace {

config::Config cfg(const std::string& backends, const std::string& extra_pool = "",
                   const std::string& routes = "      - {prefix: /kupo/, pool: kupo}\n") {
  std::string y = "listeners:\n  - name: public\n    listen: 127.0.0.1:0\n    routes:\n" + routes +
                  "pools:\n  kupo:\n    kind: kupo\n    backends:\n" + backends + extra_pool;
  config::LoadResult r = config::load_string(y, "t.yaml");
  REQUIRE_MESSAGE(r.config, loader_test::dump(r));
  return *r.config;
}

const std::string k1 = "      - {name: kupo-1, address: 127.0.0.1:1442}\n";
const std::string k2 = "      - {name: kupo-2, address: 127.0.0.1:1443}\n";

}  // namespace

TEST_CASE("config diff: nothing changed says so") {
  CHECK(config::join_changes(config::describe_changes(cfg(k1), cfg(k1))) == "no changes");
}

TEST_CASE("config diff: backends added, removed and changed are named") {
  auto c = config::describe_changes(cfg(k1), cfg(k1 + k2));
  CHECK(config::join_changes(c) == "backend kupo/kupo-2 added");
  c = config::describe_changes(cfg(k1 + k2), cfg(k2));
  CHECK(config::join_changes(c) == "backend kupo/kupo-1 removed");
  c = config::describe_changes(cfg(k1),
                               cfg("      - {name: kupo-1, address: 127.0.0.1:1442, weight: 3}\n"));
  CHECK(config::join_changes(c) == "backend kupo/kupo-1 changed");
}

TEST_CASE("config diff: routes, pools and injected header names, never values") {
  setenv("CORRAL_DIFF_TEST_KEY", "very-secret-value", 1);
  const std::string header = "    set_headers: {project_id: {env: CORRAL_DIFF_TEST_KEY}}\n";
  auto c = config::describe_changes(cfg(k1), cfg(k1, header));
  CHECK(config::join_changes(c) == "injected header kupo/project_id added");
  c = config::describe_changes(cfg(k1, header), cfg(k1));
  CHECK(config::join_changes(c) == "injected header kupo/project_id removed");
  const config::Config before = cfg(k1, header);
  setenv("CORRAL_DIFF_TEST_KEY", "another-secret", 1);
  const std::string text = config::join_changes(config::describe_changes(before, cfg(k1, header)));
  CHECK(text == "injected header kupo/project_id changed");
  CHECK(text.find("secret") == std::string::npos);

  c = config::describe_changes(cfg(k1),
                               cfg(k1, "",
                                   "      - {prefix: /kupo/, pool: kupo}\n"
                                   "      - {prefix: /k2/, pool: kupo, strip_prefix: true}\n"));
  CHECK(config::join_changes(c) == "route public /k2/ added");
  c = config::describe_changes(cfg(k1), cfg(k1, "    timeouts: {response: 5s}\n"));
  CHECK(config::join_changes(c) == "pool kupo changed");
  c = config::describe_changes(cfg(k1, "    rate_limit: {rps: 10}\n"),
                               cfg(k1, "    rate_limit: {rps: 10, burst: 20}\n"));
  CHECK(config::join_changes(c) == "pool kupo changed");
  c = config::describe_changes(cfg(k1), cfg(k1, "    rate_limit: {rps: 10}\n"));
  CHECK(config::join_changes(c) == "pool kupo changed");
}

TEST_CASE("config diff: every limits and sticky field counts") {
  const config::Config base = cfg(k1);
  for (const char* limits :
       {"limits: {body_timeout: 5s}\n", "limits: {send_timeout: 5s}\n",
        "limits: {max_buffer_memory: 64MB}\n", "limits: {buffer_bytes: 32KB}\n"}) {
    CAPTURE(limits);
    config::LoadResult r = config::load_string(
        std::string(limits) +
            "listeners:\n  - name: public\n    listen: 127.0.0.1:0\n    routes:\n"
            "      - {prefix: /kupo/, pool: kupo}\npools:\n  kupo:\n    kind: kupo\n    "
            "backends:\n" +
            k1,
        "t.yaml");
    REQUIRE_MESSAGE(r.config, loader_test::dump(r));
    CHECK(config::join_changes(config::describe_changes(base, *r.config)) == "limits changed");
  }
  config::Config keyed = base;
  keyed.sticky.keys.push_back({lb::KeySource::header, "x-wallet"});
  CHECK(config::join_changes(config::describe_changes(base, keyed)) == "sticky changed");
}

TEST_CASE("config diff: proxy_protocol switched on a listener is a changed listener") {
  config::Config a = cfg(k1);
  config::Config b = a;
  b.listeners[0].proxy_protocol = true;
  CHECK(config::join_changes(config::describe_changes(a, b)) == "listener public changed");
}

TEST_CASE("config diff: sticky.store added, removed and changed, the password never shown") {
  setenv("CORRAL_DIFF_STORE_PW", "first-secret", 1);
  const std::string store_a =
      "sticky: {store: {redis: 127.0.0.1:6379, password: {env: CORRAL_DIFF_STORE_PW}}}\n";
  auto with = [](const std::string& top) {
    config::LoadResult r = config::load_string(
        top +
            "listeners:\n  - name: public\n    listen: 127.0.0.1:0\n    routes:\n"
            "      - {prefix: /kupo/, pool: kupo}\npools:\n  kupo:\n    kind: kupo\n    "
            "backends:\n" +
            k1,
        "t.yaml");
    REQUIRE_MESSAGE(r.config, loader_test::dump(r));
    return *r.config;
  };
  const config::Config none = with("");
  const config::Config a = with(store_a);
  setenv("CORRAL_DIFF_STORE_PW", "second-secret", 1);
  const config::Config a_new_pw = with(store_a);
  unsetenv("CORRAL_DIFF_STORE_PW");
  const config::Config b = with("sticky: {store: {redis: 127.0.0.1:6380}}\n");
  const config::Config b_keys =
      with("sticky: {store: {redis: 127.0.0.1:6380}, keys: [{from: cookie, name: c}]}\n");

  CHECK(config::join_changes(config::describe_changes(none, a)) == "sticky.store added");
  CHECK(config::join_changes(config::describe_changes(a, none)) == "sticky.store removed");
  CHECK(config::join_changes(config::describe_changes(a, b)) == "sticky.store changed");
  CHECK(config::join_changes(config::describe_changes(a, a)) == "no changes");
  const std::string pw = config::join_changes(config::describe_changes(a, a_new_pw));
  CHECK(pw == "sticky.store changed");
  CHECK(pw.find("secret") == std::string::npos);
  CHECK(config::join_changes(config::describe_changes(b, b_keys)) == "sticky changed");
  CHECK(config::join_changes(config::describe_changes(a, b_keys)) ==
        "sticky changed; sticky.store changed");
}

TEST_CASE("config diff: cache added, removed, and each changed key with old -> new") {
  auto with = [](const std::string& cache) { return cfg(k1, "    cache: " + cache + "\n"); };
  auto diff = [](const config::Config& a, const config::Config& b) {
    return config::join_changes(config::describe_changes(a, b));
  };
  CHECK(diff(cfg(k1), with("{}")) == "pools.kupo.cache added");
  CHECK(diff(with("{}"), cfg(k1)) == "pools.kupo.cache removed");
  CHECK(diff(with("{}"), with("{max_bytes: 64MB}")) == "no changes");  // the default
  CHECK(diff(with("{max_bytes: 256MB}"), with("{max_bytes: 64MB}")) ==
        "pools.kupo.cache.max_bytes 256MB -> 64MB");
  CHECK(diff(with("{max_bytes: 1GB}"), with("{max_bytes: 1048577}")) ==
        "pools.kupo.cache.max_bytes 1GB -> 1048577");
  CHECK(diff(with("{}"), with("{immutable_after_slots: 25920}")) ==
        "pools.kupo.cache.immutable_after_slots 129600 -> 25920");
  CHECK(diff(with("{collapse: true}"), with("{collapse: false}")) ==
        "pools.kupo.cache.collapse true -> false");
  CHECK(diff(with("{}"), with("{prefixes: [/a, /b], max_age: 90s}")) ==
        "pools.kupo.cache.prefixes [] -> [/a, /b]; pools.kupo.cache.max_age none -> 90s");
  CHECK(diff(with("{prefixes: [/a], max_age: 1d}"), with("{prefixes: [/a], max_age: 1500ms}")) ==
        "pools.kupo.cache.max_age 1d -> 1500ms");
  // A cache change is named on its own: the rest of the pool is unchanged.
  CHECK(diff(with("{max_bytes: 2MB}"), cfg(k1,
                                           "    timeouts: {response: 5s}\n    cache: "
                                           "{max_bytes: 3MB}\n")) ==
        "pool kupo changed; pools.kupo.cache.max_bytes 2MB -> 3MB");
}
