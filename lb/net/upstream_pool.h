#pragma once
// A worker's idle keep-alive connections per backend. LIFO, so the warmest connection is
// reused first and the cold ones age out through their idle timer.
#include <cstdint>
#include <vector>

#include "lb/core/session_table.h"

namespace lb::net {

class UpstreamConn;

class UpstreamPool {
 public:
  static constexpr size_t kMaxIdlePerBackend = 64;

  // An idle connection to `ref`, or nullptr.
  UpstreamConn* take(BackendRef ref);
  // Parks an idle connection; false when the backend already has enough (close it).
  bool put(UpstreamConn* conn);
  // Forgets a connection that closed while idle.
  void remove(UpstreamConn* conn);
  // Closes every idle connection (stop, or a backend removed).
  void close_all();
  size_t idle_count() const;

 private:
  std::vector<std::vector<UpstreamConn*>> idle_;  // by BackendRef
};

}  // namespace lb::net
