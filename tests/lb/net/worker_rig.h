#pragma once
// A worker for lb/net tests over the in-memory stream (lb/net/memory_stream.h): the test
// plays clients and backends (MemoryPeer) and turns the loop itself; the destructor
// stops the worker as corral does and runs its loop until every handle has closed, so
// the loop closes and nothing leaks.
#include <doctest.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/loader.h"
#include "lb/core/session_key.h"
#include "lb/net/client_conn.h"
#include "lb/net/memory_stream.h"
#include "lb/net/proxy_state.h"
#include "lb/net/worker.h"

namespace lb::net {

// One listener routing everything to a pool of three backends (k1..k3 on ports nothing
// listens on: the rigs use memory upstreams), keyed on X-Session-Key, no bounded loads.
inline std::string three_backends_yaml(const char* kind) {
  return std::string(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - {prefix: /, pool: kupo}
sticky:
  keys: [{from: header, name: X-Session-Key}]
  balance_factor: 0
pools:
  kupo:
    kind: )") +
         kind + R"(
    slow_start: 0s
    backends:
      - {name: k1, address: 127.0.0.1:1001}
      - {name: k2, address: 127.0.0.1:1002}
      - {name: k3, address: 127.0.0.1:1003}
)";
}

struct WorkerRig {
  ProxyState state{1000, 3'600'000};
  std::unique_ptr<Worker> worker;

  explicit WorkerRig(const char* yaml, uint64_t buffer_limit = UINT64_MAX) {
    config::LoadResult r = config::load_string(yaml, "test.yaml");
    REQUIRE(r.errors.empty());
    state.runtime.store(build_runtime(*r.config, state.registry));
    worker = std::make_unique<Worker>(state, 0);
    state.buffers.limit = buffer_limit;
  }
  // From a config built (or edited) in code, e.g. with settings the YAML does not read yet.
  explicit WorkerRig(const config::Config& cfg, uint64_t buffer_limit = UINT64_MAX) {
    state.runtime.store(build_runtime(cfg, state.registry));
    worker = std::make_unique<Worker>(state, 0);
    state.buffers.limit = buffer_limit;
  }
  ~WorkerRig() {
    MemoryStream::settle();
    worker->stop(0);  // connections closed at a zero deadline
    while (uv_run(worker->loop(), UV_RUN_NOWAIT) != 0) MemoryStream::settle();
    MemoryStream::settle();
    CHECK(uv_loop_alive(worker->loop()) == 0);
  }
  // Every upstream stream the worker makes is an in-memory one, its peer kept in `peers`.
  void memory_upstreams() {
    worker->set_stream_factory([this] {
      auto peer = std::make_shared<MemoryPeer>();
      peers.push_back(peer);
      return std::make_unique<MemoryStream>(worker->buffers(), peer);
    });
  }
  // A new client connection on the first listener; the test plays its peer.
  std::shared_ptr<MemoryPeer> client() {
    auto peer = std::make_shared<MemoryPeer>();
    ClientConn::open(*worker, std::make_unique<MemoryStream>(worker->buffers(), peer), 0);
    return peer;
  }
  std::vector<std::shared_ptr<MemoryPeer>> peers;  // with memory_upstreams(), in order

  // The counters of backend `name` of pool "kupo".
  BackendStats& stats(const std::string& name) {
    return *state.registry.backend("kupo", name).stats;
  }
  // The backend the session table pins `user` (X-Session-Key) to, "k1".."k3", or "".
  std::string pinned(const std::string& user) {
    const auto& pool = state.runtime.load()->pools[0];
    lb::SessionKey k =
        lb::pool_session_key(lb::make_session_key(lb::KeySource::header, user), pool.salt);
    std::optional<lb::Pin> pin = state.sessions.touch(k, uv_now(worker->loop()));
    return pin ? state.registry.name_of(pin->backend).substr(5) : "";
  }

  WorkerRig(const WorkerRig&) = delete;
  WorkerRig& operator=(const WorkerRig&) = delete;
};

}  // namespace lb::net
