// The buffer and slow-start keys, and the keys the loader refuses because corral would
// ignore them today (DESIGN.md plans them, or the pool's kind never reads them).
#include <doctest.h>

#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/loader.h"
#include "health/pool_policy.h"
#include "tests/config/loader_helpers.h"

using config::LoadResult;
using namespace loader_test;

namespace {

// A valid file with a placeholder line per section, so one key can be added anywhere.
// Line numbers: listener keys at 5, route keys inline at 6, pool keys at 11, health at 12.
std::string with(const std::string& top, const std::string& listener, const std::string& route,
                 const std::string& pool, const std::string& health = "") {
  return top + "\nlisteners:\n  - name: public\n    listen: 127.0.0.1:8080\n" + listener +
         "\n    routes: [{prefix: /, pool: kupo" + route +
         "}]\npools:\n  kupo:\n    kind: kupo\n    backends: [{name: k, address: "
         "127.0.0.1:1442}]\n" +
         pool + "\n    health: {interval: 2s" + health + "}\n";
}

LoadResult load_text(const std::string& s) { return config::load_string(s, "t.yaml"); }

}  // namespace

TEST_CASE("loader keys: the placeholder file loads") {
  LoadResult r = load_text(with("", "", "", ""));
  INFO(dump(r));
  REQUIRE(r.config.has_value());
}

TEST_CASE("loader keys: buffer_bytes, max_buffer_memory and slow_start default") {
  LoadResult r = load_text(with("", "", "", ""));
  REQUIRE(r.config.has_value());
  CHECK(r.config->limits.buffer_bytes == 16 * 1024);
  CHECK(r.config->limits.max_buffer_memory == 256ull * 1024 * 1024);
  CHECK(r.config->pools[0].slow_start_ms == 30'000);
}

TEST_CASE("loader keys: sizes and slow_start values") {
  LoadResult r =
      load_text(with("limits: {buffer_bytes: 32KB, max_buffer_memory: 1GB, "
                     "max_header_bytes: 8KB, max_body_bytes: 1MB}",
                     "", "", "    slow_start: 45s"));
  INFO(dump(r));
  REQUIRE(r.config.has_value());
  CHECK(r.config->limits.buffer_bytes == 32 * 1024);
  CHECK(r.config->limits.max_buffer_memory == 1024ull * 1024 * 1024);
  CHECK(r.config->limits.max_header_bytes == 8 * 1024);
  CHECK(r.config->limits.max_body_bytes == 1024 * 1024);
  CHECK(r.config->pools[0].slow_start_ms == 45'000);

  SUBCASE("plain bytes, equal buffer and header, memory of one buffer") {
    LoadResult p = load_text(
        with("limits: {buffer_bytes: 20_000, max_header_bytes: 20000, max_buffer_memory: 20000}",
             "", "", ""));
    INFO(dump(p));
    REQUIRE(p.config.has_value());
    CHECK(p.config->limits.buffer_bytes == 20'000);
    CHECK(p.config->limits.max_buffer_memory == 20'000);
  }
  SUBCASE("slow_start 0 (with or without a unit) is off") {
    for (const char* zero : {"0", "0s", "0ms"}) {
      LoadResult z = load_text(with("", "", "", std::string("    slow_start: ") + zero));
      INFO(zero, dump(z));
      REQUIRE(z.config.has_value());
      CHECK(z.config->pools[0].slow_start_ms == 0);
    }
  }
}

TEST_CASE("loader keys: buffer errors name file:line:col, the key and the value") {
  SUBCASE("a buffer smaller than the header limit") {
    LoadResult r =
        load_text(with("limits: {max_header_bytes: 32KB, buffer_bytes: 16KB}", "", "", ""));
    check_single(r, 1, 48, "limits.buffer_bytes", "a request head must fit one buffer");
    CHECK(r.errors[0].message.find("16384") != std::string::npos);
    CHECK(r.errors[0].message.find("32768") != std::string::npos);
  }
  SUBCASE("the default header limit counts too") {
    LoadResult r = load_text(with("limits: {buffer_bytes: 8KB}", "", "", ""));
    check_single(r, 1, 24, "limits.buffer_bytes", "a request head must fit one buffer");
    CHECK(r.errors[0].message.find("8192") != std::string::npos);
  }
  SUBCASE("memory for less than one buffer") {
    LoadResult r =
        load_text(with("limits: {buffer_bytes: 64KB, max_buffer_memory: 32KB}", "", "", ""));
    check_single(r, 1, 49, "limits.max_buffer_memory", "below limits.buffer_bytes (65536)");
  }
  SUBCASE("memory below the default buffer") {
    LoadResult r = load_text(with("limits: {max_buffer_memory: 4096}", "", "", ""));
    check_single(r, 1, 29, "limits.max_buffer_memory", "below limits.buffer_bytes (16384)");
  }
  SUBCASE("not a size") {
    for (const char* bad :
         {"16kb", "16 KB", "-1", "1.5MB", "16KiB", "KB", "99999999999999999999"}) {
      LoadResult r =
          load_text(with(std::string("limits: {buffer_bytes: \"") + bad + "\"}", "", "", ""));
      INFO(bad);
      check_single(r, 1, 24, "limits.buffer_bytes", std::string("bad size \"") + bad + "\": ");
      CHECK(r.errors[0].message.find("expected plain bytes or a whole number with a unit: KB, MB "
                                     "or GB") != std::string::npos);
    }
  }
  SUBCASE("out of range") {
    check_single(load_text(with("limits: {buffer_bytes: 1GB}", "", "", "")), 1, 24,
                 "limits.buffer_bytes", "expected a size from 1024 to 67108864 bytes");
    check_single(load_text(with("limits: {max_buffer_memory: 0}", "", "", "")), 1, 29,
                 "limits.max_buffer_memory",
                 "bad size \"0\": 0 bytes is out of range; expected a size at least 1 bytes");
  }
  SUBCASE("slow_start needs a unit unless zero, and no sign") {
    check_single(load_text(with("", "", "", "    slow_start: 30")), 11, 17, "pools.kupo.slow_start",
                 "bad duration \"30\": the unit is missing (a bare number is not a duration); "
                 "expected a whole number with a unit: ms, "
                 "s, m, h or d (e.g. 250ms, 10s, 5m), or 0 for off");
    check_single(load_text(with("", "", "", "    slow_start: -1s")), 11, 17,
                 "pools.kupo.slow_start", "or 0 for off");
  }
}

TEST_CASE("loader keys: websocket on a route") {
  SUBCASE("websocket: true and false on a route are read; a non-boolean is refused") {
    LoadResult on = load_text(with("", "", ", websocket: true", ""));
    INFO(dump(on));
    REQUIRE(on.config.has_value());
    CHECK(on.config->listeners[0].routes[0].websocket);
    LoadResult off = load_text(with("", "", ", websocket: false", ""));
    REQUIRE(off.config.has_value());
    CHECK_FALSE(off.config->listeners[0].routes[0].websocket);
    CHECK_FALSE(load_text(with("", "", ", websocket: maybe", "")).config.has_value());
  }
}

TEST_CASE("loader keys: proxy_protocol on a listener") {
  LoadResult on = load_text(with("", "    proxy_protocol: true", "", ""));
  INFO(dump(on));
  REQUIRE(on.config.has_value());
  CHECK(on.config->listeners[0].proxy_protocol);
  LoadResult off = load_text(with("", "", "", ""));
  REQUIRE(off.config.has_value());
  CHECK_FALSE(off.config->listeners[0].proxy_protocol);
  LoadResult no = load_text(with("", "    proxy_protocol: false", "", ""));
  REQUIRE(no.config.has_value());
  CHECK_FALSE(no.config->listeners[0].proxy_protocol);
  CHECK_FALSE(load_text(with("", "    proxy_protocol: v2", "", "")).config.has_value());
}

TEST_CASE("loader keys: a misspelt key is unknown, with a suggestion") {
  // A misspelling of a real key is still an unknown key, with a suggestion.
  LoadResult typo = load_text(with("", "", "", "    slow_strat: 30s"));
  check_single(typo, 11, 5, "pools.kupo.slow_strat",
               "unknown key 'slow_strat'; did you mean 'slow_start'?");
}

TEST_CASE("loader keys: probe keys the pool's kind never reads are refused") {
  SUBCASE("path and expect_status on a kupo pool") {
    LoadResult r = load_text(with("", "", "", "", ", path: /ready, expect_status: 204"));
    INFO(dump(r));
    REQUIRE(r.errors.size() == 2);
    CHECK(has_error(r, 12, 28, "pools.kupo.health.path", "applies only to kind: http"));
    CHECK(has_error(r, 12, 42, "pools.kupo.health.expect_status", "applies only to kind: http"));
  }
  SUBCASE("max_lag_slots and stale_after on an http pool; stale_after on ogmios") {
    LoadResult r = load_text(
        "listeners: [{name: p, listen: 127.0.0.1:8080, routes: [{prefix: /, pool: w}]}]\n"
        "pools:\n"
        "  w: {kind: http, backends: [{name: w, address: 127.0.0.1:1}],\n"
        "      health: {max_lag_slots: 10, stale_after: 1m}}\n"
        "  o: {kind: ogmios, backends: [{name: o, address: 127.0.0.1:2}],\n"
        "      health: {max_lag_slots: 10, stale_after: 1m}}\n");
    INFO(dump(r));
    REQUIRE(r.errors.size() == 3);
    CHECK(has_error(r, 4, 16, "pools.w.health.max_lag_slots",
                    "applies only to kind: kupo or ogmios"));
    CHECK(has_error(r, 4, 35, "pools.w.health.stale_after", "applies only to kind: kupo"));
    CHECK(has_error(r, 6, 35, "pools.o.health.stale_after", "applies only to kind: kupo"));
  }
  SUBCASE("allow_writes: true on a route to a pool that is not kupo") {
    LoadResult r = load_text(
        "listeners: [{name: p, listen: 127.0.0.1:8080, routes: [\n"
        "  {prefix: /o/, pool: o, allow_writes: true},\n"
        "  {prefix: /k/, pool: k, allow_writes: true},\n"
        "  {prefix: /, pool: o, allow_writes: false}]}]\n"
        "pools:\n"
        "  o: {kind: ogmios, backends: [{name: o, address: 127.0.0.1:2}]}\n"
        "  k: {kind: kupo, backends: [{name: k, address: 127.0.0.1:3}]}\n");
    check_single(r, 2, 40, "listeners[0].routes[0].allow_writes",
                 "allow_writes applies only to routes to a kind: kupo pool");
  }
}

// DESIGN.md "Configuration (the contract)" as of issue 8, verbatim except for the
// state_file and monitor.disk_paths directory (made to exist) and an ogmios pool it routes to
// but leaves out.
const char* kDesignToday = R"(workers: 1                      # event-loop threads; 0 = one per core
state_file: STATE_DIR/pins   # pins (and the Blockfrost daily count) survive restarts
stop_timeout: 10s               # SIGTERM: in-flight work gets this long
admin: {listen: 127.0.0.1:9901}  # token_file: optional bearer token
listeners:
  - name: public
    listen: 127.0.0.1:8080
    # tls: {cert: cert.pem, key: key.pem}
    # proxy_protocol: true       # behind an L4 balancer: the real client address
    routes:                      # first prefix that matches wins
      - {prefix: /kupo/, pool: kupo, strip_prefix: true, methods: [GET, HEAD, OPTIONS]}
      - {prefix: /ogmios, pool: ogmios, strip_prefix: true, websocket: true}
      - {prefix: /blockfrost/, pool: blockfrost, strip_prefix: true,
         client_rate_limit: {rps: 5, burst: 50, per_ip_rps: 20}}
      # allow_writes: true on a kupo route opens Kupo's write endpoints (never by default)
      # expose_backend: X-Corral-Backend names the answering backend in the response
sticky:
  keys:                          # tried in order; the first that yields a key wins
    - {from: path, prefix: /s/}  # /s/<token>/rest -> key <token>, forwards /rest
    - {from: cookie, name: corral}
    - {from: header, name: X-Session-Key}
    - {from: address}            # stake credential of a Cardano address in the path
    - {from: client_ip}
  hash: rendezvous               # rendezvous | maglev
  ttl: 1h                        # idle pins expire
  max_sessions: 1000000
  balance_factor: 1.25           # bounded loads for new users; 0 = off
  # store: {redis: 127.0.0.1:6379, prefix: "corral:", timeout: 50ms, sync_interval: 2s}
pools:
  ogmios: {kind: ogmios, backends: [{name: ogmios-1, address: 127.0.0.1:1337}]}
  kupo:
    kind: kupo                   # kupo | ogmios | blockfrost | http
    backends:
      - {name: kupo-1, address: 127.0.0.1:1442}
      - {name: kupo-2, address: 127.0.0.1:1443, weight: 2}
    health: {interval: 2s, timeout: 1s, rise: 2, fall: 3, max_lag_slots: 600,
             move_lag_slots: 1800, stale_after: 2m, fork_depth_slots: 60}
    eject: {consecutive_503: 3, base_time: 10s, max_time: 5m, max_percent: 50}
    slow_start: 30s              # a returning or added backend's share ramps from 10%
    timeouts: {connect: 2s, response: 30s}
    cache: {max_bytes: 256MB, immutable_after_slots: 129600}   # + request collapsing
  blockfrost:
    kind: blockfrost
    backends: [{name: bf, address: cardano-preprod.blockfrost.io:443, tls: true}]
    resolve_interval: 60s        # host names re-resolved, every address tried
    set_headers: {project_id: {env: BLOCKFROST_PROJECT_ID}}
    remove_headers: {request: [], response: []}
    rate_limit: {rps: 10, burst: 500, daily: 50000}
limits: {max_connections: 10000, max_header_bytes: 16384, max_body_bytes: 1MB,
         header_timeout: 10s, idle_timeout: 60s, body_timeout: 60s, send_timeout: 60s,
         tunnel_idle_timeout: 1h, buffer_bytes: 16KB, max_buffer_memory: 256MB}
log: {format: logfmt, access: false, access_file: /var/log/corral/access.log}
monitor: {disk_paths: [STATE_DIR]}
)";

TEST_CASE("loader keys: DESIGN.md's sample loads, cache and all") {
  TempDir dir;
  std::string text = kDesignToday;
  for (size_t at; (at = text.find("STATE_DIR")) != std::string::npos;)
    text.replace(at, 9, dir.path.string());
  setenv("BLOCKFROST_PROJECT_ID", "preprodSECRET123", 1);
  LoadResult ok = config::load_string(text, "design.yaml");
  unsetenv("BLOCKFROST_PROJECT_ID");
  INFO(dump(ok));
  REQUIRE(ok.config.has_value());
  REQUIRE(ok.config->find_pool("kupo")->cache.has_value());
  CHECK(ok.config->find_pool("kupo")->cache->max_bytes == 256ull << 20);
  CHECK(ok.config->find_pool("kupo")->cache->immutable_after_slots == 129600);
  CHECK(ok.config->find_pool("kupo")->cache->collapse);
  CHECK_FALSE(ok.config->find_pool("blockfrost")->cache.has_value());
  CHECK(ok.config->limits.max_body_bytes == 1024 * 1024);
  CHECK(ok.config->find_pool("kupo")->slow_start_ms == 30'000);
  CHECK(ok.config->monitor.disk_paths == std::vector<std::string>{dir.path.string()});
}

TEST_CASE("loader keys: rate_limit on a pool") {
  SUBCASE("rps, burst and daily are read; daily with a state_file") {
    TempDir dir;
    LoadResult r = load_text(with("state_file: " + (dir.path / "pins").string(), "", "",
                                  "    rate_limit: {rps: 10, burst: 500, daily: 50000}"));
    INFO(dump(r));
    REQUIRE(r.config.has_value());
    REQUIRE(r.config->pools[0].rate_limit.has_value());
    CHECK(r.config->pools[0].rate_limit->rps == 10);
    CHECK(r.config->pools[0].rate_limit->burst == 500);
    CHECK(r.config->pools[0].rate_limit->daily == 50000);
  }
  SUBCASE("rps alone: burst is a second's worth, no daily quota") {
    LoadResult r = load_text(with("", "", "", "    rate_limit: {rps: 2.5}"));
    INFO(dump(r));
    REQUIRE(r.config.has_value());
    CHECK(r.config->pools[0].rate_limit->burst == 2.5);
    CHECK(r.config->pools[0].rate_limit->daily == 0);
    LoadResult slow = load_text(with("", "", "", "    rate_limit: {rps: 0.2}"));
    REQUIRE(slow.config.has_value());
    CHECK(slow.config->pools[0].rate_limit->burst == 1);
  }
  SUBCASE("daily without state_file is an error naming the key") {
    check_single(load_text(with("", "", "", "    rate_limit: {rps: 10, daily: 50000}")), 11, 34,
                 "pools.kupo.rate_limit.daily", "rate_limit.daily needs state_file");
  }
  SUBCASE("values that limit nothing or make no sense are refused") {
    check_single(load_text(with("", "", "", "    rate_limit: {}")), 11, 17, "pools.kupo.rate_limit",
                 "rate_limit needs rps or daily");
    check_single(load_text(with("", "", "", "    rate_limit: {burst: 5}")), 11, 25,
                 "pools.kupo.rate_limit.burst", "rate_limit.burst needs rate_limit.rps");
    check_single(load_text(with("", "", "", "    rate_limit: {rps: 0}")), 11, 23,
                 "pools.kupo.rate_limit.rps", "rate_limit.rps must be above 0");
    check_single(load_text(with("", "", "", "    rate_limit: {rps: 1, burst: 0.5}")), 11, 33,
                 "pools.kupo.rate_limit.burst", "rate_limit.burst must be between 1");
    check_single(load_text(with("", "", "", "    rate_limit: {rps: 1, dialy: 5}")), 11, 26,
                 "pools.kupo.rate_limit.dialy", "unknown key 'dialy'");
  }
}

TEST_CASE("loader keys: move_lag_slots and fork_depth_slots") {
  LoadResult d = load_text(with("", "", "", "", ", max_lag_slots: 100"));
  REQUIRE(d.config.has_value());
  CHECK_FALSE(d.config->pools[0].health.move_lag_slots.has_value());
  CHECK(d.config->pools[0].health.fork_depth_slots == 60);
  CHECK(health::pool_params(d.config->pools[0]).move_lag_slots == 300);  // 3 x max_lag
  LoadResult r = load_text(
      with("", "", "", "", ", max_lag_slots: 100, move_lag_slots: 250, fork_depth_slots: 90"));
  INFO(dump(r));
  REQUIRE(r.config.has_value());
  CHECK(health::pool_params(r.config->pools[0]).move_lag_slots == 250);
  CHECK(health::pool_params(r.config->pools[0]).fork_depth_slots == 90);
  LoadResult low = load_text(with("", "", "", "", ", max_lag_slots: 100, move_lag_slots: 50"));
  INFO(dump(low));
  REQUIRE(low.errors.size() == 1);
  CHECK(low.errors[0].key == "pools.kupo.health.move_lag_slots");
  CHECK(low.errors[0].message.find("at least max_lag_slots") != std::string::npos);
  CHECK_FALSE(load_text(with("", "", "", "", ", fork_depth_slots: 0")).config.has_value());
  CHECK_FALSE(load_text(with("", "", "", "", ", fork_depth_slots: -3")).config.has_value());
  LoadResult http = load_text(
      "listeners: [{name: p, listen: 127.0.0.1:8080, routes: [{prefix: /, pool: w}]}]\n"
      "pools:\n"
      "  w: {kind: http, backends: [{name: w, address: 127.0.0.1:1}],\n"
      "      health: {move_lag_slots: 1000, fork_depth_slots: 5}}\n");
  REQUIRE(http.errors.size() == 2);
  CHECK(http.errors[0].message.find("applies only to kind: kupo or ogmios") != std::string::npos);
  // Ogmios is compared at its tip: a depth would be a key that does nothing.
  LoadResult og = load_text(
      "listeners: [{name: p, listen: 127.0.0.1:8080, routes: [{prefix: /, pool: o}]}]\n"
      "pools:\n"
      "  o: {kind: ogmios, backends: [{name: o, address: 127.0.0.1:2}],\n"
      "      health: {fork_depth_slots: 5}}\n");
  REQUIRE(og.errors.size() == 1);
  CHECK(og.errors[0].key == "pools.o.health.fork_depth_slots");
  CHECK(og.errors[0].message.find("applies only to kind: kupo;") != std::string::npos);
}
