#pragma once
// The running configuration as the data path uses it: an immutable snapshot built from a
// config::Config on the control thread (addresses resolved, selectors built, routes
// compiled) and published to workers as std::shared_ptr<const Runtime> (DESIGN.md
// "Threads"). Live counters are not in the snapshot but in the Registry, by name, so
// they survive reloads.
#include <sys/socket.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "lb/core/quota_guard.h"
#include "lb/core/router.h"
#include "lb/core/selector.h"
#include "lb/core/session_table.h"
#include "lb/http/head_writer.h"
#include "lb/net/backend_stats.h"
#include "lb/net/pool_cache.h"
#include "lb/net/resolver.h"
#include "lb/net/tls_context.h"

namespace lb::net {

struct RuntimeBackend {
  std::string name;
  std::string address;  // as configured
  BackendRef ref = 0;   // stable identity in the session table
  // Every address of the backend, re-resolved on the control thread (resolver.h); shared
  // with the next snapshot when a reload keeps the address.
  std::shared_ptr<AddressBook> addrs;
  // TLS to the backend: the client context (its CA store; null if it could not be made,
  // and then the backend is unreachable rather than spoken to in clear text), and the
  // name sent as SNI and checked against the certificate.
  bool tls = false;
  TlsContext tls_ctx;
  std::string tls_name;
  uint32_t weight = 1;
  std::shared_ptr<BackendStats> stats;

  bool resolved() const { return addrs->resolved(); }
  // Something to connect to, and the means to speak to it.
  bool reachable() const { return resolved() && (!tls || tls_ctx); }
};

struct RuntimePool {
  std::string name;
  uint64_t salt = 0;  // folds the pool into session keys
  config::PoolKind kind = config::PoolKind::http;
  std::vector<RuntimeBackend> backends;
  std::vector<uint32_t> weights;  // per backend, for bounded loads
  std::unique_ptr<const Selector> selector;
  config::Timeouts timeouts;
  uint64_t slow_start_ms = 0;
  uint64_t resolve_interval_ms = 60'000;
  std::vector<http::InjectedHeader> inject;
  std::vector<std::string> remove_request;   // remove_headers.request
  std::vector<std::string> remove_response;  // remove_headers.response
  // rate_limit: the pool's quota guard, shared by every worker and kept across reloads by
  // the Registry; null when the pool has none.
  std::shared_ptr<QuotaGuard> quota;
  // cache: the pool's response cache, shared by every worker and kept across reloads by the
  // Registry; null when the pool has none (then nothing is cached or collapsed).
  std::shared_ptr<PoolCache> cache;
};

struct RuntimeListener {
  std::string name;
  config::Address listen;
  // TLS listeners: the server context new connections use (null for plain ones). A
  // reload that keeps the certificate and key keeps the context, and with it the session
  // cache and ticket keys, so clients still resume.
  bool tls = false;
  TlsContext tls_context;
  std::vector<RouteSpec> routes;
  // Read a PROXY protocol header before anything else (new connections; a reload that
  // changes it leaves open ones as they are).
  bool proxy_protocol = false;
  std::shared_ptr<ListenerStats> stats;
  // Per route (same order): requests refused by client_rate_limit; kept across reloads.
  std::vector<std::shared_ptr<std::atomic<uint64_t>>> limited;
};

// sticky.store resolved on the control thread (a worker never calls getaddrinfo): the
// numeric address and the password's value. The other settings are in config.sticky.store.
struct RuntimeStore {
  std::string ip;  // numeric IPv4 or IPv6
  uint16_t port = 0;
  std::string password;  // empty: no AUTH
  bool operator==(const RuntimeStore&) const = default;
};

struct Runtime {
  config::Config config;
  std::optional<RuntimeStore> store;  // sticky.store configured
  std::vector<RuntimePool> pools;
  std::vector<RuntimeListener> listeners;
};

// Interns names to stable BackendRefs and live counters. Thread-safe; never forgets a
// name (refs stay valid in the session table across reloads).
class Registry {
 public:
  struct Entry {
    BackendRef ref;
    std::shared_ptr<BackendStats> stats;
  };
  // nullopt-like: ref == SessionTable::kMaxBackends when the registry is full.
  Entry backend(const std::string& pool, const std::string& name);
  std::shared_ptr<ListenerStats> listener(const std::string& name);
  // The client_rate_limit refusal counter of one route (listener name and prefix).
  std::shared_ptr<std::atomic<uint64_t>> route_limited(const std::string& listener,
                                                       const std::string& prefix);

  // The ref of an already interned backend, without interning it: the state file must
  // not give refs to backends that are no longer configured.
  std::optional<BackendRef> find(const std::string& pool, const std::string& name) const;
  // "pool/backend" for a ref handed out by backend(), or "" if unknown.
  std::string name_of(BackendRef ref) const;
  // Every backend ever interned for `pool`, configured now or not: pool-level counters
  // summed over them never go down when a reload removes a backend. An empty pool: every
  // backend of every pool.
  void for_each_in_pool(const std::string& pool,
                        const std::function<void(const BackendStats&)>& fn) const;
  // The same backends' refs (per-ref counts kept elsewhere, e.g. the session table's
  // expiries, summed per pool).
  void for_each_ref_in_pool(const std::string& pool,
                            const std::function<void(BackendRef)>& fn) const;

  // The quota guard of `pool`, made on first use and given `limits` (a reload changes the
  // limits of the same guard: its daily count and cool-downs go on).
  std::shared_ptr<QuotaGuard> quota(const std::string& pool, const QuotaLimits& limits);
  // The guard of `pool` if one was ever made (the state file restores counts into it).
  std::shared_ptr<QuotaGuard> find_quota(const std::string& pool) const;
  // Every guard ever made, by pool name.
  void for_each_quota(const std::function<void(const std::string&, QuotaGuard&)>& fn) const;

  // The response cache of `pool`, made on first use; a later call reconfigures it
  // (PoolCache::reconfigure: a new max_bytes applies at once, new rules purge, logged).
  std::shared_ptr<PoolCache> cache(const std::string& pool, const config::CacheConfig& cfg,
                                   bool kupo);
  // Forgets the caches of pools not in `keep` (their memory goes with the last reference:
  // requests under way finish on it).
  void retain_caches(const std::vector<std::string>& keep);

 private:
  mutable std::mutex mu_;
  std::map<std::string, Entry> backends_;
  std::map<std::string, std::shared_ptr<ListenerStats>> listeners_;
  std::map<std::string, std::shared_ptr<std::atomic<uint64_t>>> route_limited_;
  std::map<std::string, std::shared_ptr<QuotaGuard>> quotas_;
  std::map<std::string, std::shared_ptr<PoolCache>> caches_;
};

// Builds a snapshot. A backend whose pool and address are the same in `prev` (a reload)
// keeps its AddressBook; any other host name is resolved here, every record (blocking,
// off the data path; the Resolver re-resolves it later without blocking). A backend that
// does not resolve stays in the pool, unreachable, with the reason logged.
// prev: the running snapshot, whose TLS contexts are kept where the pair did not change.
std::shared_ptr<const Runtime> build_runtime(const config::Config& cfg, Registry& registry,
                                             const Runtime* prev = nullptr);

}  // namespace lb::net
