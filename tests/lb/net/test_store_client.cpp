// StoreClient against a real redis-server on a loopback port (tests/lb/net/redis_server.h):
// claim (first writer wins, read-through), cas (move + published invalidation, or lost),
// a silent Redis (timeout, the write queued), a dead one (not up), cancel, a runtime
// without a store, batched refreshes (re-seed, adopt), and the shared quota (lease, cool-down).
// A second hiredis connection (synchronous) looks at the keys and subscribes to the channels.
#include <doctest.h>
#include <uv.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "config/loader.h"
#include "lb/core/quota_guard.h"
#include "lb/core/store_messages.h"
#include "lb/net/proxy_state.h"
#include "lb/net/store_client.h"
#include "lb/net/wall_clock.h"
#include "tests/lb/net/redis_server.h"

using namespace lb;
using namespace lb::net;
using namespace redis_test;

namespace {

constexpr uint64_t kTtlMs = 60'000;
constexpr uint64_t kTimeoutMs = 100;

struct Waiter final : StoreWaiter {
  int calls = 0;
  StoreAnswer a;
  void store_answer(const StoreAnswer& got) override {
    ++calls;
    a = got;
  }
};

Runtime store_runtime(uint16_t port, std::string prefix = "t:") {
  Runtime rt;
  rt.config.sticky.ttl_ms = kTtlMs;
  config::StickyStore s;
  s.redis = "127.0.0.1:" + std::to_string(port);
  s.host = "127.0.0.1";
  s.port = port;
  s.prefix = std::move(prefix);
  s.timeout_ms = kTimeoutMs;
  s.sync_interval_ms = 100;  // the refresh batch goes out every 100 ms
  rt.config.sticky.store = s;
  rt.store = RuntimeStore{"127.0.0.1", port, ""};
  return rt;
}

// One instance: its shared state and one worker's client on the test's loop, up.
struct Instance {
  ProxyState state{1000, kTtlMs};
  std::unique_ptr<StoreClient> client;
  Instance(Loop& l, const Runtime& rt, std::string id) {
    state.store.instance = std::move(id);
    state.store.pending.set_max_pending(100);
    client = std::make_unique<StoreClient>(&l.loop, state);
    client->configure(rt);
    REQUIRE(l.until([&] { return client->up(); }, 3000));
  }
};

// Gives `state` the runtime of a config with pool kupo of k1..k<n> (127.0.0.1:1001..);
// returns the refs of k1 and k2.
std::pair<BackendRef, BackendRef> load_kupo(ProxyState& state, int n) {
  std::string yaml = R"(
listeners:
  - {name: public, listen: 127.0.0.1:0, routes: [{prefix: /, pool: kupo}]}
sticky:
  keys: [{from: header, name: X-Session-Key}]
pools:
  kupo:
    kind: kupo
    backends:
)";
  for (int i = 1; i <= n; ++i)
    yaml += "      - {name: k" + std::to_string(i) +
            ", address: 127.0.0.1:" + std::to_string(1000 + i) + "}\n";
  config::LoadResult cfg = config::load_string(yaml, "test.yaml");
  REQUIRE(cfg.errors.empty());
  state.runtime.store(build_runtime(*cfg.config, state.registry));
  return {state.registry.backend("kupo", "k1").ref, state.registry.backend("kupo", "k2").ref};
}

const SessionKey kUser{0x1234, 0x5678};

StoredPin pin_of(const char* backend, uint64_t slot = 7, MoveReason r = MoveReason::none) {
  return StoredPin{backend, slot, r};
}

}  // namespace

TEST_CASE_FIXTURE(RedisLoopCase,
                  "store client: claim, read-through, cas with its invalidation, cas lost") {
  if (!started()) return;
  Runtime rt = store_runtime(redis.port());
  Instance a(l, rt, "host-a:1:aaaaaaaa"), b(l, rt, "host-b:2:bbbbbbbb");
  Cli cli(redis.port());
  const std::string key = pin_key_text("t:", kUser);

  // An empty key: the first writer wins, with the pin's ttl.
  Waiter wa;
  REQUIRE(a.client->claim(kUser, pin_of("k1", 7), &wa));
  CHECK(wa.calls == 0);  // never inside claim()
  REQUIRE(l.until([&] { return wa.calls == 1; }, 2000));
  CHECK(wa.a.outcome == StoreOutcome::won);
  CHECK(cli.run({"GET", key}) == "v1|k1|7|none");
  long long pttl = std::stoll(cli.run({"PTTL", key}));
  CHECK(pttl > 0);
  CHECK(pttl <= static_cast<long long>(kTtlMs));
  CHECK(a.state.store.counters.claims_won == 1);

  // Another instance placing the same user elsewhere adopts the first one's pin.
  Waiter wb;
  REQUIRE(b.client->claim(kUser, pin_of("k2", 3), &wb));
  REQUIRE(l.until([&] { return wb.calls == 1; }, 2000));
  CHECK(wb.a.outcome == StoreOutcome::adopted);
  CHECK(wb.a.stored == pin_of("k1", 7));
  CHECK(cli.run({"GET", key}) == "v1|k1|7|none");
  CHECK(b.state.store.counters.claims_adopted == 1);
  CHECK(b.state.store.counters.roundtrip.sum_us > 0);

  // A move with the right expected backend wins and is published on <prefix>pins.
  Cli sub(redis.port());
  CHECK(sub.run({"SUBSCRIBE", "t:pins"}) == "subscribe");
  Waiter wc;
  REQUIRE(b.client->cas(kUser, "k1", pin_of("k3", 9, MoveReason::down), &wc));
  REQUIRE(l.until([&] { return wc.calls == 1; }, 2000));
  CHECK(wc.a.outcome == StoreOutcome::won);
  CHECK(cli.run({"GET", key}) == "v1|k3|9|down");
  std::optional<PinMoved> moved = decode_pin_moved(sub.next_message());
  REQUIRE(moved.has_value());
  CHECK(*moved == PinMoved{kUser, "k1", "k3", "host-b:2:bbbbbbbb"});
  CHECK(b.state.store.counters.cas_won == 1);
  CHECK(b.state.store.counters.invalidations_out == 1);

  // The other instance still thinks k1: its move loses and adopts k3.
  Waiter wd;
  REQUIRE(a.client->cas(kUser, "k1", pin_of("k2", 8, MoveReason::down), &wd));
  REQUIRE(l.until([&] { return wd.calls == 1; }, 2000));
  CHECK(wd.a.outcome == StoreOutcome::adopted);
  CHECK(wd.a.stored == pin_of("k3", 9, MoveReason::down));
  CHECK(cli.run({"GET", key}) == "v1|k3|9|down");
  CHECK(a.state.store.counters.cas_lost == 1);

  // A value nobody can decode: the claim keeps its placement and writes it over.
  const SessionKey other{1, 2};
  const std::string okey = pin_key_text("t:", other);
  cli.run({"SET", okey, "garbage"});
  Waiter we;
  REQUIRE(a.client->claim(other, pin_of("k2", 4), &we));
  REQUIRE(l.until([&] { return we.calls == 1; }, 2000));
  CHECK(we.a.outcome == StoreOutcome::won);
  REQUIRE(l.until([&] { return cli.run({"GET", okey}) == "v1|k2|4|none"; }, 2000));
  CHECK(a.state.store.pending.size() == 0);
}

TEST_CASE_FIXTURE(RedisLoopCase,
                  "store client: cancel drops the answer; queue_* fill PendingWrites") {
  if (!started()) return;
  Instance a(l, store_runtime(redis.port()), "a");
  Waiter gone, after;
  REQUIRE(a.client->claim(kUser, pin_of("k1"), &gone));
  a.client->cancel(&gone);
  REQUIRE(a.client->claim(SessionKey{9, 9}, pin_of("k2"), &after));
  REQUIRE(l.until([&] { return after.calls == 1; }, 2000));
  l.until([] { return false; }, 50);
  CHECK(gone.calls == 0);
  CHECK(after.a.outcome == StoreOutcome::won);

  a.client->queue_claim(kUser, pin_of("k1", 5));
  a.client->queue_cas(kUser, "k1", pin_of("k2", 6));
  std::vector<PendingWrite> q = a.state.store.pending.take(10);
  // One key: the first expected (a claim), the latest value.
  REQUIRE(q.size() == 1);
  CHECK(q[0] == PendingWrite{pin_key_text("t:", kUser), "", "v1|k2|6|none"});
  CHECK(a.state.store.counters.local_fallbacks == 2);
}

TEST_CASE_FIXTURE(RedisLoopCase,
                  "store client: a silent Redis times out and queues; a dead one is not up") {
  if (!started()) return;
  Instance a(l, store_runtime(redis.port()), "a");
  redis.pause();
  Waiter w;
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(a.client->cas(kUser, "k1", pin_of("k2", 6), &w));
  REQUIRE(l.until([&] { return w.calls == 1; }, 2000));
  long waited = ms_since(t0);
  CHECK(waited >= static_cast<long>(kTimeoutMs) - 10);
  CHECK(waited < static_cast<long>(kTimeoutMs) + 150);
  CHECK(w.a.outcome == StoreOutcome::failed);
  CHECK(std::string(w.a.why) == "timeout");
  CHECK(a.state.store.counters.timeouts == 1);
  std::vector<PendingWrite> q = a.state.store.pending.take(10);
  REQUIRE(q.size() == 1);
  CHECK(q[0] == PendingWrite{pin_key_text("t:", kUser), "k1", "v1|k2|6|none"});

  // Killed with a claim in flight: the claim fails at once ("down"), not at its timeout.
  Waiter lost;
  REQUIRE(a.client->claim(kUser, pin_of("k3", 1), &lost));
  redis.kill();
  REQUIRE(l.until([&] { return lost.calls == 1; }, 2000));
  CHECK(lost.a.outcome == StoreOutcome::failed);
  CHECK(std::string(lost.a.why) == "down");
  CHECK(a.state.store.counters.errors == 1);
  CHECK(a.state.store.pending.size() == 1);
  REQUIRE(l.until([&] { return !a.client->up(); }, 2000));
  Waiter never;
  CHECK_FALSE(a.client->claim(kUser, pin_of("k1"), &never));
  l.until([] { return false; }, 50);
  CHECK(never.calls == 0);
}

TEST_CASE_FIXTURE(
    RedisLoopCase,
    "store client: a runtime without a store closes the link; parked waiters fail later") {
  if (!started()) return;
  Instance a(l, store_runtime(redis.port()), "a");
  redis.pause();
  Waiter w;
  REQUIRE(a.client->claim(kUser, pin_of("k1", 2), &w));
  a.client->configure(Runtime{});
  CHECK_FALSE(a.client->up());
  CHECK(w.calls == 0);  // not inside configure()
  REQUIRE(l.until([&] { return w.calls == 1; }, 1000));
  CHECK(w.a.outcome == StoreOutcome::failed);
  CHECK(std::string(w.a.why) == "down");
  CHECK(a.state.store.pending.size() == 1);
  redis.resume();
  l.until([] { return false; }, 200);
  CHECK(w.calls == 1);
  CHECK_FALSE(a.client->up());
  // The store comes back with a reload.
  a.client->configure(store_runtime(redis.port()));
  REQUIRE(l.until([&] { return a.client->up(); }, 3000));
}

TEST_CASE_FIXTURE(RedisLoopCase,
                  "store client: refresh re-seeds a missing key and adopts another backend") {
  if (!started()) return;
  Instance a(l, store_runtime(redis.port()), "a");
  auto [k1, k2] = load_kupo(a.state, 2);
  a.state.registry.backend("kupo", "k9");  // known to the registry, not configured
  Cli cli(redis.port());
  const std::string key = pin_key_text("t:", kUser);
  a.state.sessions.pin(kUser, k1, uv_now(&l.loop));

  // Gone from the store (a Redis restart): written again from our pin.
  a.client->note_refresh(RefreshItem{kUser, k1, 42});
  REQUIRE(l.until([&] { return a.state.store.counters.refresh_reseeded == 1; }, 2000));
  CHECK(cli.run({"GET", key}) == "v1|k1|42|none");
  CHECK(std::stoll(cli.run({"PTTL", key})) > 0);
  CHECK(a.state.store.counters.refreshes == 1);

  // Moved by another instance (its invalidation missed): the local pin follows.
  cli.run({"SET", key, "v1|k2|50|down"});
  a.client->note_refresh(RefreshItem{kUser, k1, 43});
  REQUIRE(l.until([&] { return a.state.store.counters.refresh_adopted == 1; }, 2000));
  std::optional<Pin> p = a.state.sessions.peek(kUser);
  REQUIRE(p.has_value());
  CHECK(p->backend == k2);
  CHECK(p->last_slot == 50);
  CHECK(p->last_move == static_cast<uint8_t>(MoveReason::down));
  CHECK(cli.run({"GET", key}) == "v1|k2|50|down");

  // A backend this instance does not run (another instance's newer config): kept as is.
  cli.run({"SET", key, "v1|k9|60|down"});
  a.client->note_refresh(RefreshItem{kUser, k2, 51});
  // Replies come in order: once the next key is re-seeded, the k9 one has been seen.
  a.client->note_refresh(RefreshItem{SessionKey{5, 5}, k1, 1});
  REQUIRE(l.until([&] { return a.state.store.counters.refresh_reseeded == 2; }, 2000));
  CHECK(a.state.store.counters.refresh_adopted == 1);
  CHECK(a.state.sessions.peek(kUser)->backend == k2);

  // A ref without a name is skipped, never sent.
  a.client->note_refresh(RefreshItem{SessionKey{3, 3}, 250, 1});
  l.until([] { return false; }, 250);
  CHECK(a.state.store.counters.refreshes == 4);
}

TEST_CASE_FIXTURE(RedisLoopCase,
                  "store client: a refresh never undoes a move that is queued or newer") {
  if (!started()) return;
  Instance a(l, store_runtime(redis.port()), "a");
  // Not a structured binding: clang 14 refuses to capture one in a lambda.
  const auto refs = load_kupo(a.state, 3);
  const BackendRef k1 = refs.first, k2 = refs.second;
  Cli cli(redis.port());
  const std::string key = pin_key_text("t:", kUser);
  uint64_t reseeded = 0;
  // Replies come in order: once a fresh key is re-seeded, the one before was handled.
  auto settle = [&](uint64_t n) {
    a.client->note_refresh(RefreshItem{SessionKey{9, n}, k1, 1});
    ++reseeded;
    return l.until([&] { return a.state.store.counters.refresh_reseeded == reseeded; }, 2000);
  };

  // During an outage this instance moved the user k1 -> k2; the move is still queued
  // when a worker link is back first. The store's k1 is the backend the user left.
  cli.run({"SET", key, "v1|k1|40|none"});
  a.state.sessions.pin(kUser, k2, uv_now(&l.loop), static_cast<uint8_t>(MoveReason::down));
  a.client->queue_cas(kUser, "k1", pin_of("k2", 40, MoveReason::down));
  REQUIRE(a.state.store.pending.contains(key));
  a.client->note_refresh(RefreshItem{kUser, k2, 41});
  REQUIRE(settle(1));
  CHECK(a.state.store.counters.refreshes == 2);
  CHECK(a.state.store.counters.refresh_adopted == 0);
  CHECK(a.state.sessions.peek(kUser)->backend == k2);

  // Flushed meanwhile; the refresh left naming k1, but the local pin moved to k2 before
  // its answer (k3, another instance's older move) came: k2 stays.
  a.state.store.pending.take(100);
  cli.run({"SET", key, "v1|k3|45|down"});
  a.client->note_refresh(RefreshItem{kUser, k1, 42});
  REQUIRE(settle(2));
  CHECK(a.state.store.counters.refresh_adopted == 0);
  CHECK(a.state.sessions.peek(kUser)->backend == k2);

  // Nothing queued and the pin unchanged since: the stored move is followed.
  a.client->note_refresh(RefreshItem{kUser, k2, 43});
  REQUIRE(l.until([&] { return a.state.store.counters.refresh_adopted == 1; }, 2000));
  CHECK(a.state.sessions.peek(kUser)->backend == a.state.registry.backend("kupo", "k3").ref);
}

TEST_CASE_FIXTURE(RedisLoopCase,
                  "store client: quota_take leases at most lease_size; a cool-down refuses") {
  if (!started()) return;
  Instance a(l, store_runtime(redis.port()), "inst-a");
  Cli cli(redis.port());
  uint64_t now = uv_now(&l.loop);
  QuotaGuard guard(QuotaLimits{100, 500, 1000}, now);
  guard.set_shared(true);
  // Empty lease: admitted from the local fallback (never refused for the store's sake),
  // and asks for a lease that also pays that request back.
  QuotaAdmission first = guard.admit(now, wall_ms());
  CHECK(first.ok());
  REQUIRE(first.need_lease);
  CHECK(guard.lease_size() == 26);  // max(100/10, 500/20) + the one fallback request
  REQUIRE(a.client->quota_take("bf", guard));
  REQUIRE(l.until([&] { return guard.snapshot(uv_now(&l.loop), wall_ms()).lease > 0; }, 2000));
  double lease = guard.snapshot(uv_now(&l.loop), wall_ms()).lease;
  CHECK(lease <= static_cast<double>(guard.lease_size()));
  CHECK(cli.run({"HGET", "t:quota:bf", "used"}) == std::to_string(static_cast<int>(lease) + 1));
  CHECK(guard.admit(uv_now(&l.loop), wall_ms()).ok());
  CHECK(a.state.store.counters.quota_takes == 1);

  // Another instance tripped a 429 cool-down: stored, published, and a take refuses.
  Cli sub(redis.port());
  CHECK(sub.run({"SUBSCRIBE", "t:quota"}) == "subscribe");
  uint64_t until = wall_ms() + 5000;
  a.client->quota_cool("bf", 429, until);
  REQUIRE(l.until([&] { return cli.run({"EXISTS", "t:quota:bf:cool"}) == "1"; }, 2000));
  std::optional<QuotaCooled> m = decode_quota_cooled(sub.next_message());
  REQUIRE(m.has_value());
  CHECK(*m == QuotaCooled{"bf", 429, until, "inst-a"});
  CHECK(cli.run({"GET", "t:quota:bf:cool"}) == "429");
  long long pttl = std::stoll(cli.run({"PTTL", "t:quota:bf:cool"}));
  CHECK(pttl > 0);
  CHECK(pttl <= 5000);

  QuotaGuard other(QuotaLimits{100, 500, 1000}, now);
  other.set_shared(true);
  REQUIRE(other.admit(now, wall_ms()).need_lease);
  REQUIRE(a.client->quota_take("bf", other));
  // Until the answer comes, admit() uses the local fallback; after it, it refuses for the
  // cool-down, held as another instance's (not counted as an upstream 429 of ours).
  QuotaAdmission refused;
  REQUIRE(l.until(
      [&] {
        refused = other.admit(uv_now(&l.loop), wall_ms());
        return refused.refusal == QuotaRefusal::cooldown_429;
      },
      2000));
  CHECK(refused.refusal == QuotaRefusal::cooldown_429);
  CHECK(refused.status == 429);
  CHECK(refused.retry_after_s >= 1);
  CHECK(other.snapshot(uv_now(&l.loop), wall_ms()).lease == 0);
  CHECK(other.snapshot(uv_now(&l.loop), wall_ms()).upstream_429 == 0);
}
