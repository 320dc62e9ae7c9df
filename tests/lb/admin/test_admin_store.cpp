// The shared pin store in /status and /metrics (issue 15), built straight from a ProxyState
// as test_admin_documents.cpp does: what each document shows with and without sticky.store,
// figures the two agree on, and the password never in either.
#include <doctest.h>
#include <uv.h>

#include <cstdlib>
#include <deque>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "config/loader.h"
#include "lb/admin/admin_server.h"
#include "lb/net/redis_link.h"

namespace {

struct NoHealth : lb::net::HealthView {
  std::optional<lb::net::BackendHealthView> backend(lb::BackendRef, uint64_t) const override {
    return std::nullopt;
  }
  const std::deque<lb::net::Transition>& transitions() const override { return none; }
  bool set_admin(const std::string&, std::optional<lb::BackendState>) override { return false; }
  std::deque<lb::net::Transition> none;
};

const std::string kBase =
    "listeners:\n"
    "  - {name: pub, listen: 127.0.0.1:0, routes: [{prefix: /, pool: k}]}\n"
    "  - {name: l4, listen: 127.0.0.1:0, proxy_protocol: true, routes: [{prefix: /, pool: "
    "k}]}\n"
    "pools:\n"
    "  k: {kind: kupo, backends: [{name: k1, address: 127.0.0.1:1442},"
    " {name: k2, address: 127.0.0.1:1443}]}\n";

struct Rig {
  uv_loop_t loop{};
  lb::net::ProxyState state{1000, 60'000};
  NoHealth health;
  std::unique_ptr<lb::admin::AdminServer> admin;

  explicit Rig(const std::string& extra) {
    uv_loop_init(&loop);
    setenv("CORRAL_ADMIN_STORE_PW", "redisSECRETpw", 1);
    config::LoadResult r = config::load_string(kBase + extra, "test.yaml");
    unsetenv("CORRAL_ADMIN_STORE_PW");
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
  const lb::net::RuntimeBackend& backend(size_t i) {
    return state.runtime.load()->pools[0].backends[i];
  }
  void set_state(lb::net::LinkState s) { state.store.state.store(static_cast<uint8_t>(s)); }
};

bool has(const std::string& doc, const std::string& part) {
  return doc.find(part) != std::string::npos;
}

// `doc` holds each of `present` and none of `absent`.
void check_doc(const std::string& doc, std::initializer_list<std::string> present,
               std::initializer_list<std::string> absent = {}) {
  INFO(doc);
  for (const std::string& part : present) CHECK_MESSAGE(has(doc, part), part);
  for (const std::string& part : absent) CHECK_MESSAGE(!has(doc, part), part);
}

const std::string kStore =
    "sticky:\n  store: {redis: \"127.0.0.1:6399\", prefix: \"t1:\",\n"
    "          password: {env: CORRAL_ADMIN_STORE_PW}}\n";

}  // namespace

TEST_CASE("admin store: without sticky.store, /status says so and /metrics has no store") {
  Rig rig("");
  check_doc(rig.admin->status_json(), {"\"store\":{\"configured\":false}"}, {"pinned_fleet"});
  check_doc(rig.admin->metrics_text(), {}, {"corral_store_", "corral_sessions_fleet"});
}

TEST_CASE("admin store: state, address and counters; the password in neither document") {
  Rig rig(kStore);
  lb::net::StoreShared& s = rig.state.store;
  s.instance = "host:42:0badcafe";
  s.since_unix_ms.store(1'700'000'000'123);
  s.set_error("connect: Connection refused");
  s.fleet.set_live_instances(3);
  s.pending.set_max_pending(2);
  for (const char* key : {"a", "b", "c"}) s.pending.push({key, "", "v1|k1|1|none"});
  lb::net::StoreCounters& c = s.counters;
  c.errors = 4;
  c.timeouts = 5;
  c.claims_won = 6;
  c.claims_adopted = 7;
  c.cas_won = 8;
  c.cas_lost = 9;
  c.local_fallbacks = 10;
  c.invalidations_in = 11;
  c.invalidations_out = 12;
  c.refreshes = 13;
  c.refresh_adopted = 14;
  c.refresh_reseeded = 15;
  c.flushed = 16;
  c.flush_adopted = 17;
  c.quota_takes = 18;
  c.syncs = 19;
  c.roundtrip.observe(1500);
  c.roundtrip.observe(800'000);

  rig.set_state(lb::net::LinkState::down);
  rig.state.store.sub_state = static_cast<uint8_t>(lb::net::LinkState::up);
  std::string st = rig.admin->status_json();
  INFO(st);
  CHECK(has(st,
            "\"store\":{\"configured\":true,\"state\":\"down\",\"subscriber\":\"up\",\"worker_"
            "links\":0,\"worker_links_up\":0,\"redis\":"
            "\"127.0.0.1:6399\","
            "\"address\":\"127.0.0.1:6399\",\"prefix\":\"t1:\","
            "\"since_unix_ms\":1700000000123,"
            "\"last_error\":\"connect: Connection refused\",\"instance\":\"host:42:0badcafe\","
            "\"instances_live\":3,\"pending\":2,\"pending_max\":2,\"pending_dropped\":1,"
            "\"errors\":4,\"timeouts\":5,\"claims_won\":6,\"claims_adopted\":7,\"cas_won\":8,"
            "\"cas_lost\":9,\"local_fallbacks\":10,\"invalidations_in\":11,"
            "\"invalidations_out\":12,\"refreshes\":13,\"refresh_adopted\":14,"
            "\"refresh_reseeded\":15,\"flushed\":16,\"flush_adopted\":17,\"quota_takes\":18,"
            "\"syncs\":19}"));
  rig.set_state(lb::net::LinkState::connecting);
  CHECK(has(rig.admin->status_json(), "\"state\":\"connecting\""));
  rig.set_state(lb::net::LinkState::up);
  CHECK(has(rig.admin->status_json(), "\"state\":\"up\""));

  std::string m = rig.admin->metrics_text();
  INFO(m);
  CHECK(has(m, "\ncorral_store_up 1\n"));
  CHECK(has(m, "\ncorral_store_errors_total 4\n"));
  CHECK(has(m, "\ncorral_store_timeouts_total 5\n"));
  CHECK(has(m, "\ncorral_store_pending 2\n"));
  CHECK(has(m, "\ncorral_store_pending_dropped_total 1\n"));
  const std::vector<std::pair<std::string, int>> ops = {
      {"op=\"claim\",result=\"won\"", 6},         {"op=\"claim\",result=\"adopted\"", 7},
      {"op=\"cas\",result=\"won\"", 8},           {"op=\"cas\",result=\"lost\"", 9},
      {"op=\"refresh\",result=\"sent\"", 13},     {"op=\"refresh\",result=\"adopted\"", 14},
      {"op=\"refresh\",result=\"reseeded\"", 15}, {"op=\"flush\",result=\"written\"", 16},
      {"op=\"flush\",result=\"adopted\"", 17},    {"op=\"quota\",result=\"take\"", 18}};
  for (const auto& [labels, n] : ops)
    CHECK(has(m, "\ncorral_store_ops_total{" + labels + "} " + std::to_string(n) + "\n"));
  CHECK(has(m, "\ncorral_store_local_fallbacks_total 10\n"));
  CHECK(has(m, "\ncorral_store_invalidations_total{direction=\"in\"} 11\n"));
  CHECK(has(m, "\ncorral_store_invalidations_total{direction=\"out\"} 12\n"));
  CHECK(has(m, "\ncorral_store_instances 3\n"));
  CHECK(has(m, "# TYPE corral_store_roundtrip_seconds histogram\n"));
  CHECK(has(m, "\ncorral_store_roundtrip_seconds_bucket{le=\"+Inf\"} 2\n"));
  CHECK(has(m, "\ncorral_store_roundtrip_seconds_count 2\n"));
  CHECK(has(m, "\ncorral_store_roundtrip_seconds_sum 0.8015\n"));
  CHECK(has(m, "\ncorral_store_roundtrip_seconds_bucket{le=\"0.001\"} 0\n"));
  CHECK(has(m, "\ncorral_store_roundtrip_seconds_bucket{le=\"0.0025\"} 1\n"));

  rig.set_state(lb::net::LinkState::connecting);
  CHECK(has(rig.admin->metrics_text(), "\ncorral_store_up 0\n"));

  for (const std::string& doc : {rig.admin->status_json(), rig.admin->metrics_text()}) {
    CHECK_FALSE(has(doc, "SECRET"));
    CHECK_FALSE(has(doc, "CORRAL_ADMIN_STORE_PW"));
  }
}

TEST_CASE("admin store: pinned_fleet and corral_sessions_fleet add the other instances' pins") {
  Rig rig(kStore);
  lb::SessionTable& t = rig.state.sessions;
  t.pin(lb::SessionKey{1, 1}, rig.backend(0).ref, 0);
  t.pin(lb::SessionKey{2, 2}, rig.backend(0).ref, 0);
  t.pin(lb::SessionKey{3, 3}, rig.backend(1).ref, 0);
  const std::vector<std::pair<lb::BackendRef, uint64_t>> others = {{rig.backend(0).ref, 40},
                                                                   {rig.backend(1).ref, 7}};
  rig.state.store.fleet.replace(others);
  check_doc(rig.admin->status_json(), {"\"pinned_sessions\":2,\"pinned_fleet\":42",
                                       "\"pinned_sessions\":1,\"pinned_fleet\":8"});
  check_doc(rig.admin->metrics_text(),
            {"\ncorral_sessions_fleet{pool=\"k\",backend=\"k1\"} 42\n",
             "\ncorral_sessions_fleet{pool=\"k\",backend=\"k2\"} 8\n",
             "\ncorral_sessions{pool=\"k\",backend=\"k1\"} 2\n"});  // the last: local, as before
}

TEST_CASE("admin store: an unresolved host shows a null address") {
  Rig rig("sticky: {store: {redis: corral-admin-test.invalid:6379}}\n");
  check_doc(rig.admin->status_json(),
            {"\"redis\":\"corral-admin-test.invalid:6379\",\"address\":null",
             "\"since_unix_ms\":null,\"last_error\":null"});
}

TEST_CASE("admin documents: PROXY header results per proxy_protocol listener") {
  Rig rig("");
  auto rt = rig.state.runtime.load();
  REQUIRE(rt->listeners.size() == 2);
  lb::net::ListenerShard& l4 = rt->listeners[1].stats->local();
  l4.proxy_ok += 5;
  l4.proxy_bad += 2;
  l4.proxy_timeout += 1;
  l4.proxy_closed += 3;
  check_doc(rig.admin->metrics_text(),
            {"\ncorral_proxy_protocol_total{listener=\"l4\",result=\"ok\"} 5\n",
             "\ncorral_proxy_protocol_total{listener=\"l4\",result=\"bad\"} 2\n",
             "\ncorral_proxy_protocol_total{listener=\"l4\",result=\"timeout\"} 1\n",
             "\ncorral_proxy_protocol_total{listener=\"l4\",result=\"closed\"} 3\n"},
            {"corral_proxy_protocol_total{listener=\"pub\""});
  check_doc(rig.admin->status_json(),
            {"\"name\":\"pub\",\"listen\":\"127.0.0.1:0\",\"tls\":false,"
             "\"proxy_protocol\":false,\"open\"",
             "\"proxy_protocol\":true,\"proxy_headers\":{\"ok\":5,\"bad\":2,\"timeout\":1,"
             "\"closed\":3}"});
}
