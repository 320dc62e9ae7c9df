#include "lb/net/listen_probe.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lb/net/socket_address.h"

namespace lb::net {

std::string endpoint_text(const std::string& host, uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos && host.front() != '[';
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string probe_listen_address(const std::string& host, uint16_t port) {
  if (port == 0) return {};
  sockaddr_storage addr;
  if (!ip_sockaddr(host, port, addr)) return "listen address must be an IP literal: " + host;
  int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::string("socket: ") + std::strerror(errno);
  // SO_REUSEADDR as corral's own sockets have it, so connections of an earlier corral in
  // TIME_WAIT do not count; a listening socket still does (Linux refuses that bind).
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (addr.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  std::string err;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sockaddr_len(addr)) != 0)
    err = errno == EADDRINUSE ? kAddressInUse : std::string("bind: ") + std::strerror(errno);
  ::close(fd);
  return err;
}

}  // namespace lb::net
