// A backend whose name gives several addresses: the exchange tries each in turn on a
// connect failure before it fails over or answers 502, and the address that answered is
// where the next connection starts. Over the in-memory stream, no sockets.
#include <doctest.h>
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "lb/net/client_conn.h"
#include "lb/net/memory_stream.h"
#include "lb/net/socket_address.h"
#include "tests/lb/net/worker_rig.h"

namespace {

using namespace lb::net;

const char* kOne = R"(
listeners: [{name: public, listen: 127.0.0.1:0, routes: [{prefix: /, pool: p}]}]
sticky: {keys: [{from: header, name: X-Session-Key}], balance_factor: 0}
pools:
  p:
    kind: http
    slow_start: 0s
    backends: [{name: only, address: 127.0.0.1:1001}]
)";

const char* kTwo = R"(
listeners: [{name: public, listen: 127.0.0.1:0, routes: [{prefix: /, pool: p}]}]
sticky: {keys: [{from: header, name: X-Session-Key}], balance_factor: 0}
pools:
  p:
    kind: http
    slow_start: 0s
    backends: [{name: a, address: 127.0.0.1:1001}, {name: b, address: 127.0.0.1:1002}]
)";

const char* kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

sockaddr_storage ep(const char* ip, uint16_t port) {
  sockaddr_storage a{};
  REQUIRE(ip_sockaddr(ip, port, a));
  return a;
}

struct Rig : WorkerRig {
  explicit Rig(const char* yaml) : WorkerRig(yaml) { memory_upstreams(); }
  const RuntimeBackend& backend(size_t i) { return state.runtime.load()->pools[0].backends[i]; }
};

std::string get(const std::string& user) {
  return "GET / HTTP/1.1\r\nHost: x\r\nX-Session-Key: " + user + "\r\n\r\n";
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

TEST_CASE("exchange addresses: a refused address moves on to the next, silently") {
  Rig rig(kOne);
  const RuntimeBackend& b = rig.backend(0);
  b.addrs->publish({ep("::1", 1001), ep("127.0.0.1", 1001)});
  auto c = rig.client();
  c->send(get("ann"));
  REQUIRE(rig.peers.size() == 1);
  CHECK(format_endpoint(rig.peers[0]->connected_to) == "[::1]:1001");
  rig.peers[0]->answer_connect(UV_ECONNREFUSED);
  REQUIRE(rig.peers.size() == 2);
  CHECK(format_endpoint(rig.peers[1]->connected_to) == "127.0.0.1:1001");
  rig.peers[1]->answer_connect(0);
  CHECK(starts_with(rig.peers[1]->take(), "GET / HTTP/1.1"));
  rig.peers[1]->send(kOk);
  CHECK(starts_with(c->take(), "HTTP/1.1 200 OK"));
  // One address failing is not the backend failing: no counter, no health event.
  CHECK(b.stats->sum(&BackendShard::connect_failures) == 0);
  std::vector<PassiveEvent> events;
  rig.state.passive.drain(events);
  CHECK(events.empty());
  CHECK(b.addrs->preferred() == 1);

  // A second connection (the first is busy) starts at the address that answered.
  auto c2 = rig.client();
  auto c3 = rig.client();
  c2->send(get("bob"));
  c3->send(get("cy"));
  REQUIRE(rig.peers.size() == 3);  // bob reused the pooled one; cy needs a new one
  CHECK(format_endpoint(rig.peers[2]->connected_to) == "127.0.0.1:1001");
}

TEST_CASE("exchange addresses: every address refused is one connect failure, then a 502") {
  Rig rig(kOne);
  const RuntimeBackend& b = rig.backend(0);
  b.addrs->publish({ep("::1", 1001), ep("127.0.0.1", 1001), ep("127.0.0.2", 1001)});
  auto c = rig.client();
  c->send(get("dan"));
  for (size_t i = 0; i < 3; ++i) {
    REQUIRE(rig.peers.size() == i + 1);
    rig.peers[i]->answer_connect(UV_ECONNREFUSED);
  }
  CHECK(rig.peers.size() == 3);  // each address once, no more
  CHECK(starts_with(c->take(), "HTTP/1.1 502"));
  CHECK(b.stats->sum(&BackendShard::connect_failures) == 1);
  std::vector<PassiveEvent> events;
  rig.state.passive.drain(events);
  CHECK(events.size() == 1);
}

TEST_CASE("exchange addresses: after the last address, the request fails over") {
  Rig rig(kTwo);
  // Both backends get two addresses; whichever one eve is placed on refuses on both.
  rig.backend(0).addrs->publish({ep("::1", 1001), ep("127.0.0.1", 1001)});
  rig.backend(1).addrs->publish({ep("::1", 1002), ep("127.0.0.1", 1002)});
  auto c = rig.client();
  c->send(get("eve"));
  REQUIRE(rig.peers.size() == 1);
  uint16_t port = port_of(rig.peers[0]->connected_to);
  rig.peers[0]->answer_connect(UV_ECONNREFUSED);
  REQUIRE(rig.peers.size() == 2);
  CHECK(port_of(rig.peers[1]->connected_to) == port);  // same backend, next address
  rig.peers[1]->answer_connect(UV_ECONNREFUSED);
  REQUIRE(rig.peers.size() == 3);
  CHECK(port_of(rig.peers[2]->connected_to) != port);  // now the other backend
  CHECK(format_endpoint(rig.peers[2]->connected_to).starts_with("[::1]"));
  rig.peers[2]->answer_connect(0);
  rig.peers[2]->send(kOk);
  CHECK(starts_with(c->take(), "HTTP/1.1 200 OK"));
  const RuntimeBackend& failed = rig.backend(port == 1001 ? 0 : 1);
  const RuntimeBackend& served = rig.backend(port == 1001 ? 1 : 0);
  CHECK(failed.stats->sum(&BackendShard::connect_failures) == 1);
  CHECK(served.stats->sum(&BackendShard::connect_failures) == 0);
}
