// HealthMonitor publishes the pool's best tip into its PoolCache (issue 16): real probes over
// loopback to tiny Kupo /health servers on the test's own libuv loop, so the value the
// workers read is the one the policy computed (the highest up member's tip; a down member's
// tip never counts), and a pool without a cache is left alone.
#include <doctest.h>
#include <uv.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "config/loader.h"
#include "lb/net/health_monitor.h"
#include "lb/net/proxy_state.h"
#include "lb/net/runtime.h"

using namespace lb::net;

namespace {

// Answers every connection with one Kupo /health response, then closes it. `status` and
// `tip` may change between probes.
struct KupoHealthServer {
  uv_tcp_t tcp{};
  uint16_t port = 0;
  int status = 200;
  uint64_t tip = 0;

  explicit KupoHealthServer(uv_loop_t* loop) {
    uv_tcp_init(loop, &tcp);
    tcp.data = this;
    sockaddr_in a{};
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_bind(&tcp, reinterpret_cast<const sockaddr*>(&a), 0);
    sockaddr_in got{};
    int len = sizeof got;
    uv_tcp_getsockname(&tcp, reinterpret_cast<sockaddr*>(&got), &len);
    port = ntohs(got.sin_port);
    uv_listen(reinterpret_cast<uv_stream_t*>(&tcp), 16, &KupoHealthServer::on_connection);
  }

  void close() { uv_close(reinterpret_cast<uv_handle_t*>(&tcp), nullptr); }

  struct Conn {
    uv_tcp_t tcp{};
    KupoHealthServer* server = nullptr;
    std::string in, out;
    char buf[4096];
    uv_write_t write{};
  };

  static void on_connection(uv_stream_t* s, int status) {
    if (status < 0) return;
    auto* c = new Conn;
    c->server = static_cast<KupoHealthServer*>(s->data);
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(s, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) return finish(c);
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&c->tcp),
        [](uv_handle_t* h, size_t, uv_buf_t* b) {
          auto* c = static_cast<Conn*>(h->data);
          *b = uv_buf_init(c->buf, sizeof c->buf);
        },
        &KupoHealthServer::on_read);
  }

  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* b) {
    auto* c = static_cast<Conn*>(s->data);
    if (n < 0) return finish(c);
    c->in.append(b->base, static_cast<size_t>(n));
    if (c->in.find("\r\n\r\n") == std::string::npos) return;
    uv_read_stop(s);
    const std::string tip = std::to_string(c->server->tip);
    const std::string body =
        "{\"connection_status\":\"connected\",\"most_recent_checkpoint\":" + tip +
        ",\"most_recent_node_tip\":" + tip +
        ",\"seconds_since_last_block\":1,\"version\":\"v2.9.0\"}";
    c->out =
        "HTTP/1.1 " + std::to_string(c->server->status) +
        " X\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\nConnection: close\r\n\r\n" + body;
    uv_buf_t wb = uv_buf_init(c->out.data(), static_cast<unsigned>(c->out.size()));
    c->write.data = c;
    uv_write(&c->write, s, &wb, 1, [](uv_write_t* w, int) { finish(static_cast<Conn*>(w->data)); });
  }

  static void finish(Conn* c) {
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp),
             [](uv_handle_t* h) { delete static_cast<Conn*>(h->data); });
  }
};

config::Config kupo_pool(uint16_t p1, uint16_t p2, const std::string& cache) {
  config::LoadResult r = config::load_string(
      "listeners: [{name: p, listen: 127.0.0.1:0, routes: [{prefix: /, pool: k}]}]\n"
      "pools:\n"
      "  k:\n"
      "    kind: kupo\n"
      "    health: {interval: 100ms, timeout: 80ms, rise: 1, fall: 1}\n"
      "    backends: [{name: k1, address: 127.0.0.1:" +
          std::to_string(p1) + "}, {name: k2, address: 127.0.0.1:" + std::to_string(p2) + "}]\n" +
          (cache.empty() ? "" : "    cache: " + cache + "\n"),
      "t.yaml");
  std::string errors;
  for (const config::ConfigError& e : r.errors) errors += e.str() + "\n";
  REQUIRE_MESSAGE(r.config.has_value(), errors);
  return *r.config;
}

// Turns `loop` until `done()` or 5 s pass; true when done.
template <class Done>
bool turn_until(uv_loop_t* loop, Done done) {
  const uint64_t deadline = uv_now(loop) + 5000;
  while (!done()) {
    if (uv_now(loop) > deadline) return false;
    uv_run(loop, UV_RUN_ONCE);
    uv_update_time(loop);
  }
  return true;
}

}  // namespace

TEST_CASE("health best tip: probes publish the pool's best tip into its cache") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  // A timer keeps UV_RUN_ONCE from blocking forever if nothing else is pending.
  uv_timer_t beat;
  uv_timer_init(&loop, &beat);
  uv_timer_start(
      &beat, [](uv_timer_t*) {}, 20, 20);
  {
    KupoHealthServer a(&loop), b(&loop);
    a.tip = 50'000;
    b.tip = 50'400;
    ProxyState state(1000, 60'000);
    state.runtime.store(build_runtime(kupo_pool(a.port, b.port, "{}"), state.registry));
    std::shared_ptr<PoolCache> pc = state.runtime.load()->pools[0].cache;
    REQUIRE(pc != nullptr);
    CHECK(pc->best_tip.load() == 0);  // unknown until a probe answers
    {
      HealthMonitor monitor(&loop, state);
      CHECK(turn_until(&loop, [&] { return pc->best_tip.load() == 50'400; }));
      CHECK(pc->known_tip() == std::optional<uint64_t>(50'400));

      // The best member's probe says down (Kupo 503): its tip no longer sets the bar.
      b.status = 503;
      b.tip = 90'000;
      CHECK(turn_until(&loop, [&] { return pc->best_tip.load() == 50'000; }));
      // The other moves on: the published tip follows.
      a.tip = 50'100;
      CHECK(turn_until(&loop, [&] { return pc->best_tip.load() == 50'100; }));
      // Both down: unknown again (0), so nothing slot-bound is judged deep.
      a.status = 503;
      CHECK(turn_until(&loop, [&] { return pc->best_tip.load() == 0; }));

      // A reload that drops the cache: the monitor keeps probing, the old cache hears no
      // more, and nothing breaks.
      a.status = 200;
      b.status = 200;
      state.runtime.store(
          build_runtime(kupo_pool(a.port, b.port, ""), state.registry, state.runtime.load().get()));
      monitor.sync();
      CHECK(state.runtime.load()->pools[0].cache == nullptr);
      const uint64_t before = uv_now(&loop);
      turn_until(&loop, [&] { return uv_now(&loop) > before + 400; });
      CHECK(pc->best_tip.load() == 0);
      monitor.stop();
      // Probes in flight answer into a stopped monitor (dropped): let them end first.
      const uint64_t stopped = uv_now(&loop);
      turn_until(&loop, [&] { return uv_now(&loop) > stopped + 300; });
    }
    a.close();
    b.close();
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&beat), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}
