#pragma once
// The running configuration as the data path uses it: an immutable snapshot built from a
// config::Config on the control thread (addresses resolved, selectors built, routes
// compiled) and published to workers as std::shared_ptr<const Runtime> (DESIGN.md
// "Threads"). Live counters are not in the snapshot but in the Registry, by name, so
// they survive reloads.
#include <sys/socket.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "lb/core/router.h"
#include "lb/core/selector.h"
#include "lb/core/session_table.h"
#include "lb/http/head_writer.h"
#include "lb/net/backend_stats.h"
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
};

struct RuntimeListener {
  std::string name;
  config::Address listen;
  std::vector<RouteSpec> routes;
  std::shared_ptr<ListenerStats> stats;
};

struct Runtime {
  config::Config config;
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

  // The ref of an already interned backend, without interning it: the state file must
  // not give refs to backends that are no longer configured.
  std::optional<BackendRef> find(const std::string& pool, const std::string& name) const;
  // "pool/backend" for a ref handed out by backend(), or "" if unknown.
  std::string name_of(BackendRef ref) const;
  // Every backend ever interned for `pool`, configured now or not: pool-level counters
  // summed over them never go down when a reload removes a backend.
  void for_each_in_pool(const std::string& pool,
                        const std::function<void(const BackendStats&)>& fn) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, Entry> backends_;
  std::map<std::string, std::shared_ptr<ListenerStats>> listeners_;
};

// Builds a snapshot. A backend whose pool and address are the same in `prev` (a reload)
// keeps its AddressBook; any other host name is resolved here, every record (blocking,
// off the data path; the Resolver re-resolves it later without blocking). A backend that
// does not resolve stays in the pool, unreachable, with the reason logged.
std::shared_ptr<const Runtime> build_runtime(const config::Config& cfg, Registry& registry,
                                             const Runtime* prev = nullptr);

}  // namespace lb::net
