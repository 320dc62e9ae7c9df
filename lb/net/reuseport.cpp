// bind_reuseport (worker.h): one listening socket per worker on the same address, so the
// kernel spreads new connections over the workers (SO_REUSEPORT).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lb/net/socket_address.h"
#include "lb/net/worker.h"

namespace lb::net {

bool bind_reuseport(const std::string& host, uint16_t port, int backlog, size_t count,
                    std::vector<int>& fds, uint16_t& bound_port, std::string& error) {
  sockaddr_storage addr;
  if (!ip_sockaddr(host, port, addr)) {
    error = "listen address must be an IP literal: " + host;
    return false;
  }
  bound_port = port;
  // A failure part-way closes the sockets this call already bound: a reload that fails
  // must not leave listening sockets nobody accepts on (nor leak their descriptors).
  const size_t first = fds.size();
  auto fail = [&](std::string why) {
    error = std::move(why);
    for (size_t k = first; k < fds.size(); ++k) ::close(fds[k]);
    fds.resize(first);
    return false;
  };
  for (size_t i = 0; i < count; ++i) {
    int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0) return fail(std::string("socket: ") + strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (addr.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    // Every worker's socket binds the port the first one got (port 0 = ephemeral).
    set_port(addr, bound_port);
    socklen_t len = sockaddr_len(addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, backlog) != 0) {
      std::string why = "bind " + host + ":" + std::to_string(bound_port) + ": " + strerror(errno);
      ::close(fd);
      return fail(std::move(why));
    }
    if (i == 0) {
      sockaddr_storage got{};
      socklen_t glen = sizeof got;
      getsockname(fd, reinterpret_cast<sockaddr*>(&got), &glen);
      bound_port = port_of(got);
    }
    fds.push_back(fd);
  }
  return true;
}

}  // namespace lb::net
