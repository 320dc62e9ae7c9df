// WebSocket tunnels over the in-memory stream, without sockets: the test plays the client
// and the backend (MemoryPeer) and runs the real ClientConn, UpstreamConn handover and
// Tunnel in a worker whose loop only turns when the test runs it.
#include <doctest.h>
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "config/loader.h"
#include "lb/core/session_key.h"
#include "lb/http/ws_frame.h"
#include "lb/net/client_conn.h"
#include "lb/net/memory_stream.h"
#include "lb/net/proxy_state.h"
#include "lb/net/worker.h"
#include "tests/lb/net/worker_rig.h"

namespace {

using namespace lb::net;

const char* kConfig = R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - {prefix: /, pool: og, websocket: true}
sticky:
  keys: [{from: header, name: X-Session-Key}]
pools:
  og:
    kind: ogmios
    backends:
      - {name: o1, address: 127.0.0.1:1001}
)";

const char* kHandshake =
    "GET / HTTP/1.1\r\nHost: x\r\nX-Session-Key: u1\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n";
const char* k101 =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

std::string frame(uint8_t opcode, const std::string& payload) {
  uint8_t h[lb::http::kWsMaxHeader];
  size_t n = lb::http::write_ws_header(h, true, opcode, payload.size());
  return std::string(reinterpret_cast<char*>(h), n) + payload;
}

std::string close_frame(uint16_t code, const char* reason) {
  uint8_t f[127];
  size_t n = lb::http::write_ws_close(f, code, reason);
  return std::string(reinterpret_cast<char*>(f), n);
}

struct Rig : WorkerRig {
  std::shared_ptr<MemoryPeer> backend;

  Rig() : WorkerRig(kConfig) {
    worker->set_stream_factory([this] {
      backend = std::make_shared<MemoryPeer>();
      return std::make_unique<MemoryStream>(worker->buffers(), backend);
    });
  }
  BackendStats& stats() { return *state.registry.backend("og", "o1").stats; }

  // A client whose handshake the backend answered with 101 (plus `after` in the same read).
  std::shared_ptr<MemoryPeer> tunnel(const std::string& after = "") {
    auto c = std::make_shared<MemoryPeer>();
    ClientConn::open(*worker, std::make_unique<MemoryStream>(worker->buffers(), c), 0);
    c->send(kHandshake);
    REQUIRE(backend);
    backend->answer_connect(0);
    std::string req = backend->take();
    CHECK(req.find("Upgrade: websocket\r\n") != std::string::npos);
    CHECK(req.find("Connection: upgrade\r\n") != std::string::npos);
    backend->send(k101 + after);
    std::string out = c->take();
    CHECK(out.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0) == 0);
    size_t end = out.find("\r\n\r\n");
    REQUIRE(end != std::string::npos);
    CHECK(out.substr(end + 4) == after);
    CHECK(worker->tunnel_count() == 1);
    return c;
  }
  // Turns the loop until the worker's tunnel check has run (its timer is 250 ms).
  void run_tunnel_check() {
    uint64_t until = uv_now(worker->loop()) + Worker::kTunnelCheckMs + 60;
    while (uv_now(worker->loop()) < until) {
      uv_run(worker->loop(), UV_RUN_ONCE);
      uv_update_time(worker->loop());
    }
  }
};

}  // namespace

TEST_CASE("tunnel: bytes both ways after the 101, then a close from the backend ends it") {
  Rig rig;
  auto c = rig.tunnel(frame(lb::http::ws_text, "early"));
  c->send("client bytes, masked frames in real life");
  CHECK(rig.backend->take() == "client bytes, masked frames in real life");
  rig.backend->send(frame(lb::http::ws_text, "tip"));
  CHECK(c->take() == frame(lb::http::ws_text, "tip"));
  CHECK(rig.stats().sum(&BackendShard::tunnels) == 1);
  CHECK(rig.state.connections.load() == 1);  // the client connection's place, taken over
  rig.backend->send(close_frame(1000, "done"));
  rig.backend->send_eof();
  CHECK(c->take() == close_frame(1000, "done"));  // passed on, none of corral's own
  CHECK(c->shut);
  c->send_eof();
  MemoryStream::settle();
  CHECK(rig.worker->tunnel_count() == 0);
  CHECK(rig.stats().sum(&BackendShard::tunnels) == 0);
  CHECK(rig.state.connections.load() == 0);
  CHECK(rig.stats().sum(&BackendShard::tunnel_closes_1012) == 0);
}

TEST_CASE("tunnel: a backend going down mid-frame gets its 1012 only after that frame") {
  Rig rig;
  rig.stats().raise_tip(777);
  std::string first = frame(lb::http::ws_binary, std::string(3000, 'b'));
  auto c = rig.tunnel(first.substr(0, 100));
  rig.stats().state = lb::BackendState::down;
  rig.run_tunnel_check();
  CHECK(c->take().empty());  // nothing yet: the backend is mid-frame
  rig.backend->send(first.substr(100) + frame(lb::http::ws_text, "next"));
  std::string out = c->take();
  CHECK(out == first.substr(100) + close_frame(1012, "backend down"));
  CHECK(rig.backend->closed);
  CHECK(c->shut);
  CHECK(rig.stats().sum(&BackendShard::tunnel_closes_1012) == 1);
  // The user's last slot is the backend's tip: a reconnect goes to one at or past it.
  auto& pool = rig.state.runtime.load()->pools[0];
  lb::SessionKey k =
      lb::pool_session_key(lb::make_session_key(lb::KeySource::header, "u1"), pool.salt);
  std::optional<lb::Pin> pin = rig.state.sessions.touch(k, uv_now(rig.worker->loop()));
  REQUIRE(pin);
  CHECK(pin->last_slot == 777);
  c->send_eof();
  MemoryStream::settle();
  CHECK(rig.worker->tunnel_count() == 0);
}

TEST_CASE("tunnel: a backend that drops the connection between frames gives 1012") {
  Rig rig;
  auto c = rig.tunnel();
  rig.backend->send(frame(lb::http::ws_text, "a"));
  rig.backend->send_eof();
  CHECK(c->take() ==
        frame(lb::http::ws_text, "a") + close_frame(1012, "backend closed the connection"));
  c->send_eof();
  MemoryStream::settle();
  CHECK(rig.worker->tunnel_count() == 0);
}

TEST_CASE("tunnel: after the backend's own close frame, going down adds no second one") {
  Rig rig;
  auto c = rig.tunnel(close_frame(1000, "bye"));  // came right after the 101
  rig.stats().state = lb::BackendState::down;
  rig.run_tunnel_check();
  CHECK(c->take().empty());
  MemoryStream::settle();
  CHECK(c->closed);
  CHECK(rig.worker->tunnel_count() == 0);
  CHECK(rig.stats().sum(&BackendShard::tunnel_closes_1012) == 0);
}

TEST_CASE("tunnel: a 101 with the wrong accept key is a 502, never a tunnel") {
  Rig rig;
  auto c = std::make_shared<MemoryPeer>();
  ClientConn::open(*rig.worker, std::make_unique<MemoryStream>(rig.worker->buffers(), c), 0);
  c->send(kHandshake);
  rig.backend->answer_connect(0);
  rig.backend->send(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n");
  CHECK(c->take().rfind("HTTP/1.1 502", 0) == 0);
  CHECK(rig.worker->tunnel_count() == 0);
}
