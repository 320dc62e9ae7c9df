// AdminServer's /status and /metrics documents built straight from a ProxyState (no
// listening socket): figures that /status and /metrics must agree on.
#include <doctest.h>
#include <uv.h>

#include <deque>
#include <string>

#include "config/loader.h"
#include "lb/admin/admin_server.h"

namespace {

// Health that follows no backend: the documents leave the health fields out.
struct NoHealth : lb::net::HealthView {
  std::optional<lb::net::BackendHealthView> backend(lb::BackendRef, uint64_t) const override {
    return std::nullopt;
  }
  const std::deque<lb::net::Transition>& transitions() const override { return none; }
  bool set_admin(const std::string&, std::optional<lb::BackendState>) override { return false; }
  std::deque<lb::net::Transition> none;
};

constexpr const char* kYaml =
    "listeners: [{name: pub, listen: 127.0.0.1:8080, routes: [{prefix: /, pool: k}]}]\n"
    "pools:\n"
    "  k: {kind: kupo, backends: [{name: k1, address: 127.0.0.1:1442},"
    " {name: k2, address: 127.0.0.1:1443}]}\n"
    "  o: {kind: http, backends: [{name: o1, address: 127.0.0.1:1444}]}\n";

struct Rig {
  uv_loop_t loop{};
  lb::net::ProxyState state{1000, 60'000};
  NoHealth health;
  std::unique_ptr<lb::admin::AdminServer> admin;

  Rig() {
    uv_loop_init(&loop);
    config::LoadResult r = config::load_string(kYaml, "test.yaml");
    REQUIRE(r.errors.empty());
    state.runtime.store(lb::net::build_runtime(*r.config, state.registry));
    admin = std::make_unique<lb::admin::AdminServer>(&loop, state, health,
                                                     lb::admin::ProcessInfo{1, 0, 0, "test"});
  }
  ~Rig() {
    admin->close();
    admin.reset();
    while (uv_run(&loop, UV_RUN_NOWAIT) != 0) {
    }
    CHECK(uv_loop_close(&loop) == 0);
  }
  const lb::net::RuntimeBackend& backend(size_t pool, size_t i) {
    return state.runtime.load()->pools[pool].backends[i];
  }
};

}  // namespace

TEST_CASE("admin documents: /status never shows a gauge below 0") {
  Rig rig;
  // Raised in a worker's shard, lowered in this one's: the sum passes through -1.
  rig.backend(0, 0).stats->local().in_flight.fetch_sub(1);
  rig.backend(0, 0).stats->local().tunnels.fetch_sub(2);
  rig.state.runtime.load()->listeners[0].stats->local().open.fetch_sub(1);
  const std::string st = rig.admin->status_json();
  INFO(st);
  CHECK(st.find("\"in_flight\":-") == std::string::npos);
  CHECK(st.find("\"tunnels\":-") == std::string::npos);
  CHECK(st.find("\"open\":-") == std::string::npos);
  CHECK(st.find("\"in_flight\":0") != std::string::npos);
  CHECK(st.find("\"open\":0") != std::string::npos);
}

TEST_CASE("admin documents: expired pins are remaps of their own pool; the total stays") {
  Rig rig;
  lb::SessionTable& t = rig.state.sessions;
  auto key = [](uint64_t n) { return lb::SessionKey{n * 0x9e3779b97f4a7c15ULL, n}; };
  t.pin(key(1), rig.backend(0, 0).ref, 0);
  t.pin(key(2), rig.backend(0, 1).ref, 0);
  t.pin(key(3), rig.backend(1, 0).ref, 0);
  t.pin(key(4), rig.backend(0, 1).ref, 100'000);  // stays: not idle past ttl
  CHECK(t.sweep(70'000) == 3);
  const std::string m = rig.admin->metrics_text();
  INFO(m);
  CHECK(m.find("corral_remaps_total{pool=\"k\",reason=\"expired\"} 2\n") != std::string::npos);
  CHECK(m.find("corral_remaps_total{pool=\"o\",reason=\"expired\"} 1\n") != std::string::npos);
  CHECK(m.find("corral_remaps_total{reason=") == std::string::npos);  // no pool-less series
  CHECK(m.find("corral_sessions_expired_total 3\n") != std::string::npos);
}
