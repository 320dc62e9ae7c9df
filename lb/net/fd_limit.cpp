#include "lb/net/fd_limit.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "lb/net/upstream_pool.h"

namespace lb::net {

FdLimit raise_fd_limit() {
  FdLimit r;
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) {
    r.error = std::string("getrlimit: ") + std::strerror(errno);
    return r;
  }
  r.before = r.soft = lim.rlim_cur;
  r.hard = lim.rlim_max;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit want = lim;
    want.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0)
      r.soft = want.rlim_cur;
    else
      r.error = std::string("setrlimit: ") + std::strerror(errno);
  }
  return r;
}

uint64_t fds_needed(const config::Config& cfg, unsigned workers, uint64_t admin_connections) {
  const uint64_t clients = cfg.limits.max_connections;
  uint64_t backends = 0;
  for (const config::Pool& p : cfg.pools) backends += p.backends.size();
  const uint64_t idle =
      std::min<uint64_t>(backends * uint64_t{workers} * UpstreamPool::kMaxIdlePerBackend, clients);
  // Per worker: epoll, eventfd, the reserve, one listening socket per listener.
  const uint64_t per_worker = 3 + cfg.listeners.size();
  // stdio, the control loop's epoll/eventfd/signal pipe, the admin listener and reserve,
  // the state and config files.
  constexpr uint64_t kBase = 16;
  return clients * 2 + idle + backends + admin_connections + per_worker * workers + kBase;
}

FdReserve::FdReserve() { fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

FdReserve::~FdReserve() {
  if (fd_ >= 0) ::close(fd_);
}

bool FdReserve::release() {
  if (fd_ < 0) return false;
  ::close(fd_);
  fd_ = -1;
  return true;
}

bool FdReserve::restore() {
  if (fd_ < 0) fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  return fd_ >= 0;
}

}  // namespace lb::net
