// Issue 13, users move forward, never back, on the exchange path (in-memory streams, no
// sockets): an answer older than the user's last checkpoint is discarded and the request
// re-sent to a backend at or past it; evicted backends lose their pinned users.
#include <doctest.h>
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "lb/core/session_key.h"
#include "lb/net/client_conn.h"
#include "lb/net/memory_stream.h"
#include "lb/net/socket_address.h"
#include "tests/lb/net/worker_rig.h"

namespace {

using namespace lb::net;
using lb::MoveReason;

const std::string kConfigText = three_backends_yaml("http");
const char* kConfig = kConfigText.c_str();

// A 200 whose body names its checkpoint, so the test sees which answer arrived.
std::string answer(uint64_t slot) {
  std::string body = "cp" + std::to_string(slot);
  return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nX-Most-Recent-Checkpoint: " + std::to_string(slot) + "\r\n\r\n" + body;
}

std::string backend_of(const MemoryPeer& p) {
  return "k" + std::to_string(port_of(p.connected_to) - 1000);
}

struct Rig : WorkerRig {
  Rig() : WorkerRig(kConfig) { memory_upstreams(); }
  uint64_t pool_sum(std::atomic<uint64_t> BackendShard::*field) {
    uint64_t n = 0;
    state.registry.for_each_in_pool("kupo", [&](const BackendStats& s) { n += s.sum(field); });
    return n;
  }
  // Makes the user's first request, answered by its placed backend at `slot`: the user is
  // pinned there and has seen `slot`. Returns that backend's upstream peer.
  std::shared_ptr<MemoryPeer> first(MemoryPeer& c, const std::string& user, uint64_t slot) {
    size_t made = peers.size();
    c.send(request(user));
    REQUIRE(peers.size() == made + 1);
    auto up = peers.back();
    up->answer_connect(0);
    CHECK(up->take().rfind("GET /matches", 0) == 0);
    up->send(answer(slot));
    CHECK(c.take().find("cp" + std::to_string(slot)) != std::string::npos);
    return up;
  }
  static std::string request(const std::string& user, const char* method = "GET") {
    return std::string(method) + " /matches HTTP/1.1\r\nHost: x\r\nX-Session-Key: " + user +
           (std::string(method) == "POST" ? "\r\nContent-Length: 0" : "") + "\r\n\r\n";
  }
};

}  // namespace

TEST_CASE("regression: an older checkpoint is discarded and the request re-sent forward") {
  Rig rig;
  auto c = rig.client();
  auto home = rig.first(*c, "alice", 1000);
  const std::string home_name = backend_of(*home);
  // One other backend is at the user's slot, one behind it.
  std::string ahead, behind;
  for (const char* n : {"k1", "k2", "k3"})
    if (n != home_name) (ahead.empty() ? ahead : behind) = n;
  rig.stats(ahead).raise_tip(1005);
  rig.stats(behind).raise_tip(990);

  c->send(Rig::request("alice"));
  CHECK(home->take().rfind("GET /matches", 0) == 0);
  home->send(answer(900));  // rolled back
  REQUIRE(rig.peers.size() == 2);
  auto fwd = rig.peers.back();
  CHECK(backend_of(*fwd) == ahead);
  CHECK(home->closed);  // the regressed connection is closed, never pooled
  fwd->answer_connect(0);
  CHECK(fwd->take().rfind("GET /matches", 0) == 0);
  fwd->send(answer(1005));
  std::string out = c->take();
  CHECK(out.find("cp900") == std::string::npos);  // never reached the client
  CHECK(out.find("cp1005") != std::string::npos);
  CHECK(rig.pinned("alice") == ahead);
  CHECK(rig.stats(ahead).sum(&BackendShard::remaps_regression) == 1);
  CHECK(rig.stats(home_name).sum(&BackendShard::regressions_prevented) == 1);
  CHECK(rig.pool_sum(&BackendShard::regressions_forwarded) == 0);
  CHECK(rig.pool_sum(&BackendShard::remaps_down) == 0);

  // The user stays on its new backend, over the pooled connection.
  c->send(Rig::request("alice"));
  CHECK(rig.peers.size() == 2);
  fwd->send(answer(1006));
  CHECK(c->take().find("cp1006") != std::string::npos);
}

TEST_CASE("regression: a re-sent answer that regresses too goes on, never back to either") {
  Rig rig;
  auto c = rig.client();
  auto home = rig.first(*c, "bob", 1000);
  for (const char* n : {"k1", "k2", "k3"}) rig.stats(n).raise_tip(1000);
  c->send(Rig::request("bob"));
  home->send(answer(800));
  REQUIRE(rig.peers.size() == 2);
  auto second = rig.peers[1];
  second->answer_connect(0);
  second->send(answer(850));  // rolled back as well
  REQUIRE(rig.peers.size() == 3);
  auto third = rig.peers[2];
  CHECK(backend_of(*third) != backend_of(*home));
  CHECK(backend_of(*third) != backend_of(*second));
  third->answer_connect(0);
  third->send(answer(1001));
  std::string out = c->take();
  CHECK(out.find("cp1001") != std::string::npos);
  CHECK(out.find("cp8") == std::string::npos);
  CHECK(rig.pinned("bob") == backend_of(*third));
  CHECK(rig.pool_sum(&BackendShard::regressions_prevented) == 1);  // one answer, prevented
  CHECK(rig.stats(backend_of(*home)).sum(&BackendShard::regressions_prevented) == 1);
  CHECK(rig.pool_sum(&BackendShard::remaps_regression) == 2);  // two moves
}

TEST_CASE("regression: when every backend tried regresses, the last answer is forwarded") {
  // Tips known from earlier answers say every backend is at the slot; all rolled back.
  Rig rig;
  auto c = rig.client();
  auto home = rig.first(*c, "gina", 1000);
  for (const char* n : {"k1", "k2", "k3"}) rig.stats(n).raise_tip(1000);
  c->send(Rig::request("gina"));
  home->send(answer(700));
  REQUIRE(rig.peers.size() == 2);
  rig.peers[1]->answer_connect(0);
  rig.peers[1]->send(answer(710));
  REQUIRE(rig.peers.size() == 3);
  rig.peers[2]->answer_connect(0);
  rig.peers[2]->send(answer(720));
  CHECK(rig.peers.size() == 3);  // nobody left to try
  CHECK(c->take().find("cp720") != std::string::npos);
  CHECK(rig.pool_sum(&BackendShard::regressions_forwarded) == 1);
  CHECK(rig.pool_sum(&BackendShard::regressions_prevented) == 0);
}

TEST_CASE("regression: with nobody at the user's slot the answer is forwarded and counted") {
  Rig rig;
  auto c = rig.client();
  auto home = rig.first(*c, "carol", 1000);
  const std::string home_name = backend_of(*home);
  for (const char* n : {"k1", "k2", "k3"})
    if (n != home_name) rig.stats(n).raise_tip(950);  // the whole pool rolled back
  c->send(Rig::request("carol"));
  home->send(answer(900));
  CHECK(rig.peers.size() == 1);  // not re-sent
  CHECK(c->take().find("cp900") != std::string::npos);
  CHECK(rig.pinned("carol") == home_name);
  CHECK(rig.stats(home_name).sum(&BackendShard::regressions_forwarded) == 1);
  CHECK(rig.pool_sum(&BackendShard::regressions_prevented) == 0);
  CHECK(rig.pool_sum(&BackendShard::remaps_regression) == 0);
}

TEST_CASE("regression: a non-idempotent request's older answer is forwarded and counted") {
  Rig rig;
  auto c = rig.client();
  auto home = rig.first(*c, "dave", 1000);
  for (const char* n : {"k1", "k2", "k3"}) rig.stats(n).raise_tip(2000);
  c->send(Rig::request("dave", "POST"));
  CHECK(home->take().rfind("POST /matches", 0) == 0);
  home->send(answer(900));
  CHECK(rig.peers.size() == 1);
  CHECK(c->take().find("cp900") != std::string::npos);
  CHECK(rig.pool_sum(&BackendShard::regressions_forwarded) == 1);
  CHECK(rig.pool_sum(&BackendShard::regressions_prevented) == 0);
}

TEST_CASE("regression: an answer at or past the user's slot is no regression") {
  Rig rig;
  auto c = rig.client();
  auto home = rig.first(*c, "erin", 1000);
  for (const char* n : {"k1", "k2", "k3"}) rig.stats(n).raise_tip(2000);
  c->send(Rig::request("erin"));
  home->send(answer(1000));
  CHECK(c->take().find("cp1000") != std::string::npos);
  CHECK(rig.peers.size() == 1);
  CHECK(rig.pool_sum(&BackendShard::regressions_forwarded) == 0);
  CHECK(rig.pool_sum(&BackendShard::regressions_prevented) == 0);
}

TEST_CASE("evict: a pinned user of an evicted backend moves on its next request, by reason") {
  const MoveReason reasons[] = {MoveReason::lag, MoveReason::fork, MoveReason::stale};
  std::atomic<uint64_t> BackendShard::*counters[] = {
      &BackendShard::remaps_lag, &BackendShard::remaps_fork, &BackendShard::remaps_stale};
  for (size_t i = 0; i < 3; ++i) {
    Rig rig;
    auto c = rig.client();
    auto home = rig.first(*c, "frank", 1000);
    const std::string home_name = backend_of(*home);
    std::string ahead;
    for (const char* n : {"k1", "k2", "k3"})
      if (n != home_name) {
        rig.stats(n).raise_tip(ahead.empty() ? 1000 : 10);
        if (ahead.empty()) ahead = n;
      }
    rig.stats(home_name).evict.store(reasons[i]);
    if (reasons[i] == MoveReason::fork) rig.stats(home_name).state.store(lb::BackendState::down);
    c->send(Rig::request("frank"));
    REQUIRE(rig.peers.size() == 2);
    auto moved = rig.peers.back();
    CHECK(backend_of(*moved) == ahead);  // the one at the user's slot
    moved->answer_connect(0);
    moved->send(answer(1001));
    CHECK(c->take().find("cp1001") != std::string::npos);
    CHECK(rig.pinned("frank") == ahead);
    CHECK(rig.stats(ahead).sum(counters[i]) == 1);
    CHECK(rig.pool_sum(&BackendShard::remaps_down) == 0);
  }
}

TEST_CASE("regression: parallel requests straddling a block are no regression") {
  // Two requests of one user leave while it has seen 1000; the second one's answer
  // (1001) arrives after the first one's (1002). Against what the user had seen when
  // it left, it is newer: forwarded as it is, nobody moves.
  Rig rig;
  auto c1 = rig.client();
  auto home = rig.first(*c1, "pat", 1000);
  for (const char* n : {"k1", "k2", "k3"}) rig.stats(n).raise_tip(1002);
  auto c2 = rig.client();
  c1->send(Rig::request("pat"));
  c2->send(Rig::request("pat"));
  REQUIRE(rig.peers.size() == 2);
  auto second = rig.peers[1];
  CHECK(backend_of(*second) == backend_of(*home));
  second->answer_connect(0);
  home->send(answer(1002));
  CHECK(c1->take().find("cp1002") != std::string::npos);
  second->send(answer(1001));
  CHECK(c2->take().find("cp1001") != std::string::npos);
  CHECK(rig.peers.size() == 2);
  CHECK(rig.pinned("pat") == backend_of(*home));
  CHECK(rig.pool_sum(&BackendShard::regressions_forwarded) == 0);
  CHECK(rig.pool_sum(&BackendShard::remaps_regression) == 0);
}

TEST_CASE("regression: a discarded answer that breaks off still gives way to the re-send") {
  Rig rig;
  auto c = rig.client();
  auto home = rig.first(*c, "quin", 1000);
  for (const char* n : {"k1", "k2", "k3"}) rig.stats(n).raise_tip(1005);
  c->send(Rig::request("quin"));
  // An older checkpoint whose body is cut off halfway.
  home->send(
      "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nX-Most-Recent-Checkpoint: 900\r\n\r\ncp900");
  home->fail(UV_ECONNRESET);
  REQUIRE(rig.peers.size() == 2);
  auto fwd = rig.peers.back();
  CHECK(backend_of(*fwd) != backend_of(*home));
  fwd->answer_connect(0);
  fwd->send(answer(1005));
  const std::string out = c->take();
  CHECK(out.find("cp900") == std::string::npos);
  CHECK(out.find("cp1005") != std::string::npos);
  CHECK(out.find("HTTP/1.1 200") == out.rfind("HTTP/1.1 200"));  // one answer, whole
  CHECK(rig.peers.size() == 2);                                  // no third request
  CHECK(rig.pool_sum(&BackendShard::resets) == 0);  // not the backend's failure to count
}
