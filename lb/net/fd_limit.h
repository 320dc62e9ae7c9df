#pragma once
// corral's own file descriptors (issue 9 item 8): the process limit (RLIMIT_NOFILE),
// what a config needs at most, and a reserve descriptor that lets an accept loop refuse
// a client cleanly when the limit is reached. Running out is corral's problem, never a
// backend's, so callers count and log it as such.
#include <cstdint>
#include <string>

#include "config/config.h"

namespace lb::net {

struct FdLimit {
  uint64_t soft = 0;    // in force now
  uint64_t before = 0;  // soft limit found at start
  uint64_t hard = 0;
  std::string error;  // getrlimit/setrlimit failed (limits are then as found)
};

// Raises the soft RLIMIT_NOFILE to the hard limit, as nginx's worker_rlimit_nofile and
// HAProxy do at start, and reports both. Call once, before threads start.
FdLimit raise_fd_limit();

// Descriptors `cfg` may need at once, an upper estimate: each client connection
// (limits.max_connections) and its upstream exchange, idle upstream connections (up to
// kMaxIdlePerBackend per backend per worker, but no more than max_connections), one probe
// per backend, the admin listener's connections, listening sockets and a fixed base for
// the loops, signals, logs and files.
uint64_t fds_needed(const config::Config& cfg, unsigned workers, uint64_t admin_connections);

// One descriptor held in reserve (on /dev/null). When accept() fails with EMFILE/ENFILE,
// release() frees it so one pending client can be accepted and refused, then restore()
// takes it back (the classic libev/libuv "emfile trick"). Not thread-safe: one per loop.
class FdReserve {
 public:
  FdReserve();
  ~FdReserve();
  FdReserve(const FdReserve&) = delete;
  FdReserve& operator=(const FdReserve&) = delete;
  // True when a descriptor was held and is now free for one accept.
  bool release();
  // Takes the reserve back; false while the process is still out of descriptors.
  bool restore();
  bool held() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace lb::net
