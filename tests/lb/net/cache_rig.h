#pragma once
// A worker whose pool "kupo" has a response cache (issue 16), over the in-memory streams:
// the test plays the clients and the backends (MemoryPeer) as in test_exchange.cpp.
#include <doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/loader.h"
#include "lb/core/cache_key.h"
#include "lb/core/session_key.h"
#include "lb/net/pool_cache.h"
#include "lb/net/socket_address.h"
#include "tests/lb/net/worker_rig.h"

namespace lb::net {

// The three-backend test config with `cache` set on its pool (the YAML key may not be
// read yet: it is set in code).
inline config::Config cache_config(const config::CacheConfig& cc, const char* kind = "kupo") {
  config::LoadResult r = config::load_string(three_backends_yaml(kind), "test.yaml");
  REQUIRE(r.errors.empty());
  config::Config cfg = *r.config;
  cfg.pools[0].cache = cc;
  return cfg;
}

struct CacheRig : WorkerRig {
  std::vector<std::shared_ptr<MemoryPeer>> ups;  // every upstream stream made, in order

  explicit CacheRig(const config::CacheConfig& cc = {}, uint64_t buffer_limit = UINT64_MAX)
      : CacheRig(cache_config(cc), buffer_limit) {}
  explicit CacheRig(const config::Config& cfg, uint64_t buffer_limit = UINT64_MAX)
      : WorkerRig(cfg, buffer_limit) {
    worker->set_stream_factory([this] {
      auto peer = std::make_shared<MemoryPeer>();
      ups.push_back(peer);
      return std::make_unique<MemoryStream>(worker->buffers(), peer);
    });
  }

  const RuntimePool& pool() { return state.runtime.load()->pools[0]; }
  PoolCache& cache() { return *pool().cache; }
  // A counter of the pool's cache, all shards.
  uint64_t count(std::atomic<uint64_t> CacheShard::*field) { return cache().sum(field); }
  uint64_t not_stored(NotStored why) {
    uint64_t n = 0;
    cache().for_each([&](const CacheShard& s) {
      n += s.not_stored[static_cast<size_t>(why)].load(std::memory_order_relaxed);
    });
    return n;
  }
  // The backend ("k1".."k3") an upstream stream connected to.
  static std::string backend_of(const MemoryPeer& up) {
    return "k" + std::to_string(port_of(up.connected_to) - 1000);
  }
  // The user's (X-Session-Key) key in the pool's session table.
  SessionKey pin_key(const std::string& user) {
    return pool_session_key(make_session_key(KeySource::header, user), pool().salt);
  }
  // The user's pin, read without touching it.
  std::optional<Pin> peek(const std::string& user) { return state.sessions.peek(pin_key(user)); }
  // The cache key of a GET of `path` with no Accept fields, and its canonical string.
  CacheKey key_of(const std::string& path, std::string& canonical) {
    canonical_request(canonical, path, {}, {}, {});
    return cache_key(pool().salt, canonical);
  }
};

// A GET (or another method) of `path`, keyed for `user` unless empty, with extra fields.
inline std::string request(const std::string& path, const std::string& user = "",
                           const std::string& extra = "", const char* method = "GET") {
  std::string r = std::string(method) + " " + path + " HTTP/1.1\r\nHost: x\r\n";
  if (!user.empty()) r += "X-Session-Key: " + user + "\r\n";
  return r + extra + "\r\n";
}

// /datums/<64 hex> for a small number.
inline std::string datum_path(int n) {
  char hex[65];
  snprintf(hex, sizeof hex, "%064x", n);
  return std::string("/datums/") + hex;
}

}  // namespace lb::net
