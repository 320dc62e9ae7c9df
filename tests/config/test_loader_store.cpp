// sticky.store (issue 15): every key read, its defaults, and every refusal located at
// file:line:column with the key and the value written, the password never echoed.
#include <doctest.h>

#include <cstdlib>
#include <string>

#include "config/loader.h"
#include "tests/config/loader_helpers.h"

using config::LoadResult;
using namespace loader_test;

namespace {

// A valid file whose sticky.store mapping starts at line 4; `keys` are its lines (from line
// 5 on, indented by four spaces).
std::string with_store(const std::string& keys) {
  return "listeners: [{name: p, listen: 127.0.0.1:8080, routes: [{prefix: /, pool: k}]}]\n"
         "pools: {k: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}\n"
         "sticky:\n"
         "  store:\n" +
         keys;
}

LoadResult load_store(const std::string& keys) {
  return config::load_string(with_store(keys), "t.yaml");
}

// The single error is at line:col, names `key`, says `msg`, and its full text
// ("t.yaml:LINE:COL: KEY: ...") holds `value` as written.
void check_store_error(const LoadResult& r, int line, int col, const std::string& key,
                       const std::string& msg, const std::string& value) {
  check_single(r, line, col, key, msg);
  if (r.errors.size() != 1) return;
  const std::string text = r.errors[0].str();
  CHECK(text.rfind("t.yaml:" + std::to_string(line) + ":" + std::to_string(col) + ": " + key, 0) ==
        0);
  CHECK_MESSAGE(text.find(value) != std::string::npos, text);
}

// `name: written` after a valid redis line (so on line 6, the value at `col`): the one
// error names sticky.store.<name>, says `msg` and holds `value` as written.
void check_refused(const std::string& name, const std::string& written, int col,
                   const std::string& msg, const std::string& value) {
  check_store_error(load_store("    redis: 127.0.0.1:6379\n    " + name + ": " + written + "\n"), 6,
                    col, "sticky.store." + name, msg, value);
}

// No error of `r` holds `secret`.
void check_never_echoed(const LoadResult& r, const std::string& secret) {
  INFO(dump(r));
  CHECK_FALSE(r.config.has_value());
  CHECK_FALSE(r.errors.empty());
  for (const config::ConfigError& e : r.errors) CHECK(e.str().find(secret) == std::string::npos);
}

}  // namespace

TEST_CASE("sticky.store: absent means no store") {
  std::string text = with_store("");
  text.resize(text.find("sticky:"));
  LoadResult r = config::load_string(text, "t.yaml");
  INFO(dump(r));
  REQUIRE(r.config.has_value());
  CHECK_FALSE(r.config->sticky.store.has_value());
}

TEST_CASE("sticky.store: every key is read") {
  setenv("CORRAL_STORE_TEST_PW", "  s3cret-pw \n", 1);
  LoadResult r = load_store(
      "    redis: 10.0.0.5:6380\n"
      "    prefix: \"app1:\"\n"
      "    timeout: 20ms\n"
      "    password: {env: CORRAL_STORE_TEST_PW}\n"
      "    sync_interval: 500ms\n"
      "    max_pending: 0\n");
  unsetenv("CORRAL_STORE_TEST_PW");
  INFO(dump(r));
  REQUIRE(r.config.has_value());
  REQUIRE(r.config->sticky.store.has_value());
  const config::StickyStore& s = *r.config->sticky.store;
  CHECK(s.redis == "10.0.0.5:6380");
  CHECK(s.host == "10.0.0.5");
  CHECK(s.port == 6380);
  CHECK(s.prefix == "app1:");
  CHECK(s.timeout_ms == 20);
  CHECK(s.password.env == "CORRAL_STORE_TEST_PW");
  CHECK(s.password.value == "s3cret-pw");  // trimmed like set_headers
  CHECK(s.sync_interval_ms == 500);
  CHECK(s.max_pending == 0);
}

TEST_CASE("sticky.store: defaults, and the range ends are accepted") {
  LoadResult r = load_store("    redis: 127.0.0.1:6379\n");
  INFO(dump(r));
  REQUIRE(r.config.has_value());
  REQUIRE(r.config->sticky.store.has_value());
  const config::StickyStore& s = *r.config->sticky.store;
  CHECK(s.prefix == "corral:");
  CHECK(s.timeout_ms == 50);
  CHECK(s.sync_interval_ms == 2000);
  CHECK(s.max_pending == 100'000);
  CHECK(s.password.value.empty());
  CHECK(s.password.env.empty());
  CHECK(s.password.file.empty());

  LoadResult lo =
      load_store("    {redis: \"[::1]:1\", timeout: 1ms, sync_interval: 100ms, prefix: \"" +
                 std::string(64, 'p') + "\"}\n");
  INFO(dump(lo));
  REQUIRE(lo.config.has_value());
  CHECK(lo.config->sticky.store->host == "::1");
  CHECK(lo.config->sticky.store->port == 1);
  CHECK(lo.config->sticky.store->redis == "[::1]:1");
  CHECK(lo.config->sticky.store->timeout_ms == 1);
  CHECK(lo.config->sticky.store->sync_interval_ms == 100);
  CHECK(lo.config->sticky.store->prefix.size() == 64);

  LoadResult hi = load_store(
      "    {redis: redis.internal:65535, timeout: 5s, sync_interval: 5m, max_pending: "
      "10000000}\n");
  INFO(dump(hi));
  REQUIRE(hi.config.has_value());
  CHECK(hi.config->sticky.store->host == "redis.internal");  // resolved later, not at load
  CHECK(hi.config->sticky.store->port == 65535);
  CHECK(hi.config->sticky.store->timeout_ms == 5000);
  CHECK(hi.config->sticky.store->sync_interval_ms == 300'000);
  CHECK(hi.config->sticky.store->max_pending == 10'000'000);
}

TEST_CASE("sticky.store: the password from a file") {
  TempDir dir;
  dir.write("redis.pw", "file-pw\n");
  // A relative path is relative to the config file, like every other path.
  LoadResult r = config::load_file(dir.write(
      "c.yaml", with_store("    redis: 127.0.0.1:6379\n    password: {file: redis.pw}\n")));
  INFO(dump(r));
  REQUIRE(r.config.has_value());
  CHECK(r.config->sticky.store->password.value == "file-pw");
  CHECK(r.config->sticky.store->password.file == (dir.path / "redis.pw").string());
}

TEST_CASE("sticky.store: redis is required and checked") {
  check_single(load_store("    prefix: x\n"), 5, 5, "sticky.store.redis",
               "required key is missing");
  check_store_error(load_store("    redis: 127.0.0.1:0\n"), 5, 12, "sticky.store.redis",
                    "invalid address", "127.0.0.1:0");
  check_store_error(load_store("    redis: 127.0.0.1:65536\n"), 5, 12, "sticky.store.redis",
                    "invalid address", "127.0.0.1:65536");
  check_store_error(load_store("    redis: redishost\n"), 5, 12, "sticky.store.redis",
                    "invalid address", "redishost");
  check_store_error(load_store("    redis: \"::1:6379\"\n"), 5, 12, "sticky.store.redis",
                    "must be bracketed", "::1:6379");
  check_single(load_store("    redis: [a, b]\n"), 5, 12, "sticky.store.redis",
               "expected an address");
  check_single(
      config::load_string(with_store("").substr(0, with_store("").size() - 1) + " 127.0.0.1:6379\n",
                          "t.yaml"),
      4, 10, "sticky.store", "expected a mapping");
}

TEST_CASE("sticky.store: prefix") {
  check_refused("prefix", "\"a b\"", 13, "without spaces", "\"a b\"");
  check_refused("prefix", "\"\"", 13, "1 to 64 printable", "\"\"");
  check_refused("prefix", "\"a\\tb\"", 13, "printable", "a\\tb");
  const std::string long_prefix(65, 'x');
  check_refused("prefix", long_prefix, 13, "1 to 64", long_prefix);
  check_single(load_store("    redis: 127.0.0.1:6379\n    prefix: [x]\n"), 6, 13,
               "sticky.store.prefix", "bad prefix");
}

TEST_CASE("sticky.store: timeout and sync_interval ranges") {
  check_refused("timeout", "6s", 14, "expected from 1ms to 5s", "\"6s\"");
  check_refused("timeout", "0ms", 14, "greater than zero", "\"0ms\"");
  check_refused("timeout", "fast", 14, "bad duration", "\"fast\"");
  check_refused("sync_interval", "99ms", 20, "expected from 100ms to 5m", "\"99ms\"");
  check_refused("sync_interval", "301s", 20, "expected from 100ms to 5m", "\"301s\"");
}

TEST_CASE("sticky.store: max_pending range") {
  check_refused("max_pending", "10000001", 18, "from 0 (do not queue) to 10000000", "10000001");
  check_refused("max_pending", "-1", 18, "expected an integer", "\"-1\"");
  check_refused("max_pending", "lots", 18, "expected an integer", "\"lots\"");
}

TEST_CASE("sticky.store: an unknown key gets a suggestion") {
  check_single(load_store("    redis: 127.0.0.1:6379\n    sync_intervall: 1s\n"), 6, 5,
               "sticky.store.sync_intervall",
               "unknown key 'sync_intervall'; did you mean 'sync_interval'?");
  check_single(load_store("    redis: 127.0.0.1:6379\n    pasword: {env: X}\n"), 6, 5,
               "sticky.store.pasword", "did you mean 'password'?");
}

TEST_CASE("sticky.store: password errors never echo the secret") {
  const std::string r = "    redis: 127.0.0.1:6379\n";
  SUBCASE("written in the YAML") {
    LoadResult e = load_store(r + "    password: hunter2SECRET\n");
    check_single(e, 6, 15, "sticky.store.password", "expected {env: VAR} or {file: PATH}");
    check_never_echoed(e, "SECRET");
  }
  SUBCASE("a bad YAML escape in the line of a password") {
    LoadResult e = load_store(r + "    password: \"hunter2SECRET\\q\"\n");
    check_never_echoed(e, "SECRET");
  }
  SUBCASE("env and file both") {
    check_single(load_store(r + "    password: {env: A, file: b}\n"), 6, 15,
                 "sticky.store.password", "either env or file");
  }
  SUBCASE("an unset variable is named") {
    unsetenv("CORRAL_STORE_TEST_UNSET");
    check_single(load_store(r + "    password: {env: CORRAL_STORE_TEST_UNSET}\n"), 6, 21,
                 "sticky.store.password.env", "'CORRAL_STORE_TEST_UNSET' is not set");
  }
  SUBCASE("a value with a control character") {
    setenv("CORRAL_STORE_TEST_PW", "abcSECRET\x01x", 1);
    LoadResult e = load_store(r + "    password: {env: CORRAL_STORE_TEST_PW}\n");
    unsetenv("CORRAL_STORE_TEST_PW");
    check_single(e, 6, 21, "sticky.store.password.env", "control character");
    check_never_echoed(e, "SECRET");
  }
  SUBCASE("a missing file") {
    check_single(load_store(r + "    password: {file: /nonexistent/corral-pw}\n"), 6, 22,
                 "sticky.store.password.file", "cannot read '/nonexistent/corral-pw'");
  }
  SUBCASE("an unknown key inside") {
    check_single(load_store(r + "    password: {value: hunter2SECRET}\n"), 6, 16,
                 "sticky.store.password.value", "unknown key 'value'");
  }
}
