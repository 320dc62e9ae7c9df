// The quota guard on the data path, over the in-memory stream: a refused request opens no
// upstream connection, a resend to another backend needs (and spends) quota like the first
// request, and an upstream 429 stops the next request before it is sent. The worker's loop
// is not running, so its clock stands still: the bucket never refills during a test.
#include <doctest.h>
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "lb/net/client_conn.h"
#include "lb/net/memory_stream.h"
#include "lb/net/socket_address.h"
#include "lb/net/wall_clock.h"
#include "tests/lb/net/worker_rig.h"

namespace {

using namespace lb::net;

std::string bf_config(const std::string& rate_limit) {
  return R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - {prefix: /, pool: bf}
sticky:
  keys: [{from: header, name: X-Session-Key}]
  balance_factor: 0
pools:
  bf:
    kind: blockfrost
    slow_start: 0s
    backends:
      - {name: b1, address: 127.0.0.1:1001}
      - {name: b2, address: 127.0.0.1:1002}
    rate_limit: )" +
         rate_limit + "\n";
}

const char* kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
const char* k429 = "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 2\r\n\r\nno";

struct Rig : WorkerRig {
  explicit Rig(const std::string& yaml) : WorkerRig(yaml.c_str()) { memory_upstreams(); }
  lb::QuotaSnapshot quota() {
    return state.runtime.load()->pools[0].quota->snapshot(uv_now(worker->loop()), wall_ms());
  }
};

std::string get(const std::string& user) {
  return "GET /blocks/latest HTTP/1.1\r\nHost: x\r\nX-Session-Key: " + user + "\r\n\r\n";
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

TEST_CASE("quota path: a request past the bucket is answered 429 and opens no connection") {
  Rig rig(bf_config("{rps: 1, burst: 1}"));
  auto c = rig.client();
  c->send(get("ann"));
  REQUIRE(rig.peers.size() == 1);
  rig.peers[0]->answer_connect(0);
  rig.peers[0]->send(kOk);
  CHECK(starts_with(c->take(), "HTTP/1.1 200 OK"));
  CHECK(starts_with(rig.peers[0]->take(), "GET /blocks/latest"));
  c->send(get("ann"));
  std::string out = c->take();
  CHECK(starts_with(out, "HTTP/1.1 429"));
  CHECK(out.find("Retry-After: 1\r\n") != std::string::npos);
  CHECK(out.find("rate limit") != std::string::npos);
  CHECK(rig.peers.size() == 1);
  CHECK(rig.peers[0]->take().empty());  // the pooled connection carried nothing more
  lb::QuotaSnapshot q = rig.quota();
  CHECK(q.used_today == 1);
  CHECK(q.refused_rate == 1);
}

TEST_CASE("quota path: a failover resend spends quota, and is refused when none is left") {
  SUBCASE("a token left: the resend goes out and is counted") {
    Rig rig(bf_config("{rps: 1, burst: 2}"));
    auto c = rig.client();
    c->send(get("bob"));
    REQUIRE(rig.peers.size() == 1);
    rig.peers[0]->answer_connect(UV_ECONNREFUSED);
    REQUIRE(rig.peers.size() == 2);
    rig.peers[1]->answer_connect(0);
    rig.peers[1]->send(kOk);
    CHECK(starts_with(c->take(), "HTTP/1.1 200 OK"));
    CHECK(rig.quota().used_today == 2);
  }
  SUBCASE("no token left: the client gets 429 and no second connection is made") {
    Rig rig(bf_config("{rps: 1, burst: 1}"));
    auto c = rig.client();
    c->send(get("bob"));
    REQUIRE(rig.peers.size() == 1);
    rig.peers[0]->answer_connect(UV_ECONNREFUSED);
    CHECK(rig.peers.size() == 1);
    std::string out = c->take();
    CHECK(starts_with(out, "HTTP/1.1 429"));
    CHECK(out.find("Retry-After: 1\r\n") != std::string::npos);
    CHECK(rig.quota().used_today == 1);
  }
}

TEST_CASE("quota path: after an upstream 429 the next request is not sent") {
  Rig rig(bf_config("{rps: 100, burst: 100}"));
  auto c = rig.client();
  c->send(get("cy"));
  REQUIRE(rig.peers.size() == 1);
  rig.peers[0]->answer_connect(0);
  rig.peers[0]->send(k429);
  CHECK(starts_with(c->take(), "HTTP/1.1 429"));  // the upstream's own answer
  rig.peers[0]->take();
  c->send(get("cy"));
  std::string out = c->take();
  CHECK(starts_with(out, "HTTP/1.1 429"));
  CHECK(out.find("answered 429") != std::string::npos);
  CHECK(rig.peers[0]->take().empty());  // the pooled connection carried nothing more
  CHECK(rig.peers.size() == 1);
  lb::QuotaSnapshot q = rig.quota();
  CHECK(q.upstream_429 == 1);
  CHECK(q.refused_cooldown == 1);
  CHECK(q.cooldown_status == 429);
}
