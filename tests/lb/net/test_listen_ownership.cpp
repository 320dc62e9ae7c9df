// Port ownership, socket activation and readiness pieces (issue 14): the probe bind
// (listen_probe.h), passed-socket matching (passed_sockets.h) and the sd_notify text.
#include <dirent.h>
#include <doctest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lb/net/listen_probe.h"
#include "lb/net/passed_sockets.h"
#include "lb/net/readiness.h"
#include "lb/net/sd_notify.h"
#include "lb/net/socket_address.h"
#include "lb/net/worker.h"

using namespace lb::net;

namespace {

// A socket bound to 127.0.0.1 on an ephemeral port (listening when asked): fd and port.
int bound_socket(uint16_t& port, bool listening, bool reuseport = false) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_storage a;
  ip_sockaddr("127.0.0.1", 0, a);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sockaddr_len(a)) == 0);
  if (listening) REQUIRE(::listen(fd, 4) == 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = port_of(a);
  return fd;
}

// Descriptors this process has open now (/proc/self/fd, less the one reading it).
int open_fds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  REQUIRE(d != nullptr);
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n - 1;
}

}  // namespace

TEST_CASE("bind_reuseport closes the sockets it bound when a later one fails") {
  // The third socket fails for want of a descriptor (EMFILE): descriptors are handed out
  // lowest first, so with the limit two above the lowest free one, two sockets open.
  const int lowest = ::dup(0);
  REQUIRE(lowest >= 0);
  ::close(lowest);
  rlimit saved{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0);
  const int before = open_fds();
  std::vector<int> fds = {-7};  // what the caller had stays
  uint16_t got = 0;
  std::string err;
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(lowest + 2);
  REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
  const bool ok = bind_reuseport("127.0.0.1", 0, 16, 4, fds, got, err);
  REQUIRE(setrlimit(RLIMIT_NOFILE, &saved) == 0);
  CHECK_FALSE(ok);
  CHECK(err.find("socket:") != std::string::npos);
  CHECK(fds == std::vector<int>{-7});
  CHECK(open_fds() == before);
}

TEST_CASE("probe_listen_address refuses an address another socket listens on") {
  uint16_t port = 0;
  int fd = bound_socket(port, true);
  CHECK(probe_listen_address("127.0.0.1", port) == "address already in use by another process");
  ::close(fd);
  CHECK(probe_listen_address("127.0.0.1", port).empty());  // free once closed
  CHECK(probe_listen_address("127.0.0.1", 0).empty());     // ephemeral: never shared
  CHECK(probe_listen_address("localhost", 80).find("IP literal") != std::string::npos);
}

TEST_CASE("probe_listen_address sees SO_REUSEPORT sockets, which a reuseport bind would share") {
  uint16_t port = 0;
  int fd = bound_socket(port, true, true);
  std::vector<int> fds;
  uint16_t got = 0;
  std::string err;
  // What the probe prevents: corral's own reuseport bind succeeds next to the other socket.
  REQUIRE(bind_reuseport("127.0.0.1", port, 16, 1, fds, got, err));
  CHECK(probe_listen_address("127.0.0.1", port) == "address already in use by another process");
  for (int f : fds) ::close(f);
  ::close(fd);
}

TEST_CASE("endpoint_text brackets IPv6") {
  CHECK(endpoint_text("127.0.0.1", 80) == "127.0.0.1:80");
  CHECK(endpoint_text("::1", 8080) == "[::1]:8080");
}

TEST_CASE("passed sockets match by name first, else by address when unnamed for another") {
  uint16_t p1 = 0, p2 = 0;
  int a = bound_socket(p1, true), b = bound_socket(p2, true);
  PassedSockets ps;
  ps.add(a, "web");
  ps.add(b, "unknown");
  const std::vector<std::string> names = {"web", "api"};
  PassedSocket* s = ps.find("web", "127.0.0.1", 0, names);
  REQUIRE(s != nullptr);
  CHECK(s->fd == a);
  // "api" has no socket named after it; b is bound to its address.
  s = ps.find("api", "127.0.0.1", p2, names);
  REQUIRE(s != nullptr);
  CHECK(s->fd == b);
  // a is named for listener "web": not taken by address for another listener.
  CHECK(ps.find("api", "127.0.0.1", p1, names) == nullptr);
  CHECK(ps.find("api", "127.0.0.1", 0, names) == nullptr);   // port 0: by name only
  CHECK(ps.find("api", "127.0.0.2", p2, names) == nullptr);  // another address
  std::vector<int> fds;
  std::string err;
  REQUIRE(PassedSockets::duplicate(*ps.find("web", "", 0, names), 3, fds, err));
  CHECK(fds.size() == 3);
  for (int f : fds) {
    CHECK(f != a);
    sockaddr_storage got;
    socklen_t len = sizeof got;
    getsockname(f, reinterpret_cast<sockaddr*>(&got), &len);
    CHECK(port_of(got) == p1);
    ::close(f);
  }
}

TEST_CASE("a passed socket no listener takes is found, whether dropped or renamed") {
  uint16_t p1 = 0, p2 = 0;
  int a = bound_socket(p1, true), b = bound_socket(p2, true);
  PassedSockets ps;
  ps.add(a, "public");
  ps.add(b, "unknown");
  // Both taken: "public" by name, b by its address.
  CHECK(ps.unmatched({{"public", "127.0.0.1", 0}, {"api", "127.0.0.1", p2}}) == nullptr);
  // "public" renamed to "web": a is left over (its port is not web's address).
  PassedSocket* left = ps.unmatched({{"web", "127.0.0.1", 0}, {"api", "127.0.0.1", p2}});
  REQUIRE(left != nullptr);
  CHECK(left->fd == a);
  CHECK(PassedSockets::unmatched_error(*left) ==
        "socket passed by systemd (fd " + std::to_string(a) +
            ", name public, 127.0.0.1:" + std::to_string(p1) +
            ") matches no listener: name it after a listener (FileDescriptorName=) or bind "
            "it to a listener's address");
  // The listener on b's address dropped: b is left over.
  left = ps.unmatched({{"public", "127.0.0.1", 0}});
  REQUIRE(left != nullptr);
  CHECK(left->fd == b);
  CHECK(PassedSockets::bound_to(ps.sockets()[0], "127.0.0.1", p1));
  CHECK_FALSE(PassedSockets::bound_to(ps.sockets()[0], "127.0.0.1", p2));
  CHECK_FALSE(PassedSockets::bound_to(ps.sockets()[0], "127.0.0.1", 0));
}

TEST_CASE("sd_notify messages: one assignment per line, status on one line") {
  CHECK(notify_message("READY=1", "") == "READY=1");
  CHECK(notify_message("READY=1", "reload failed:\nline 2") ==
        "READY=1\nSTATUS=reload failed: line 2");
}

TEST_CASE("readiness waits at most the first probe's start spread plus its timeout") {
  CHECK(Readiness::bound_for(2000, 1000) == 400 + 1000 + 250);
  CHECK(Readiness::bound_for(10000, 1500) > 1500);
  // A pool probed every 10 minutes does not hold READY=1 past TimeoutStartSec=.
  CHECK(Readiness::bound_for(600000, 5000) == Readiness::kMaxWaitMs);
  CHECK(Readiness::kMaxWaitMs <= 30000);
}
