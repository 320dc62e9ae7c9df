#pragma once
// The configuration contract of DESIGN.md as plain values. The YAML loader (loader.h)
// fills these; validation errors name file, line, column and key. Durations are in
// milliseconds. Nothing here depends on yaml-cpp or libuv.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lb/core/client_limiter.h"
#include "lb/core/key_extractor.h"
#include "lb/core/selector.h"

namespace config {

// host:port as written ("127.0.0.1:1442", "[::1]:8080", "example.org:443").
struct Address {
  std::string host;
  uint16_t port = 0;
  std::string text;  // the original spelling, for logs and /status
};

// Listener TLS: the certificate chain and key files (resolved against the config's
// directory) and their contents as read and checked at load, so a reload re-reads them and
// the context is built from exactly what was checked. key_pem is secret: never logged.
struct Tls {
  std::string cert;
  std::string key;
  std::string cert_pem;
  std::string key_pem;
  bool operator==(const Tls&) const = default;
};

struct Route {
  std::string prefix;
  std::string pool;
  bool strip_prefix = false;
  std::vector<std::string> methods;  // empty = every method; upper-case
  bool websocket = false;            // accept WebSocket upgrades and tunnel them
  // Kupo write endpoints (PUT/DELETE /patterns..., DELETE /matches...) pass only when
  // the route sets this explicitly.
  bool allow_writes = false;
  // client_rate_limit: per-client token buckets (lb/core/client_limiter); rps 0 = none.
  lb::ClientLimit client_rate_limit;
  // expose_backend: a response header naming the backend that answered; empty = off.
  std::string expose_backend;
};

struct Listener {
  std::string name;
  Address listen;
  std::optional<Tls> tls;
  std::vector<Route> routes;
  // Connections start with a PROXY protocol v1/v2 header naming the real client (an L4
  // balancer in front); without one they are closed.
  bool proxy_protocol = false;
};

struct Secret {
  std::string env;    // variable name, or empty
  std::string file;   // path, or empty
  std::string value;  // resolved at load time; never logged
  bool operator==(const Secret&) const = default;
};

// sticky.store (issue 15): the shared pin store, Redis.
struct StickyStore {
  std::string redis;  // HOST:PORT as configured (shown in /status)
  std::string host;
  uint16_t port = 6379;
  std::string prefix = "corral:";
  uint64_t timeout_ms = 50;
  Secret password;  // kind none: no AUTH
  uint64_t sync_interval_ms = 2000;
  uint64_t max_pending = 100'000;  // 0: writes made while Redis is down are not queued
  bool operator==(const StickyStore&) const = default;
};

struct Sticky {
  std::vector<lb::ExtractorSpec> keys;
  uint64_t ttl_ms = 3600'000;
  uint64_t max_sessions = 1'000'000;
  double balance_factor = 1.25;
  lb::SelectorKind hash = lb::SelectorKind::rendezvous;
  std::optional<StickyStore> store;                // none: pins stay local to this instance
  bool operator==(const Sticky&) const = default;  // every field: a reload diff misses none
};

enum class PoolKind : uint8_t { kupo, ogmios, blockfrost, http };

struct Backend {
  std::string name;
  Address address;
  uint32_t weight = 1;
  // TLS to the backend (`tls: true` or `tls: {ca, server_name}`), verification always on.
  bool tls = false;
  std::string tls_ca;           // PEM file of trusted CAs; empty = the system store
  std::string tls_server_name;  // SNI and the name checked; empty = the address's host
};

struct Health {
  uint64_t interval_ms = 2000;
  uint64_t timeout_ms = 1000;
  uint32_t rise = 2;
  uint32_t fall = 3;
  uint64_t max_lag_slots = 600;
  // A backend whose last block is older than this is stale (its node stopped following the
  // chain even if the tips agree); Cardano makes a block every ~20s, so 10m is far outside
  // normal variance.
  uint64_t stale_after_ms = 600'000;
  // Behind the pool's best tip by more than this, pinned users move; unset = 3 x
  // max_lag_slots.
  std::optional<uint64_t> move_lag_slots;
  // Fork checks compare header hashes this far below the lowest tip of the pool.
  uint64_t fork_depth_slots = 60;
  std::string path = "/health";  // http kind
  int expect_status = 200;       // http kind
};

struct Eject {
  uint32_t consecutive_503 = 3;
  uint64_t base_time_ms = 10'000;
  uint64_t max_time_ms = 300'000;
  uint32_t max_percent = 50;
};

struct Timeouts {
  uint64_t connect_ms = 2000;
  uint64_t response_ms = 30'000;
};

// A header value taken from the environment or a file, never from the YAML itself.
// The Blockfrost quota guard of a pool (lb/core/quota_guard.h): a token bucket shared by
// every worker plus a count per UTC day, which needs state_file to survive restarts.
struct RateLimit {
  double rps = 0;                                     // 0 = no bucket
  double burst = 0;                                   // >= 1 with rps; defaults to max(1, rps)
  uint64_t daily = 0;                                 // 0 = no daily quota
  bool operator==(const RateLimit&) const = default;  // a reload diff sees every field
};

// remove_headers: fields dropped from requests before forwarding and from responses
// before answering the client (names as written; compared case-insensitively).
struct RemoveHeaders {
  std::vector<std::string> request;
  std::vector<std::string> response;
  bool operator==(const RemoveHeaders&) const = default;
};

// cache: the pool's immutable-response cache and request collapsing (issue 16; README
// "Cache"). Kupo pools have built-in rules; any kind may add operator prefixes.
struct CacheConfig {
  uint64_t max_bytes = 64ull << 20;          // the bound on stored answers (key + fields + body)
  uint64_t immutable_after_slots = 129'600;  // mainnet and preprod; preview is 25,920
  std::vector<std::string> prefixes;  // operator prefixes (forwarded path), cached for max_age
  uint64_t max_age_ms = 0;            // required with prefixes, refused without
  bool collapse = true;               // identical concurrent GETs go upstream once
  bool operator==(const CacheConfig&) const = default;
};

struct Pool {
  std::string name;
  PoolKind kind = PoolKind::http;
  std::vector<Backend> backends;
  Health health;
  Eject eject;
  Timeouts timeouts;
  std::vector<std::pair<std::string, Secret>> set_headers;
  RemoveHeaders remove_headers;
  std::optional<RateLimit> rate_limit;
  // A backend that comes back up, out of ejection, or is added by a reload takes new
  // users at a share ramping linearly from 10% to 100% over this long; 0 = at once.
  uint64_t slow_start_ms = 30'000;
  // Backend host names are looked up again this often (IP literals never are).
  uint64_t resolve_interval_ms = 60'000;
  std::optional<CacheConfig> cache;  // absent: no cache, no collapsing
};

struct Limits {
  uint64_t max_connections = 10'000;
  uint64_t max_header_bytes = 16'384;
  uint64_t max_body_bytes = 10 * 1024 * 1024;
  uint64_t header_timeout_ms = 10'000;
  uint64_t idle_timeout_ms = 60'000;
  // From the end of a request head to the end of its body, whatever the pace of its
  // bytes (idle_timeout restarts on every byte, so a trickled body would never end).
  uint64_t body_timeout_ms = 60'000;
  // No progress writing to a client for this long (a reader that stopped, or reads a
  // byte at a time) ends its exchange and its connection.
  uint64_t send_timeout_ms = 60'000;
  // No byte either way through a WebSocket tunnel for this long closes it (1001): a
  // chain-sync client at the tip can be quiet for minutes, so far above idle_timeout.
  uint64_t tunnel_idle_timeout_ms = 3'600'000;
  // One connection buffer; a request head must fit in one (>= max_header_bytes). Left
  // out of the file, it is 16 KiB or max_header_bytes if that is larger.
  uint64_t buffer_bytes = 16 * 1024;
  // All connection buffers of the process together; at the cap, reading pauses.
  uint64_t max_buffer_memory = 256ull * 1024 * 1024;
  bool operator==(const Limits&) const = default;  // every field: a reload diff misses none
};

struct Admin {
  Address listen{"127.0.0.1", 9901, "127.0.0.1:9901"};
  std::string token_file;
  std::string token;  // resolved from token_file
};

// monitor: what /metrics watches beyond corral itself.
struct Monitor {
  // Filesystems whose free and total bytes are exported (corral_disk_*_bytes{path}):
  // resolved paths that existed at load. Default: the state file's directory, if any.
  std::vector<std::string> disk_paths;
};

// log: the event lines' format and level, and the access log (README "Logs").
enum class LogFormat : uint8_t { logfmt, json };
enum class LogLevel : uint8_t { debug, info, warn, error };
struct LogSettings {
  LogFormat format = LogFormat::logfmt;
  LogLevel level = LogLevel::info;
  bool access = false;
  std::string access_file;  // resolved against the config's directory; empty = stderr
  bool operator==(const LogSettings&) const = default;
};

struct Config {
  std::string source;    // file name, or "<embedded>"
  uint32_t workers = 1;  // 0 = one per core (resolved by the loader)
  Admin admin;
  std::vector<Listener> listeners;
  Sticky sticky;
  std::vector<Pool> pools;  // in file order
  Limits limits;
  // Where pins are saved on stop and reloaded on start, so users keep their backend across
  // a restart; empty = off. Resolved against the config file's directory.
  std::string state_file;
  // How long SIGTERM waits for in-flight requests before closing them.
  uint64_t stop_timeout_ms = 10'000;
  Monitor monitor;
  LogSettings log;

  const Pool* find_pool(const std::string& name) const;
};

}  // namespace config
