// A cacheable miss whose placement waits for the shared pin store (issue 15) while the
// pool's best tip drops (issue 16 review): the lookup's verdict is carried to placement,
// so the request stays a plain miss feeding its fill, never a stream flight's leader
// whose bytes bypass the fill (which then stored an empty body under /metadata/{slot}).
// Runs against a real redis-server; skipped when it is not installed.
#include <doctest.h>
#include <unistd.h>
#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "lb/net/store_client.h"
#include "tests/lb/net/cache_rig.h"
#include "tests/lb/net/redis_server.h"

namespace {

using namespace lb;
using namespace lb::net;

// CacheRig whose runtime has sticky.store on `port`, adopted at once (as in corral).
struct CacheStoreRig : CacheRig {
  explicit CacheStoreRig(uint16_t port) {
    state.store.pending.set_max_pending(100);
    config::Config cfg = state.runtime.load()->config;
    config::StickyStore s;
    s.redis = "127.0.0.1:" + std::to_string(port);
    s.host = "127.0.0.1";
    s.port = port;
    s.prefix = "t:";
    s.timeout_ms = 2000;
    cfg.sticky.store = s;
    auto rt = std::const_pointer_cast<Runtime>(
        build_runtime(cfg, state.registry, state.runtime.load().get()));
    rt->store = RuntimeStore{"127.0.0.1", port, ""};
    state.runtime.store(rt);
    worker->reload();
  }
  bool until(const std::function<bool()>& pred, uint64_t ms) {
    uint64_t end = uv_hrtime() / 1'000'000 + ms;
    while (!pred()) {
      if (uv_hrtime() / 1'000'000 > end) return false;
      uv_run(worker->loop(), UV_RUN_NOWAIT);
      MemoryStream::settle();
      usleep(500);
    }
    return true;
  }
};

}  // namespace

TEST_CASE("cache: a slot-bound miss whose tip drops before placement stores nothing wrong") {
  if (!redis_test::have_redis()) return;
  redis_test::RedisServer redis;
  REQUIRE(redis.ok());
  CacheStoreRig rig(redis.port());
  REQUIRE(rig.until([&] { return rig.worker->store() && rig.worker->store()->up(); }, 3000));

  const std::string path = "/metadata/100";
  rig.cache().best_tip.store(1'000'000);  // deep: cacheable at the lookup
  auto c = rig.client();
  c->send(request(path, "alice"));  // a new user: the placement parks on the claim
  REQUIRE(rig.worker->parked_count() == 1);
  CHECK(rig.worker->flights().fill_count() == 1);  // it leads the fill flight
  rig.cache().best_tip.store(0);                   // no tip known: uncacheable now
  REQUIRE(rig.until([&] { return !rig.ups.empty(); }, 3000));
  // Placed: a plain miss feeding its fill, not a stream flight.
  CHECK(rig.worker->flights().size() == 0);
  auto up = rig.ups[0];
  up->answer_connect(0);
  CHECK(up->take().rfind("GET " + path + " HTTP/1.1\r\n", 0) == 0);
  const std::string body = R"([{"hash":"ab","schema":{}}])";
  up->send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\nX-Most-Recent-Checkpoint: 900000\r\n\r\n" + body);
  std::string got = c->take();
  CHECK(got.find(body) != std::string::npos);
  // Whatever the cache holds under the key is the backend's body (never an empty one).
  std::string canonical;
  CacheKey key = rig.key_of(path, canonical);
  if (auto entry = rig.cache().cache.get(key, canonical, rig.worker->deadlines().now()))
    CHECK(entry->body == body);
  CHECK(rig.count(&CacheShard::stores) == 1);
}
