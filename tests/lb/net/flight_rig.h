#pragma once
// The stream-flight rig shared by test_flight.cpp and test_flight_faults.cpp: a worker over
// in-memory streams whose kupo pool has a cache (collapse on or off); the test plays every
// client and backend and runs the real ClientConn, Flight and Exchange.
#include <doctest.h>
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "config/loader.h"
#include "lb/http/message_parser.h"
#include "lb/net/client_conn.h"
#include "lb/net/flight.h"
#include "lb/net/memory_stream.h"
#include "lb/net/pool_cache.h"
#include "lb/net/proxy_state.h"
#include "lb/net/socket_address.h"
#include "lb/net/worker.h"

namespace {

using namespace lb::net;

std::string pool_yaml(int backends) {
  std::string y = R"(
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
    kind: kupo
    slow_start: 0s
    backends:
)";
  for (int i = 1; i <= backends; ++i)
    y += "      - {name: k" + std::to_string(i) + ", address: 127.0.0.1:100" + std::to_string(i) +
         "}\n";
  return y;
}

struct Upstream {
  std::shared_ptr<MemoryPeer> peer;
  std::string backend() const { return "k" + std::to_string(port_of(peer->connected_to) - 1000); }
};

// A worker over memory streams whose pool has a cache (collapse on or off); the config's
// `cache:` key is built in code here, as build_runtime honours Pool::cache.
struct Rig {
  ProxyState state{1000, 3'600'000};
  std::unique_ptr<Worker> worker;
  std::vector<Upstream> ups;

  explicit Rig(int backends = 1, bool cache = true, bool collapse = true) {
    std::string yaml = pool_yaml(backends);
    config::LoadResult r = config::load_string(yaml, "test.yaml");
    REQUIRE(r.errors.empty());
    if (cache) {
      config::CacheConfig c;
      c.collapse = collapse;
      r.config->pools[0].cache = c;
    }
    state.runtime.store(build_runtime(*r.config, state.registry));
    worker = std::make_unique<Worker>(state, 0);
    worker->set_stream_factory([this] {
      auto peer = std::make_shared<MemoryPeer>();
      ups.push_back({peer});
      return std::make_unique<MemoryStream>(worker->buffers(), peer);
    });
  }
  ~Rig() {
    MemoryStream::settle();
    worker->stop(0);
    while (uv_run(worker->loop(), UV_RUN_NOWAIT) != 0) MemoryStream::settle();
    MemoryStream::settle();
    CHECK(uv_loop_alive(worker->loop()) == 0);
  }
  std::shared_ptr<MemoryPeer> client() {
    auto peer = std::make_shared<MemoryPeer>();
    ClientConn::open(*worker, std::make_unique<MemoryStream>(worker->buffers(), peer), 0);
    return peer;
  }
  PoolCache& cache() { return *state.runtime.load()->pools[0].cache; }
  uint64_t collapsed() { return cache().sum(&CacheShard::collapsed); }
  BackendStats& stats(const std::string& name) {
    return *state.registry.backend("kupo", name).stats;
  }
  Rig(const Rig&) = delete;
  Rig& operator=(const Rig&) = delete;
};

const char* kPath = "/matches/addr1?unspent";

std::string get(const std::string& user, const std::string& extra = "", const char* path = kPath) {
  return std::string("GET ") + path + " HTTP/1.1\r\nHost: x\r\nX-Session-Key: " + user + "\r\n" +
         extra + "\r\n";
}

// A client's bytes parsed back as one response: status and decoded body (-1: not whole).
struct Parsed {
  int status = -1;
  std::string body;
  bool chunked = false;
};
Parsed parse_response(const std::string& bytes) {
  Parsed out;
  lb::http::MessageParser p(lb::http::MessageParser::Kind::response, 0);
  p.reset(64 * 1024);
  lb::http::ParseResult r = p.feed(bytes.data(), bytes.size());
  if (r.status != lb::http::ParseStatus::head) return out;
  out.chunked = p.chunked();
  p.resume_after_head();
  p.set_body_sink(
      [](void* ctx, const char* d, size_t n) { static_cast<std::string*>(ctx)->append(d, n); },
      &out.body);
  lb::http::ParseResult b = p.feed(bytes.data() + r.consumed, bytes.size() - r.consumed);
  if (b.status == lb::http::ParseStatus::done) out.status = p.status_code();
  return out;
}

}  // namespace
