// The exchange logic of a client connection over the in-memory stream, without sockets:
// the test plays the client and every backend (MemoryPeer) and runs the real ClientConn,
// UpstreamConn, placement and retry policy in a worker whose loop is not running.
#include <doctest.h>
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "config/loader.h"
#include "lb/core/session_key.h"
#include "lb/net/client_conn.h"
#include "lb/net/memory_stream.h"
#include "lb/net/proxy_state.h"
#include "lb/net/socket_address.h"
#include "lb/net/worker.h"
#include "tests/lb/net/worker_rig.h"

namespace {

using namespace lb::net;

const std::string kConfigText = three_backends_yaml("kupo");
const char* kConfig = kConfigText.c_str();

const char* kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Most-Recent-Checkpoint: 42\r\n\r\nok";
const char* k503 = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy";

struct Upstream {
  std::shared_ptr<MemoryPeer> peer;
  // The backend it connected to, by name ("k1".."k3").
  std::string backend() const { return "k" + std::to_string(port_of(peer->connected_to) - 1000); }
};

struct Rig : WorkerRig {
  std::vector<Upstream> ups;  // every upstream stream made, in order

  explicit Rig(const char* yaml = kConfig, uint64_t buffer_limit = UINT64_MAX)
      : WorkerRig(yaml, buffer_limit) {
    worker->set_stream_factory([this] {
      auto peer = std::make_shared<MemoryPeer>();
      ups.push_back({peer});
      return std::make_unique<MemoryStream>(worker->buffers(), peer);
    });
  }
};

std::string get(const std::string& user, const std::string& path = "/matches") {
  return "GET " + path + " HTTP/1.1\r\nHost: x\r\nX-Session-Key: " + user + "\r\n\r\n";
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// Sends `request` on client `c`, which must open one new upstream connection. Returns
// it, still connecting.
Upstream send_opening(Rig& rig, MemoryPeer& c, const std::string& request) {
  size_t made = rig.ups.size();
  c.send(request);
  REQUIRE(rig.ups.size() == made + 1);
  return rig.ups.back();
}

// send_opening, and the connection's connect succeeds.
Upstream send_connected(Rig& rig, MemoryPeer& c, const std::string& request) {
  Upstream up = send_opening(rig, c, request);
  up.peer->answer_connect(0);
  return up;
}

// A first request from `user` on client `c`, answered 200 by the backend it was placed on:
// the user is pinned there. Returns that backend's upstream.
Upstream serve_first(Rig& rig, MemoryPeer& c, const std::string& user) {
  Upstream up = send_connected(rig, c, get(user));
  up.peer->send(kOk);
  CHECK(starts_with(c.take(), "HTTP/1.1 200 OK"));
  return up;
}

}  // namespace

TEST_CASE("exchange: a request reaches its placed backend, the answer comes back, the user stays") {
  Rig rig;
  auto c = rig.client();
  c->send(get("alice"));
  REQUIRE(rig.ups.size() == 1);
  Upstream up = rig.ups[0];
  REQUIRE(up.peer->connect_started);
  up.peer->answer_connect(0);
  std::string req = up.peer->take();
  CHECK(starts_with(req, "GET /matches HTTP/1.1\r\n"));
  up.peer->send(kOk);
  std::string out = c->take();
  CHECK(starts_with(out, "HTTP/1.1 200 OK\r\n"));
  CHECK(out.size() > 2);
  CHECK(out.substr(out.size() - 2) == "ok");
  CHECK(rig.pinned("alice") == up.backend());

  // The second request reuses the pooled upstream connection: no new stream.
  c->send(get("alice"));
  CHECK(rig.ups.size() == 1);
  CHECK(starts_with(up.peer->take(), "GET /matches"));
  up.peer->send(kOk);
  CHECK(starts_with(c->take(), "HTTP/1.1 200 OK"));
}

TEST_CASE("exchange: between requests the connection holds no buffer and no parser") {
  Rig rig;
  auto c = rig.client();
  serve_first(rig, *c, "bob");
  CHECK_FALSE(c->stream->holds_buffer());
  CHECK(rig.worker->buffers().in_use() == 0);  // the idle upstream holds none either
  CHECK(rig.worker->request_states().size() == 1);
  CHECK(rig.worker->response_parsers().size() == 1);
}

TEST_CASE("exchange: a new user's 503 is retried once on the next candidate") {
  Rig rig;
  auto c = rig.client();
  c->send(get("carol"));
  Upstream first = rig.ups.at(0);
  first.peer->answer_connect(0);
  first.peer->send(k503);
  REQUIRE(rig.ups.size() == 2);
  Upstream second = rig.ups[1];
  CHECK(second.backend() != first.backend());
  second.peer->answer_connect(0);
  CHECK(starts_with(second.peer->take(), "GET /matches"));
  second.peer->send(kOk);
  std::string out = c->take();
  CHECK(starts_with(out, "HTTP/1.1 200 OK"));
  CHECK(out.find("busy") == std::string::npos);  // the 503 never reached the client
  CHECK(rig.pinned("carol") == second.backend());
  CHECK(rig.stats(first.backend()).sum(&BackendShard::retried_503) == 1);
  std::vector<PassiveEvent> events;
  rig.state.passive.drain(events);
  REQUIRE(events.size() >= 1);
  CHECK(events[0].status == 503);
}

TEST_CASE("exchange: a pinned user's 503 reaches the client; it is not moved") {
  Rig rig;
  auto c = rig.client();
  Upstream up = serve_first(rig, *c, "dave");
  c->send(get("dave"));
  up.peer->send(k503);
  CHECK(starts_with(c->take(), "HTTP/1.1 503"));
  CHECK(rig.ups.size() == 1);
  CHECK(rig.pinned("dave") == up.backend());
}

TEST_CASE("exchange: a moved user is a new user to its new backend: its 503 is retried") {
  Rig rig;
  auto c = rig.client();
  Upstream home = serve_first(rig, *c, "erin");
  rig.stats(home.backend()).state.store(lb::BackendState::down);
  c->send(get("erin"));
  REQUIRE(rig.ups.size() == 2);
  Upstream moved = rig.ups[1];
  CHECK(moved.backend() != home.backend());
  moved.peer->answer_connect(0);
  moved.peer->send(k503);
  REQUIRE(rig.ups.size() == 3);
  Upstream third = rig.ups[2];
  CHECK(third.backend() != home.backend());
  CHECK(third.backend() != moved.backend());
  third.peer->answer_connect(0);
  third.peer->send(kOk);
  CHECK(starts_with(c->take(), "HTTP/1.1 200 OK"));
  CHECK(rig.pinned("erin") == third.backend());
  // The move, counted on the backend the user moved to; the 503 retry is no remap.
  CHECK(rig.stats(moved.backend()).sum(&BackendShard::remaps_down) == 1);
  uint64_t pool_remaps = 0;
  rig.state.registry.for_each_in_pool(
      "kupo", [&](const BackendStats& s) { pool_remaps += s.sum(&BackendShard::remaps_down); });
  CHECK(pool_remaps == 1);
}

TEST_CASE("exchange: a refused connection fails over at once and tells health") {
  Rig rig;
  auto c = rig.client();
  c->send(get("frank"));
  Upstream dead = rig.ups.at(0);
  dead.peer->answer_connect(UV_ECONNREFUSED);
  REQUIRE(rig.ups.size() == 2);
  Upstream alive = rig.ups[1];
  CHECK(alive.backend() != dead.backend());
  alive.peer->answer_connect(0);
  alive.peer->send(kOk);
  CHECK(starts_with(c->take(), "HTTP/1.1 200 OK"));
  CHECK(rig.pinned("frank") == alive.backend());
  CHECK(rig.stats(dead.backend()).sum(&BackendShard::connect_failures) == 1);
  std::vector<PassiveEvent> events;
  rig.state.passive.drain(events);
  REQUIRE(events.size() == 1);
  CHECK(events[0].status == 0);
}

TEST_CASE("exchange: a failover never goes back to a backend that already failed the request") {
  // k? refuses (not yet marked down), the next answers 503 (a new user's is retried):
  // the retry goes to the third backend, never back to the one that refused, whatever
  // the hash prefers (many users, so every order of the three is tried).
  for (int u = 0; u < 24; ++u) {
    Rig rig;
    auto c = rig.client();
    c->send(get("user" + std::to_string(u)));
    Upstream refused = rig.ups.at(0);
    refused.peer->answer_connect(UV_ECONNREFUSED);
    REQUIRE(rig.ups.size() == 2);
    Upstream busy = rig.ups[1];
    busy.peer->answer_connect(0);
    busy.peer->send(k503);
    REQUIRE(rig.ups.size() == 3);
    Upstream third = rig.ups[2];
    CHECK(third.backend() != refused.backend());
    CHECK(third.backend() != busy.backend());
    third.peer->answer_connect(0);
    third.peer->send(kOk);
    CHECK(starts_with(c->take(), "HTTP/1.1 200 OK"));
  }
}

TEST_CASE("exchange: a POST whose connection closes before an answer is not sent twice") {
  Rig rig;
  auto c = rig.client();
  c->send(
      "POST /matches HTTP/1.1\r\nHost: x\r\nX-Session-Key: gina\r\nContent-Length: 3\r\n\r\nabc");
  Upstream up = rig.ups.at(0);
  up.peer->answer_connect(0);
  CHECK(up.peer->take().find("abc") != std::string::npos);
  up.peer->send_eof();
  CHECK(rig.ups.size() == 1);  // not resent anywhere
  CHECK(starts_with(c->take(), "HTTP/1.1 502"));
}

TEST_CASE("exchange: at the buffer budget a connection waits instead of allocating") {
  Rig rig(kConfig, 1);  // no buffer can be had
  auto c = rig.client();
  c->send(get("hank"));
  CHECK(rig.ups.empty());  // nothing read
  CHECK(c->stream->starved());
  CHECK(rig.state.buffers.refused.load() >= 1);
  rig.state.buffers.limit = UINT64_MAX;
  c->stream->retry_read();  // what the connection's 50 ms retry does
  REQUIRE(rig.ups.size() == 1);
  rig.ups[0].peer->answer_connect(0);
  rig.ups[0].peer->send(kOk);
  CHECK(starts_with(c->take(), "HTTP/1.1 200 OK"));
}

TEST_CASE("exchange: a pipelined pair is answered in order, one exchange at a time") {
  Rig rig;
  auto c = rig.client();
  c->send(get("ivy", "/a") + get("ivy", "/b"));
  Upstream up = rig.ups.at(0);
  up.peer->answer_connect(0);
  std::string first = up.peer->take();
  CHECK(starts_with(first, "GET /a "));
  CHECK(first.find("GET /b") == std::string::npos);
  up.peer->send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst");
  CHECK(starts_with(up.peer->take(), "GET /b "));
  up.peer->send("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond");
  std::string out = c->take();
  REQUIRE(out.find("second") != std::string::npos);
  CHECK(out.find("first") < out.find("second"));
}

TEST_CASE("exchange: a client that stalls mid-body keeps a deadline while the body streams") {
  Rig rig;
  auto c = rig.client();
  c->send(
      "POST /matches HTTP/1.1\r\nHost: x\r\nX-Session-Key: zed\r\nContent-Length: 10\r\n\r\nabc");
  REQUIRE(rig.ups.size() == 1);
  size_t before = rig.worker->deadlines().armed_count();  // the upstream's connect timeout
  rig.ups[0].peer->answer_connect(0);
  CHECK(rig.ups[0].peer->take().find("abc") != std::string::npos);
  // The upstream's response time starts only once the body is all sent; the client's idle
  // deadline must watch the body meanwhile, or the pair hangs forever.
  CHECK(before == 1);
  CHECK(rig.worker->deadlines().armed_count() == 1);
}

TEST_CASE("exchange: a head that fills a whole buffer gets 431 at once, not a stall") {
  Rig rig;  // buffer_bytes defaults to max_header_bytes (16 KiB)
  auto c = rig.client();
  c->send("GET /matches HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n");
  CHECK(starts_with(c->take(), "HTTP/1.1 431"));
  CHECK(rig.ups.empty());
}

// ---- a client that leaves, a body that trickles (issue 9, items 9 and 10) -------------

namespace {

// Runs the worker's loop (its deadline tick) for about `ms`.
void run_for(Rig& rig, uint64_t ms) {
  uv_loop_t* loop = rig.worker->loop();
  uv_update_time(loop);
  uint64_t until = uv_now(loop) + ms;
  while (uv_now(loop) < until) {
    uv_run(loop, UV_RUN_NOWAIT);
    uv_sleep(5);
    uv_update_time(loop);
  }
  uv_run(loop, UV_RUN_NOWAIT);
}

}  // namespace

TEST_CASE("client faults: a FIN while waiting for the answer cancels the upstream exchange") {
  Rig rig;
  auto c = rig.client();
  Upstream up = send_connected(rig, *c, get("kim"));
  CHECK(starts_with(up.peer->take(), "GET /matches"));
  BackendStats& st = rig.stats(up.backend());
  CHECK(st.sum(&BackendShard::in_flight) == 1);
  c->send_eof();
  CHECK(up.peer->closed);  // closed at once, not left to the backend's answer
  CHECK(c->closed);
  CHECK(c->take().empty());
  CHECK(st.sum(&BackendShard::client_aborts) == 1);
  CHECK(st.sum(&BackendShard::in_flight) == 0);
  MemoryStream::settle();
  CHECK(rig.worker->upstreams().idle_count() == 0);  // not pooled: it carried a request
  CHECK(rig.worker->request_states().size() == 1);   // the request state is back
  CHECK(rig.worker->buffers().in_use() == 0);
}

TEST_CASE("client faults: a FIN while the upstream connection is still connecting") {
  Rig rig;
  auto c = rig.client();
  Upstream up = send_opening(rig, *c, get("lee"));
  REQUIRE(up.peer->connect_started);
  c->send_eof();
  CHECK(up.peer->closed);
  CHECK(rig.stats(up.backend()).sum(&BackendShard::client_aborts) == 1);
  up.peer->answer_connect(0);  // too late: nothing happens
  CHECK(up.peer->take().empty());
}

TEST_CASE("client faults: a POST body in flight is abandoned, the upstream connection closed") {
  Rig rig;
  auto c = rig.client();
  Upstream up = send_connected(
      rig, *c,
      "POST /matches HTTP/1.1\r\nHost: x\r\nX-Session-Key: max\r\nContent-Length: 10\r\n\r\nabc");
  CHECK(up.peer->take().find("abc") != std::string::npos);
  c->send_eof();
  CHECK(up.peer->closed);
  CHECK(starts_with(c->take(), "HTTP/1.1 400"));
  CHECK(rig.stats(up.backend()).sum(&BackendShard::client_aborts) == 1);
  MemoryStream::settle();
  CHECK(rig.worker->upstreams().idle_count() == 0);
}

TEST_CASE("client faults: a FIN after the answer started lets the answer finish") {
  Rig rig;
  auto c = rig.client();
  Upstream up = send_connected(rig, *c, get("ned"));
  up.peer->send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello");
  c->send_eof();
  CHECK_FALSE(up.peer->closed);
  up.peer->send("world");
  std::string out = c->take();
  CHECK(starts_with(out, "HTTP/1.1 200 OK"));
  CHECK(out.substr(out.size() - 10) == "helloworld");
  CHECK(c->closed);
  CHECK(rig.stats(up.backend()).sum(&BackendShard::client_aborts) == 0);
}

TEST_CASE("client faults: bytes arriving while waiting are kept for the next request") {
  Rig rig;
  auto c = rig.client();
  Upstream up = send_connected(rig, *c, get("oli", "/a"));
  CHECK(starts_with(up.peer->take(), "GET /a "));
  c->send(get("oli", "/b"));       // pipelined while the first answer is awaited
  CHECK(up.peer->take().empty());  // not parsed early, not sent
  CHECK(c->stream->has_input());
  up.peer->send(kOk);
  CHECK(starts_with(up.peer->take(), "GET /b "));
  up.peer->send(kOk);
  std::string out = c->take();
  CHECK(out.find("HTTP/1.1 200 OK") != out.rfind("HTTP/1.1 200 OK"));  // two answers
  CHECK(rig.stats(up.backend()).sum(&BackendShard::client_aborts) == 0);
}

TEST_CASE("client faults: a body trickled past body_timeout gets 408, the upstream closed") {
  std::string yaml = std::string(kConfig) + "limits: {body_timeout: 300ms, idle_timeout: 60s}\n";
  Rig rig(yaml.c_str());
  auto c = rig.client();
  Upstream up = send_connected(
      rig, *c,
      "POST /matches HTTP/1.1\r\nHost: x\r\nX-Session-Key: pam\r\nContent-Length: 100\r\n\r\na");
  std::string answer;
  // One byte every 60 ms: idle_timeout (60 s) alone would never end this.
  for (int i = 0; i < 20 && answer.empty(); ++i) {
    run_for(rig, 60);
    c->send("b");
    answer += c->take();
  }
  CHECK(starts_with(answer, "HTTP/1.1 408"));
  CHECK(answer.find("body_timeout") != std::string::npos);
  CHECK(up.peer->closed);
  CHECK(rig.state.registry.listener("public")->sum(&ListenerShard::body_timeouts) == 1);
}

TEST_CASE("an absolute-form authority that is no valid Host is refused, not forwarded") {
  // RFC 9112 §3.2.2: the authority replaces Host, so it passes the same check a Host field
  // does; "a:99999" and "x%zz" once went out as Host.
  const char* bad[] = {
      "GET http://a:99999/matches HTTP/1.1\r\nHost: ok\r\nX-Session-Key: r1\r\n\r\n",
      "GET http://x%zz/matches HTTP/1.1\r\nHost: ok\r\nX-Session-Key: r2\r\n\r\n",
      "GET http://a:b:c/matches HTTP/1.1\r\nHost: ok\r\nX-Session-Key: r3\r\n\r\n"};
  for (const char* r : bad) {
    std::string req = r;
    CAPTURE(req);
    Rig rig;
    auto c = rig.client();
    c->send(req);
    CHECK(rig.ups.empty());  // never reaches a backend
    CHECK(starts_with(c->take(), "HTTP/1.1 400"));
  }
}

TEST_CASE("an absolute-form target's Host fields live outside the pooled request state") {
  // Inline, the Host-rewritten copy of the fields (kMaxHeaders + 1 views, ~3 KB) was paid
  // by every pooled RequestState for a request form clients rarely send.
  MESSAGE("sizeof(RequestState) = " << sizeof(RequestState));
  CHECK(sizeof(RequestState::host_fields) == sizeof(void*));
  Rig rig;
  auto c = rig.client();
  Upstream up = send_connected(
      rig, *c,
      "GET http://auth.example:8080/a HTTP/1.1\r\nHost: old\r\nX-Session-Key: abs\r\n\r\n");
  std::string head = up.peer->take();
  CHECK(starts_with(head, "GET /a "));
  CHECK(head.find("auth.example:8080") != std::string::npos);
  CHECK(head.find("old") == std::string::npos);
  up.peer->send(kOk);
  CHECK(starts_with(c->take(), "HTTP/1.1 200"));
  // The next (origin-form) request on the connection keeps its own Host.
  c->send(get("abs", "/b"));
  head = up.peer->take();
  CHECK(starts_with(head, "GET /b "));
  CHECK(head.find("auth.example") == std::string::npos);
}
