// The data path with the shared pin store (issue 15) against a real redis-server: a new
// user's request parks on pin_claim and resumes on the claimed backend, a user another
// instance placed is adopted, a client that leaves while parked cancels cleanly, a
// pipelined request waits behind a parked one, a store that is down or silent costs at
// most `timeout` and the write is queued. The worker runs over the in-memory streams
// (worker_rig.h); its StoreClient talks to Redis on loopback.
#include <doctest.h>
#include <unistd.h>
#include <uv.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lb/core/pin_codec.h"
#include "lb/core/session_key.h"
#include "lb/net/socket_address.h"
#include "lb/net/store_client.h"
#include "lb/net/wall_clock.h"
#include "tests/lb/net/redis_server.h"
#include "tests/lb/net/worker_rig.h"

namespace {

using namespace lb;
using namespace lb::net;
using redis_test::Cli;
using redis_test::have_redis;
using redis_test::RedisCase;

constexpr uint64_t kTimeoutMs = 100;
const char* kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Most-Recent-Checkpoint: 42\r\n\r\nok";

std::string get(const std::string& user) {
  return "GET /matches HTTP/1.1\r\nHost: x\r\nX-Session-Key: " + user + "\r\n\r\n";
}
bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }
size_t count_of(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

// A worker (memory streams) whose runtime has sticky.store on `port`, adopted by a reload
// on the loop's first turn as in corral.
struct StoreRig : WorkerRig {
  struct Up {
    std::shared_ptr<MemoryPeer> peer;
    std::string backend() const { return "k" + std::to_string(port_of(peer->connected_to) - 1000); }
  };
  std::vector<Up> ups;

  explicit StoreRig(uint16_t port, const std::string& yaml = three_backends_yaml("kupo"))
      : WorkerRig(yaml.c_str()) {
    state.store.pending.set_max_pending(100);
    worker->set_stream_factory([this] {
      auto peer = std::make_shared<MemoryPeer>();
      ups.push_back({peer});
      return std::make_unique<MemoryStream>(worker->buffers(), peer);
    });
    set_store(port);
  }
  // A new snapshot with (port != 0) or without the store, adopted on the next loop turn.
  void set_store(uint16_t port) {
    config::Config cfg = state.runtime.load()->config;
    if (port != 0) {
      config::StickyStore s;
      s.redis = "127.0.0.1:" + std::to_string(port);
      s.host = "127.0.0.1";
      s.port = port;
      s.prefix = "t:";
      s.timeout_ms = kTimeoutMs;
      cfg.sticky.store = s;
    } else {
      cfg.sticky.store.reset();
    }
    auto rt = std::const_pointer_cast<Runtime>(
        build_runtime(cfg, state.registry, state.runtime.load().get()));
    if (port != 0)
      rt->store = RuntimeStore{"127.0.0.1", port, ""};
    else
      rt->store.reset();
    state.runtime.store(rt);
    worker->reload();
  }
  // Turns the worker's loop until pred() or `ms` pass.
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
  // A new client that has sent GET /matches as `user`.
  std::shared_ptr<MemoryPeer> ask(const std::string& user) {
    auto c = client();
    c->send(get(user));
    return c;
  }
  bool store_up() {
    return until([&] { return worker->store() && worker->store()->up(); }, 3000);
  }
  std::string key_text(const std::string& user) {
    const auto& pool = state.runtime.load()->pools[0];
    return pin_key_text("t:",
                        pool_session_key(make_session_key(KeySource::header, user), pool.salt));
  }
  // The backend the local table pins `user` to ("" if none).
  std::string pinned(const std::string& user) {
    const auto& pool = state.runtime.load()->pools[0];
    SessionKey k = pool_session_key(make_session_key(KeySource::header, user), pool.salt);
    std::optional<Pin> pin = state.sessions.peek(k);
    return pin ? state.registry.name_of(pin->backend).substr(5) : "";
  }
};

// A redis-server and a StoreRig on it (TEST_CASE_FIXTURE): `if (!started()) return;` and
// the rig's store link is up.
struct StoreCase : RedisCase {
  StoreRig rig{redis.port()};  // port 0 (no store) when redis-server did not start
  bool started() {
    if (!RedisCase::started()) return false;
    REQUIRE(rig.store_up());
    return true;
  }
};

}  // namespace

TEST_CASE_FIXTURE(
    StoreCase, "exchange store: a new user parks on the claim and resumes on the claimed backend") {
  if (!started()) return;
  Cli cli(redis.port());

  auto c = rig.ask("alice");
  CHECK(rig.ups.empty());  // parked: nothing is sent before the store answers
  CHECK(rig.worker->parked_count() == 1);
  REQUIRE(rig.until([&] { return !rig.ups.empty(); }, 2000));
  CHECK(rig.worker->parked_count() == 0);
  StoreRig::Up up = rig.ups[0];
  up.peer->answer_connect(0);
  CHECK(starts_with(up.peer->take(), "GET /matches HTTP/1.1\r\n"));
  up.peer->send(kOk);
  CHECK(starts_with(c->take(), "HTTP/1.1 200 OK"));
  // The store holds what this instance placed, and so does the local table.
  CHECK(cli.run({"GET", rig.key_text("alice")}) == "v1|" + up.backend() + "|0|none");
  CHECK(rig.pinned("alice") == up.backend());
  CHECK(rig.state.store.counters.claims_won == 1);

  // A returning user is answered by the local table: no park, no round trip.
  c->send(get("alice"));
  CHECK(rig.worker->parked_count() == 0);
  CHECK(rig.ups.size() == 1);
  CHECK(starts_with(up.peer->take(), "GET /matches"));
  up.peer->send(kOk);
  CHECK(starts_with(c->take(), "HTTP/1.1 200 OK"));
  CHECK(rig.state.store.counters.claims_won == 1);
}

TEST_CASE_FIXTURE(StoreCase,
                  "exchange store: a user another instance placed is adopted and sent there") {
  if (!started()) return;
  Cli cli(redis.port());
  // Three users, pre-placed by "another instance" on each backend in turn: whatever this
  // instance would have chosen, each one goes where the store says (a new connection each:
  // no backend twice, or its pooled connection would be reused).
  const char* stored[] = {"k2", "k3", "k1"};
  for (int i = 0; i < 3; ++i) {
    std::string user = "bob" + std::to_string(i);
    REQUIRE(cli.run({"SET", rig.key_text(user), std::string("v1|") + stored[i] + "|7|admin"}) ==
            "OK");
    auto c = rig.client();
    size_t made = rig.ups.size();
    c->send(get(user));
    REQUIRE(rig.until([&] { return rig.ups.size() == made + 1; }, 2000));
    StoreRig::Up up = rig.ups.back();
    CHECK(up.backend() == stored[i]);
    CHECK(rig.pinned(user) == stored[i]);
    up.peer->answer_connect(0);
    up.peer->send(kOk);
    CHECK(starts_with(c->take(), "HTTP/1.1 200 OK"));
    // Adopting writes nothing: the other instance's pin stays as it was.
    CHECK(cli.run({"GET", rig.key_text(user)}) == std::string("v1|") + stored[i] + "|7|admin");
  }
  CHECK(rig.state.store.counters.claims_adopted == 3);
  CHECK(rig.state.store.counters.claims_won == 0);
}

TEST_CASE_FIXTURE(StoreCase,
                  "exchange store: a stored backend this pool lacks is replaced once by cas") {
  if (!started()) return;
  Cli cli(redis.port());
  REQUIRE(cli.run({"SET", rig.key_text("dave"), "v1|gone|9|none"}) == "OK");
  auto c = rig.ask("dave");
  REQUIRE(rig.until([&] { return !rig.ups.empty(); }, 2000));
  StoreRig::Up up = rig.ups[0];
  CHECK(rig.pinned("dave") == up.backend());
  CHECK(cli.run({"GET", rig.key_text("dave")}) == "v1|" + up.backend() + "|0|removed");
  CHECK(rig.state.store.counters.cas_won == 1);
}

// Scripts Redis has run so far (EVALSHA and EVAL), from INFO commandstats.
long long scripts_run(Cli& cli) {
  std::string info = cli.run({"INFO", "commandstats"});
  long long n = 0;
  for (const char* cmd : {"cmdstat_evalsha:calls=", "cmdstat_eval:calls="})
    if (size_t at = info.find(cmd); at != std::string::npos)
      n += std::stoll(info.substr(at + std::strlen(cmd)));
  return n;
}

TEST_CASE_FIXTURE(StoreCase,
                  "exchange store: a second lost cas keeps the local decision and queues it") {
  if (!started()) return;
  Cli cli(redis.port());
  const std::string key = rig.key_text("erin");
  REQUIRE(cli.run({"SET", key, "v1|gone|9|none"}) == "OK");
  long long before = scripts_run(cli);
  auto c = rig.ask("erin");
  // Redis has run the claim (lost to "gone"); its answer is not read yet. Another
  // instance now moves the user to a backend this one lacks too, so the one extra cas
  // (expecting "gone") loses as well.
  REQUIRE(rig.until([&] { return scripts_run(cli) > before; }, 2000));
  REQUIRE(cli.run({"SET", key, "v1|gone2|9|none"}) == "OK");
  REQUIRE(rig.until([&] { return !rig.ups.empty(); }, 2000));
  StoreRig::Up up = rig.ups[0];
  CHECK(rig.pinned("erin") == up.backend());
  CHECK(rig.state.store.counters.cas_lost == 1);
  CHECK(cli.run({"GET", key}) == "v1|gone2|9|none");
  // The decision is queued against what the store holds, for the control loop's flush.
  std::vector<PendingWrite> queued = rig.state.store.pending.take(10);
  REQUIRE(queued.size() == 1);
  CHECK(queued[0].key == key);
  CHECK(queued[0].expected == "gone2");
  CHECK(queued[0].value == "v1|" + up.backend() + "|0|removed");
}

TEST_CASE_FIXTURE(StoreCase,
                  "exchange store: a client that leaves while parked cancels; nothing is sent") {
  if (!started()) return;
  auto c = rig.ask("erin");
  REQUIRE(rig.worker->parked_count() == 1);
  c->send_eof();  // the FIN is read while parked
  CHECK(rig.worker->parked_count() == 0);
  MemoryStream::settle();
  CHECK(c->closed);
  CHECK(rig.worker->connection_count() == 0);
  // The claim's answer comes and is dropped: no upstream, no crash.
  rig.until([] { return false; }, 3 * kTimeoutMs);
  CHECK(rig.ups.empty());

  // Same with a reset while parked.
  auto d = rig.ask("frank");
  REQUIRE(rig.worker->parked_count() == 1);
  d->fail(UV_ECONNRESET);
  CHECK(rig.worker->parked_count() == 0);
  rig.until([] { return false; }, 3 * kTimeoutMs);
  CHECK(rig.ups.empty());
  CHECK(rig.worker->request_states().size() >= 1);  // the states went back to the pool
}

TEST_CASE_FIXTURE(StoreCase,
                  "exchange store: a pipelined request waits behind a parked one, then is served") {
  if (!started()) return;
  auto c = rig.ask("gina");
  CHECK(rig.worker->parked_count() == 1);
  c->send(get("gina"));  // arrives while the first is parked: kept in the held buffer
  CHECK(rig.worker->parked_count() == 1);
  CHECK(rig.ups.empty());
  REQUIRE(rig.until([&] { return !rig.ups.empty(); }, 2000));
  StoreRig::Up up = rig.ups[0];
  up.peer->answer_connect(0);
  CHECK(count_of(up.peer->take(), "GET /matches") == 1);  // one at a time
  up.peer->send(kOk);
  // The second goes out on the pooled connection, its user now pinned locally.
  CHECK(count_of(up.peer->take(), "GET /matches") == 1);
  up.peer->send(kOk);
  CHECK(count_of(c->take(), "HTTP/1.1 200 OK") == 2);
  CHECK(rig.ups.size() == 1);
  CHECK(rig.state.store.counters.claims_won == 1);
}

TEST_CASE("exchange store: a store that is down costs nothing; the writes are queued") {
  if (!have_redis()) return;
  uint16_t port = redis_test::free_port();  // nothing listens there
  StoreRig rig(port);
  REQUIRE(rig.until([&] { return rig.worker->store() != nullptr; }, 1000));
  REQUIRE_FALSE(rig.worker->store()->up());
  auto c = rig.ask("hank");
  REQUIRE(rig.ups.size() == 1);  // placed at once
  CHECK(rig.worker->parked_count() == 0);
  CHECK(rig.pinned("hank") == rig.ups[0].backend());
  CHECK(rig.state.store.pending.size() == 1);
  std::vector<PendingWrite> w = rig.state.store.pending.take(10);
  REQUIRE(w.size() == 1);
  CHECK(w[0].expected.empty());  // a claim
  CHECK(w[0].value == "v1|" + rig.ups[0].backend() + "|0|none");
}

TEST_CASE_FIXTURE(
    StoreCase,
    "exchange store: a silent Redis holds a request about `timeout`, then it goes local") {
  if (!started()) return;
  redis.pause();  // SIGSTOP: the TCP connection stays, nothing answers
  auto c = rig.client();
  uint64_t t0 = uv_hrtime() / 1'000'000;
  c->send(get("ivy"));
  CHECK(rig.ups.empty());
  REQUIRE(rig.until([&] { return !rig.ups.empty(); }, 3000));
  uint64_t waited = uv_hrtime() / 1'000'000 - t0;
  CHECK(waited >= kTimeoutMs - 10);
  CHECK(waited < kTimeoutMs + 400);
  CHECK(rig.pinned("ivy") == rig.ups[0].backend());
  CHECK(rig.state.store.pending.size() == 1);  // the claim waits for the flush
  redis.resume();
}

TEST_CASE_FIXTURE(
    StoreCase, "exchange store: a reload that removes the store places parked requests locally") {
  if (!started()) return;
  redis.pause();  // the claim stays unanswered
  auto c = rig.ask("jack");
  REQUIRE(rig.worker->parked_count() == 1);
  rig.set_store(0);
  REQUIRE(rig.until([&] { return !rig.ups.empty(); }, 60));  // well before `timeout`
  CHECK(rig.worker->store() == nullptr);
  CHECK(rig.worker->parked_count() == 0);
  rig.ups[0].peer->answer_connect(0);
  rig.ups[0].peer->send(kOk);
  CHECK(starts_with(c->take(), "HTTP/1.1 200 OK"));
  redis.resume();
}

TEST_CASE_FIXTURE(
    RedisCase,
    "exchange store: a shared quota's lease is taken through the store; a 429 is shared") {
  if (!started()) return;
  Cli cli(redis.port());
  const std::string yaml = R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - {prefix: /, pool: bf}
sticky:
  keys: [{from: header, name: X-Session-Key}]
pools:
  bf:
    kind: blockfrost
    slow_start: 0s
    backends:
      - {name: k1, address: 127.0.0.1:1001}
    rate_limit: {rps: 10, burst: 20}
)";
  StoreRig rig(redis.port(), yaml);
  REQUIRE(rig.store_up());
  QuotaGuard& guard = *rig.state.runtime.load()->pools[0].quota;
  guard.set_shared(true);  // the control loop does this when the store is up
  auto lease = [&] { return guard.snapshot(uv_now(rig.worker->loop()), wall_ms()).lease; };
  CHECK(lease() == 0);

  // The first admission finds no lease: it asks the store (quota_take) through the
  // worker's client, never waiting for the answer.
  auto c = rig.ask("kim");
  REQUIRE(rig.until([&] { return !rig.ups.empty() || !c->written.empty(); }, 2000));
  CHECK(rig.state.store.counters.quota_takes == 1);
  REQUIRE(rig.until([&] { return lease() > 0; }, 2000));
  CHECK(cli.run({"TYPE", "t:quota:bf"}) != "none");  // the fleet's bucket
  c->take();

  // With the lease the next request goes out; the upstream's 429 trips a cool-down that
  // every instance must see: quota_cool writes it to the store.
  auto d = rig.client();
  size_t made = rig.ups.size();
  d->send(get("kim"));
  REQUIRE(rig.ups.size() == made + 1);  // a pinned user: no wait
  StoreRig::Up up = rig.ups.back();
  up.peer->answer_connect(0);
  up.peer->send("HTTP/1.1 429 Too Many Requests\r\nContent-Length: 2\r\n\r\nno");
  REQUIRE(rig.until([&] { return cli.run({"GET", "t:quota:bf:cool"}) == "429"; }, 2000));
}
