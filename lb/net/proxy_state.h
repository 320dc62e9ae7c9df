#pragma once
// What every worker shares: the session table (sharded, locked per shard), the registry
// of names and counters, and the current runtime snapshot.
#include <atomic>
#include <memory>
#include <string>

#include "lb/core/client_limiter.h"
#include "lb/core/session_table.h"
#include "lb/net/buffer_pool.h"
#include "lb/net/passive_events.h"
#include "lb/net/runtime.h"

namespace lb::net {

struct ProxyState {
  ProxyState(size_t max_sessions, uint64_t ttl_ms) : sessions(max_sessions, ttl_ms) {}

  SessionTable sessions;
  // client_rate_limit buckets of every route, shared by the workers; outlives reloads so
  // a SIGHUP gives nobody a fresh burst.
  ClientLimiter client_limiter;
  Registry registry;
  std::atomic<std::shared_ptr<const Runtime>> runtime;
  std::atomic<int64_t> connections{0};  // open client connections, all listeners
  BufferBudget buffers;                 // every connection buffer of the process
  PassiveEvents passive;
  // EMFILE/ENFILE: corral's own descriptor shortage (accept or upstream socket), never a
  // backend's failure (corral_fd_exhausted_total{side}).
  std::atomic<uint64_t> fd_exhausted{0};         // making an upstream socket
  std::atomic<uint64_t> fd_exhausted_accept{0};  // accepting a client
  std::atomic<uint64_t> reloads_ok{0};
  std::atomic<uint64_t> reloads_failed{0};
  std::string last_reload_error;  // control thread only (reload and admin run there)
};

}  // namespace lb::net
