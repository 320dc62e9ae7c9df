#pragma once
// Socket activation (sd_listen_fds(3)): listening sockets systemd passes (LISTEN_FDS,
// LISTEN_PID, LISTEN_FDNAMES) are used as they are, so the socket outlives any one corral
// process and a binary upgrade loses no connection. A passed socket belongs to the
// listener whose name is its fd name (FileDescriptorName=), or else to the listener whose
// configured address is the socket's bound address. Each worker gets its own duplicate.
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

namespace lb::net {

// A configured listener as passed-socket matching sees it.
struct ListenerAddress {
  std::string name;
  std::string host;
  uint16_t port = 0;
};

struct PassedSocket {
  int fd = -1;
  std::string name;       // LISTEN_FDNAMES entry; "unknown" when none was given
  sockaddr_storage addr;  // what the socket is bound to (getsockname)
  bool used = false;      // a listener took it at start
};

class PassedSockets {
 public:
  PassedSockets() = default;
  ~PassedSockets();
  PassedSockets(const PassedSockets&) = delete;
  PassedSockets& operator=(const PassedSockets&) = delete;

  // Takes the sockets systemd passed to this process, and removes LISTEN_* from the
  // environment so no child inherits them. Each is made non-blocking and close-on-exec.
  // False with error when a passed descriptor is not a listening TCP socket.
  bool take_from_environment(std::string& error);
  // Adopts fd as if passed (tests).
  void add(int fd, std::string name);

  // The passed socket for a listener: the one named `listener`, else one bound to
  // host:port whose name is none of `names` (the configured listener names); nullptr when
  // none. Port 0 matches by name only.
  PassedSocket* find(const std::string& listener, const std::string& host, uint16_t port,
                     const std::vector<std::string>& names);
  // `count` close-on-exec duplicates of s into fds; false with error on failure (none left
  // open then).
  static bool duplicate(const PassedSocket& s, size_t count, std::vector<int>& fds,
                        std::string& error);

  // The first passed socket that none of `listeners` takes (by find's rules); nullptr when
  // each has its listener. A socket left over would queue connections nobody accepts.
  PassedSocket* unmatched(const std::vector<ListenerAddress>& listeners);
  // Why s cannot be left over: the error start-up and reload report for it.
  static std::string unmatched_error(const PassedSocket& s);
  // Whether s is bound to host:port (an IP literal; port 0 never matches).
  static bool bound_to(const PassedSocket& s, const std::string& host, uint16_t port);

  const std::vector<PassedSocket>& sockets() const { return sockets_; }
  bool empty() const { return sockets_.empty(); }

 private:
  std::vector<PassedSocket> sockets_;  // the originals stay open for later reloads
};

}  // namespace lb::net
