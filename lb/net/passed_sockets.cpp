#include "lb/net/passed_sockets.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "lb/net/socket_address.h"

namespace lb::net {

PassedSockets::~PassedSockets() {
  for (PassedSocket& s : sockets_) ::close(s.fd);
}

void PassedSockets::add(int fd, std::string name) {
  PassedSocket s;
  s.fd = fd;
  s.name = std::move(name);
  socklen_t len = sizeof s.addr;
  std::memset(&s.addr, 0, sizeof s.addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&s.addr), &len);
  // Workers accept with accept4 in a poll loop: a blocking socket would stall a worker
  // when another one took the connection first.
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  sockets_.push_back(std::move(s));
}

bool PassedSockets::take_from_environment(std::string& error) {
  char** names = nullptr;
  // unset_environment=1: LISTEN_* are meant for this process only.
  int n = sd_listen_fds_with_names(1, &names);
  if (n < 0) {
    error = std::string("LISTEN_FDS: ") + std::strerror(-n);
    return false;
  }
  bool ok = true;
  for (int i = 0; i < n; ++i) {
    const int fd = SD_LISTEN_FDS_START + i;
    std::string name = names && names[i] ? names[i] : "unknown";
    if (ok && sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
      error = "socket passed by systemd (fd " + std::to_string(fd) + ", name \"" + name +
              "\") is not a listening TCP socket";
      ok = false;
    }
    if (ok)
      add(fd, std::move(name));
    else
      ::close(fd);
  }
  if (names)
    for (int i = 0; i < n; ++i) free(names[i]);
  free(names);
  return ok;
}

namespace {
// Whether `bound` is host:port; port 0 never matches (it names no address of its own).
bool same_address(const sockaddr_storage& bound, const std::string& host, uint16_t port) {
  sockaddr_storage want;
  if (port == 0 || !ip_sockaddr(host, port, want) || want.ss_family != bound.ss_family)
    return false;
  if (port_of(bound) != port) return false;
  if (want.ss_family == AF_INET)
    return reinterpret_cast<const sockaddr_in&>(want).sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in&>(bound).sin_addr.s_addr;
  return std::memcmp(&reinterpret_cast<const sockaddr_in6&>(want).sin6_addr,
                     &reinterpret_cast<const sockaddr_in6&>(bound).sin6_addr,
                     sizeof(in6_addr)) == 0;
}
}  // namespace

PassedSocket* PassedSockets::find(const std::string& listener, const std::string& host,
                                  uint16_t port, const std::vector<std::string>& names) {
  for (PassedSocket& s : sockets_)
    if (s.name == listener) return &s;
  for (PassedSocket& s : sockets_) {
    const bool named_for_another = std::find(names.begin(), names.end(), s.name) != names.end();
    if (!named_for_another && same_address(s.addr, host, port)) return &s;
  }
  return nullptr;
}

bool PassedSockets::duplicate(const PassedSocket& s, size_t count, std::vector<int>& fds,
                              std::string& error) {
  for (size_t i = 0; i < count; ++i) {
    int fd = fcntl(s.fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
      error = std::string("dup of the socket passed by systemd: ") + std::strerror(errno);
      for (int f : fds) ::close(f);
      fds.clear();
      return false;
    }
    fds.push_back(fd);
  }
  return true;
}

PassedSocket* PassedSockets::unmatched(const std::vector<ListenerAddress>& listeners) {
  std::vector<std::string> names;
  for (const ListenerAddress& l : listeners) names.push_back(l.name);
  std::vector<const PassedSocket*> taken;
  for (const ListenerAddress& l : listeners)
    if (const PassedSocket* s = find(l.name, l.host, l.port, names)) taken.push_back(s);
  for (PassedSocket& s : sockets_)
    if (std::find(taken.begin(), taken.end(), &s) == taken.end()) return &s;
  return nullptr;
}

std::string PassedSockets::unmatched_error(const PassedSocket& s) {
  return "socket passed by systemd (fd " + std::to_string(s.fd) + ", name " + s.name + ", " +
         format_endpoint(s.addr) +
         ") matches no listener: name it after a listener (FileDescriptorName=) or bind it "
         "to a listener's address";
}

bool PassedSockets::bound_to(const PassedSocket& s, const std::string& host, uint16_t port) {
  return same_address(s.addr, host, port);
}

}  // namespace lb::net
