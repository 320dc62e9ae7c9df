#pragma once
// What every worker shares: the session table (sharded, locked per shard), the registry
// of names and counters, and the current runtime snapshot.
#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "lb/core/client_limiter.h"
#include "lb/core/session_table.h"
#include "lb/net/buffer_pool.h"
#include "lb/net/passive_events.h"
#include "lb/net/runtime.h"
#include "lb/net/store_shared.h"

namespace lb::net {

struct ReloadRecord {
  bool ok = false;
  uint64_t unix_ms = 0;
};

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
  // The shared pin store's queue, fleet counts and counters (idle without sticky.store).
  StoreShared store{0};
  // EMFILE/ENFILE: corral's own descriptor shortage (accept or upstream socket), never a
  // backend's failure (corral_fd_exhausted_total{side}).
  std::atomic<uint64_t> fd_exhausted{0};         // making an upstream socket
  std::atomic<uint64_t> fd_exhausted_accept{0};  // accepting a client
  std::atomic<uint64_t> reloads_ok{0};
  std::atomic<uint64_t> reloads_failed{0};
  // The last reload's result and wall time (null before the first), and the last failure's
  // message and time, kept until the next failure so an operator who reloads again still
  // sees what went wrong before. Control thread only (reload and admin run there).
  std::optional<ReloadRecord> last_reload;
  std::string last_reload_error;
  uint64_t last_reload_error_unix_ms = 0;
};

}  // namespace lb::net
