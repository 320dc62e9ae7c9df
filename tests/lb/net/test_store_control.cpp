// StoreControl (the control loop's side of the shared pin store) against a real
// redis-server on a free loopback port: fleet counts between two instances and their expiry,
// the flush of writes queued while Redis was down (a claim that lands, a claim and a move
// that lose and are adopted), other instances' re-pins and cool-downs over pub/sub (our own
// ignored), and the store's state with one log line per outage. Skipped without redis-server.
#include <doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "lb/core/pin_codec.h"
#include "lb/core/store_messages.h"
#include "lb/net/proxy_state.h"
#include "lb/net/redis_link.h"
#include "lb/net/runtime.h"
#include "lb/net/store_control.h"
#include "lb/net/wall_clock.h"
#include "tests/lb/net/redis_server.h"

using namespace lb;
using namespace lb::net;
using namespace redis_test;

namespace {

// --- One corral instance: its ProxyState, a runtime with pool kupo (k1..k3) and pool bf
// (b1..b3): backend names are unique across pools, as the loader requires.
const char* kPrefix = "t:";

struct Node {
  ProxyState state{10'000, 3'600'000};
  std::shared_ptr<Runtime> rt = std::make_shared<Runtime>();
  std::unique_ptr<StoreControl> control;

  Node(uv_loop_t* loop, uint16_t port, std::string instance) {
    state.store.instance = std::move(instance);
    config::StickyStore s;
    s.redis = "127.0.0.1:" + std::to_string(port);
    s.host = "127.0.0.1";
    s.port = port;
    s.prefix = kPrefix;
    s.timeout_ms = 200;
    s.sync_interval_ms = 100;
    s.max_pending = 1000;
    rt->config.sticky.store = s;
    rt->config.sticky.ttl_ms = 60'000;
    rt->store = RuntimeStore{"127.0.0.1", port, ""};
    for (const char* pool : {"kupo", "bf"}) {
      RuntimePool p;
      p.name = pool;
      const bool kupo = std::string(pool) == "kupo";
      for (const char* b : kupo ? std::vector<const char*>{"k1", "k2", "k3"}
                                : std::vector<const char*>{"b1", "b2", "b3"}) {
        RuntimeBackend rb;
        rb.name = b;
        rb.ref = state.registry.backend(pool, b).ref;
        p.backends.push_back(std::move(rb));
      }
      rt->pools.push_back(std::move(p));
    }
    state.runtime.store(rt);
    control = std::make_unique<StoreControl>(loop, state);
    control->configure(*rt);
  }
  BackendRef ref(const char* pool, const char* b) { return *state.registry.find(pool, b); }
  bool up() const { return state.store.state.load() == static_cast<uint8_t>(LinkState::up); }
};

SessionKey key(uint64_t n) { return pool_session_key(SessionKey{n, n * 7 + 1}, name_hash("kupo")); }

// A plain link for what "another instance" does: SET, GET, PUBLISH.
struct Peer {
  RedisLink link;
  Loop& l;
  Peer(Loop& loop, uint16_t port) : link(&loop.loop), l(loop) {
    RedisLinkOptions o;
    o.ip = "127.0.0.1";
    o.port = port;
    o.timeout_ms = 1000;
    link.connect(o);
    REQUIRE(l.until([&] { return link.state() == LinkState::up; }, 3000));
  }
  std::string run(std::vector<std::string_view> argv) {
    bool done = false;
    std::string text;
    link.command(argv, [&](LinkResult r, const redisReply* reply) {
      done = true;
      if (r == LinkResult::reply && reply->type == REDIS_REPLY_STRING)
        text.assign(reply->str, reply->len);
      else if (r == LinkResult::reply && reply->type == REDIS_REPLY_INTEGER)
        text = std::to_string(reply->integer);
    });
    REQUIRE(l.until([&] { return done; }, 2000));
    return text;
  }
};

// Sends stderr to a temporary file until text() (or destruction, when a REQUIRE threw).
class StderrCapture {
 public:
  StderrCapture() {
    fd_ = mkstemp(path_);
    saved_ = dup(2);
    dup2(fd_, 2);
  }
  ~StderrCapture() { text(); }
  std::string text() {
    if (saved_ < 0) return out_;
    dup2(saved_, 2);
    close(saved_);
    saved_ = -1;
    out_.assign(1 << 16, '\0');
    ssize_t n = pread(fd_, out_.data(), out_.size(), 0);
    out_.resize(n > 0 ? static_cast<size_t>(n) : 0);
    close(fd_);
    unlink(path_);
    return out_;
  }

 private:
  char path_[32] = "/tmp/corral-store-test-XXXXXX";
  int fd_ = -1;
  int saved_ = -1;
  std::string out_;
};

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE_FIXTURE(
    RedisLoopCase,
    "store control: fleet counts cross instances; a stopped instance's counts expire") {
  if (!started()) return;
  Node a(&l.loop, redis.port(), "host-a:1:0000000a");
  auto b = std::make_unique<Node>(&l.loop, redis.port(), "host-b:2:0000000b");
  const uint64_t now = uv_now(&l.loop);
  for (uint64_t i = 1; i <= 3; ++i) a.state.sessions.pin(key(i), a.ref("kupo", "k1"), now);
  for (uint64_t i = 11; i <= 12; ++i) b->state.sessions.pin(key(i), b->ref("kupo", "k2"), now);
  b->state.sessions.pin(key(20), b->ref("bf", "b1"), now);

  REQUIRE(l.until(
      [&] {
        return a.state.store.fleet.others(a.ref("kupo", "k2")) == 2 &&
               b->state.store.fleet.others(b->ref("kupo", "k1")) == 3;
      },
      3000));
  CHECK(a.state.store.fleet.others(a.ref("bf", "b1")) == 1);
  CHECK(a.state.store.fleet.others(a.ref("kupo", "k1")) == 0);  // our own are not "others"
  CHECK(b->state.store.fleet.others(b->ref("kupo", "k2")) == 0);
  CHECK(a.state.store.fleet.live_instances() == 2);
  CHECK(b->state.store.fleet.live_instances() == 2);
  CHECK(a.state.store.counters.syncs.load() >= 1);

  // B's counts move with its table.
  b->state.sessions.pin(key(13), b->ref("kupo", "k2"), now);
  REQUIRE(l.until([&] { return a.state.store.fleet.others(a.ref("kupo", "k2")) == 3; }, 2000));

  // B stops: within 3 × sync_interval its counts key and its instances entry expire.
  b.reset();
  REQUIRE(l.until(
      [&] {
        return a.state.store.fleet.others(a.ref("kupo", "k2")) == 0 &&
               a.state.store.fleet.live_instances() == 1;
      },
      3000));
  CHECK(a.state.store.fleet.others(a.ref("bf", "b1")) == 0);
}

TEST_CASE_FIXTURE(
    RedisLoopCase,
    "store control: writes queued while Redis was down are flushed; losers are adopted") {
  if (!started()) return;
  Node a(&l.loop, redis.port(), "host-a:1:0000000a");
  REQUIRE(l.until([&] { return a.up(); }, 3000));
  redis.kill();
  REQUIRE(l.until([&] { return !a.up(); }, 2000));

  // A claim made during the outage lands once Redis is back.
  const uint64_t now = uv_now(&l.loop);
  a.state.sessions.pin(key(1), a.ref("kupo", "k1"), now);
  const std::string k1 = pin_key_text(kPrefix, key(1));
  a.state.store.pending.push({k1, "", encode_pin("k1", 100, MoveReason::none)});
  REQUIRE(redis.restart());
  REQUIRE(l.until([&] { return a.state.store.counters.flushed.load() == 1; }, 8000));
  CHECK(a.state.store.pending.size() == 0);
  CHECK(a.state.store.counters.flush_adopted.load() == 0);
  Peer peer(l, redis.port());
  CHECK(peer.run({"GET", k1}) == "v1|k1|100|none");

  // Another instance claimed key 2 first, and moved key 3 to k3: both are adopted.
  const std::string k2 = pin_key_text(kPrefix, key(2));
  const std::string k3 = pin_key_text(kPrefix, key(3));
  peer.run({"SET", k2, "v1|k2|555|none"});
  peer.run({"SET", k3, "v1|k3|777|down"});
  a.state.sessions.pin(key(2), a.ref("kupo", "k1"), now);
  a.state.sessions.pin(key(3), a.ref("kupo", "k2"), now);
  a.state.store.pending.push({k2, "", encode_pin("k1", 10, MoveReason::none)});
  a.state.store.pending.push({k3, "k1", encode_pin("k2", 10, MoveReason::down)});
  // And our move of key 1 (k1 -> k2) wins: the store holds it.
  a.state.store.pending.push({k1, "k1", encode_pin("k2", 101, MoveReason::down)});
  REQUIRE(l.until([&] { return a.state.store.counters.flushed.load() == 4; }, 3000));
  CHECK(a.state.store.counters.flush_adopted.load() == 2);
  CHECK(a.state.store.counters.invalidations_out.load() == 1);
  auto p2 = a.state.sessions.peek(key(2));
  REQUIRE(p2);
  CHECK(p2->backend == a.ref("kupo", "k2"));
  CHECK(p2->last_slot == 555);
  auto p3 = a.state.sessions.peek(key(3));
  REQUIRE(p3);
  CHECK(p3->backend == a.ref("kupo", "k3"));
  CHECK(p3->last_move == static_cast<uint8_t>(MoveReason::down));
  CHECK(peer.run({"GET", k2}) == "v1|k2|555|none");  // the first writer's pin stays
  CHECK(peer.run({"GET", k1}) == "v1|k2|101|down");
  CHECK(a.state.store.pending.size() == 0);

  // No local pin: the pool is our own choice's (k1: kupo), and k2 is adopted in it.
  const std::string k5 = pin_key_text(kPrefix, key(5));
  peer.run({"SET", k5, "v1|k2|9|none"});
  a.state.store.pending.push({k5, "", encode_pin("k1", 1, MoveReason::none)});
  REQUIRE(l.until([&] { return a.state.store.counters.flushed.load() == 5; }, 3000));
  CHECK(a.state.store.counters.flush_adopted.load() == 3);
  auto p5 = a.state.sessions.peek(key(5));
  REQUIRE(p5);
  CHECK(p5->backend == a.ref("kupo", "k2"));

  // The stored backend is one the Registry knows (an older config had it) but that is
  // not configured now: not adopted, the next request re-places.
  a.state.registry.backend("kupo", "k9");
  const std::string k6 = pin_key_text(kPrefix, key(6));
  peer.run({"SET", k6, "v1|k9|9|none"});
  a.state.store.pending.push({k6, "", encode_pin("k1", 1, MoveReason::none)});
  REQUIRE(l.until([&] { return a.state.store.counters.flushed.load() == 6; }, 3000));
  CHECK(a.state.store.counters.flush_adopted.load() == 4);
  CHECK_FALSE(a.state.sessions.peek(key(6)));
  // Nor one of another pool (b1 is bf's; the key is kupo's).
  const std::string k7 = pin_key_text(kPrefix, key(7));
  peer.run({"SET", k7, "v1|b1|9|none"});
  a.state.store.pending.push({k7, "", encode_pin("k1", 1, MoveReason::none)});
  REQUIRE(l.until([&] { return a.state.store.counters.flushed.load() == 7; }, 3000));
  CHECK_FALSE(a.state.sessions.peek(key(7)));

  // A queued move whose key or value cannot be decoded is not written (its message
  // would be empty): dropped and counted as an error; the writes after it still go.
  const uint64_t errors = a.state.store.counters.errors.load();
  const std::string k8 = pin_key_text(kPrefix, key(8));
  a.state.store.pending.push({k8, "k1", "garbage"});
  a.state.store.pending.push({"t:pin:nothex", "k1", encode_pin("k2", 1, MoveReason::down)});
  const std::string k9 = pin_key_text(kPrefix, key(9));
  a.state.store.pending.push({k9, "", encode_pin("k3", 1, MoveReason::none)});
  REQUIRE(l.until([&] { return a.state.store.counters.flushed.load() == 8; }, 3000));
  CHECK(a.state.store.counters.errors.load() == errors + 2);
  CHECK(a.state.store.pending.size() == 0);
  CHECK(peer.run({"GET", k9}) == "v1|k3|1|none");
  CHECK(peer.run({"EXISTS", k8}) == "0");
}

TEST_CASE_FIXTURE(RedisLoopCase,
                  "store control: another instance's re-pin drops our copy, our own is ignored") {
  if (!started()) return;
  Node a(&l.loop, redis.port(), "host-a:1:0000000a");
  REQUIRE(l.until([&] { return a.control->subscribed(); }, 3000));
  const uint64_t now = uv_now(&l.loop);
  for (uint64_t i = 1; i <= 4; ++i) a.state.sessions.pin(key(i), a.ref("kupo", "k1"), now);
  Peer peer(l, redis.port());
  const std::string channel = std::string(kPrefix) + "pins";
  auto publish = [&](PinMoved m) { peer.run({"PUBLISH", channel, encode_pin_moved(m)}); };
  publish({key(1), "k1", "k2", "host-a:1:0000000a"});  // ours: already applied
  publish({key(2), "k3", "k2", "host-b:2:0000000b"});  // we follow k1: a newer pin, kept
  publish({key(3), "k1", "k2", "host-b:2:0000000b"});  // dropped
  publish({key(4), "", "k1", "host-b:2:0000000b"});    // missing in store, we hold k1: kept
  peer.run({"PUBLISH", channel, "garbage|x"});
  REQUIRE(l.until([&] { return !a.state.sessions.peek(key(3)); }, 2000));
  l.pause(50);
  CHECK(a.state.sessions.peek(key(1)));
  CHECK(a.state.sessions.peek(key(2)));
  CHECK(a.state.sessions.peek(key(4)));
  CHECK(a.state.store.counters.invalidations_in.load() == 1);
  publish({key(4), "", "k2", "host-b:2:0000000b"});  // missing in store, we hold k1: dropped
  REQUIRE(l.until([&] { return !a.state.sessions.peek(key(4)); }, 2000));
  CHECK(a.state.store.counters.invalidations_in.load() == 2);
}

TEST_CASE_FIXTURE(RedisLoopCase,
                  "store control: another instance's cool-down cools the pool's guard") {
  if (!started()) return;
  Node a(&l.loop, redis.port(), "host-a:1:0000000a");
  auto bf = a.state.registry.quota("bf", QuotaLimits{10, 10, 0});
  auto kupo = a.state.registry.quota("kupo", QuotaLimits{10, 10, 0});
  REQUIRE(l.until([&] { return a.control->subscribed(); }, 3000));
  CHECK(bf->shared());  // the store is up: leases
  Peer peer(l, redis.port());
  const std::string channel = std::string(kPrefix) + "quota";
  const uint64_t until = wall_ms() + 60'000;
  peer.run({"PUBLISH", channel, encode_quota_cooled({"kupo", 429, until, "host-a:1:0000000a"})});
  peer.run({"PUBLISH", channel, encode_quota_cooled({"bf", 429, until, "host-b:2:0000000b"})});
  REQUIRE(l.until([&] { return bf->cooling(uv_now(&l.loop), wall_ms()); }, 2000));
  CHECK_FALSE(kupo->cooling(uv_now(&l.loop), wall_ms()));  // our own message
}

TEST_CASE_FIXTURE(
    RedisLoopCase,
    "store control: Redis killed: down, logged once; back: up, logged with the outage") {
  if (!started()) return;
  Node a(&l.loop, redis.port(), "host-a:1:0000000a");
  auto bf = a.state.registry.quota("bf", QuotaLimits{10, 10, 0});
  REQUIRE(l.until([&] { return a.up() && a.control->subscribed(); }, 3000));
  CHECK(bf->shared());
  const uint64_t since_up = a.state.store.since_unix_ms.load();
  CHECK(since_up > 0);
  StderrCapture capture;
  {
    redis.kill();
    REQUIRE(l.until([&] { return !a.up(); }, 2000));
    CHECK_FALSE(bf->shared());
    l.pause(800);  // several failed reconnects: still one line
    CHECK(a.state.store.state.load() != static_cast<uint8_t>(LinkState::up));
    CHECK_FALSE(a.state.store.last_error().empty());
    REQUIRE(redis.restart());
    REQUIRE(l.until([&] { return a.up(); }, 8000));
    // The subscriber subscribes again on its own reconnect.
    REQUIRE(l.until([&] { return a.control->subscribed(); }, 8000));
  }
  const std::string log = capture.text();
  CHECK(count(log, "shared store 127.0.0.1:" + std::to_string(redis.port()) + ": down") == 1);
  CHECK(count(log, "up again after") == 1);
  CHECK(bf->shared());
  CHECK(a.state.store.since_unix_ms.load() >= since_up);
}

TEST_CASE_FIXTURE(RedisLoopCase, "store control: no store closes the links and forgets the fleet") {
  if (!started()) return;
  Node a(&l.loop, redis.port(), "");
  auto bf = a.state.registry.quota("bf", QuotaLimits{10, 10, 0});
  REQUIRE(l.until([&] { return a.up(); }, 3000));
  CHECK(bf->shared());
  CHECK(a.state.store.instance.size() > 12);  // made once: "<host>:<pid>:<8 hex>"
  CHECK(a.state.store.instance.find(":" + std::to_string(getpid()) + ":") != std::string::npos);
  const std::string id = a.state.store.instance;
  Runtime none;
  a.control->configure(none);
  CHECK_FALSE(a.up());
  CHECK_FALSE(a.control->subscribed());
  CHECK_FALSE(bf->shared());
  CHECK(a.state.store.fleet.live_instances() == 1);
  a.control->configure(*a.rt);  // back: same instance id
  REQUIRE(l.until([&] { return a.up(); }, 3000));
  CHECK(a.state.store.instance == id);
}

TEST_CASE_FIXTURE(RedisLoopCase,
                  "redis link: subscribe mode gets every message, is never stuck, re-subscribes") {
  if (!started()) return;
  RedisLink sub(&l.loop);
  std::vector<std::string> got;
  sub.subscribe({"c1", "c2"}, [&](std::string_view channel, std::string_view msg) {
    got.push_back(std::string(channel) + "=" + std::string(msg));
  });
  RedisLinkOptions o;
  o.ip = "127.0.0.1";
  o.port = redis.port();
  o.timeout_ms = 50;  // stuck after 500 ms if the subscription counted as a command
  REQUIRE(sub.connect(o));
  REQUIRE(l.until([&] { return sub.subscribed() == 2; }, 3000));
  l.pause(700);
  CHECK(sub.state() == LinkState::up);
  CHECK(sub.stuck() == 0);
  CHECK(sub.connects() == 1);
  {
    Peer peer(l, redis.port());
    CHECK(peer.run({"PUBLISH", "c1", "one"}) == "1");
    peer.run({"PUBLISH", "other", "skipped"});
    peer.run({"PUBLISH", "c2", "two"});
    REQUIRE(l.until([&] { return got.size() == 2; }, 2000));
    CHECK(got == std::vector<std::string>{"c1=one", "c2=two"});
  }
  REQUIRE(redis.restart());
  REQUIRE(l.until([&] { return sub.connects() >= 2 && sub.subscribed() == 2; }, 8000));
  Peer peer(l, redis.port());
  peer.run({"PUBLISH", "c2", "three"});
  REQUIRE(l.until([&] { return got.size() == 3; }, 2000));
  CHECK(got.back() == "c2=three");
}

TEST_CASE_FIXTURE(
    RedisLoopCase,
    "store control: down past 3 x sync_interval forgets the others' counts, not the size") {
  if (!started()) return;
  Node a(&l.loop, redis.port(), "host-a:1:0000000a");
  Node b(&l.loop, redis.port(), "host-b:2:0000000b");
  auto bf = a.state.registry.quota("bf", QuotaLimits{10, 10, 0});
  b.state.sessions.pin(key(1), b.ref("kupo", "k3"), uv_now(&l.loop));
  REQUIRE(l.until([&] { return a.state.store.fleet.others(a.ref("kupo", "k3")) == 1; }, 3000));
  REQUIRE(a.state.store.fleet.live_instances() == 2);
  redis.kill();
  REQUIRE(l.until([&] { return !a.up(); }, 2000));
  CHECK_FALSE(bf->shared());  // local limits (divided by 2) meanwhile
  REQUIRE(l.until([&] { return a.state.store.fleet.others(a.ref("kupo", "k3")) == 0; }, 3000));
  CHECK(a.state.store.fleet.live_instances() == 2);
}

TEST_CASE_FIXTURE(RedisLoopCase,
                  "store control: one warning and one 'up again' per outage, whatever the links") {
  if (!started()) return;
  Node a(&l.loop, redis.port(), "host-a:1:0000000a");
  // Two workers' links to the same Redis (StoreClient's), with the store's scripts.
  std::vector<std::unique_ptr<RedisLink>> workers;
  for (int i = 0; i < 2; ++i) {
    auto w = std::make_unique<RedisLink>(&l.loop);
    RedisLinkOptions o;
    o.ip = "127.0.0.1";
    o.port = redis.port();
    o.timeout_ms = 50;
    w->connect(o);
    workers.push_back(std::move(w));
  }
  auto all_up = [&] {
    return a.up() && a.control->subscribed() && workers[0]->state() == LinkState::up &&
           workers[1]->state() == LinkState::up;
  };
  REQUIRE(l.until(all_up, 3000));
  StderrCapture capture;
  {
    redis.kill();
    REQUIRE(l.until([&] { return !a.up() && workers[0]->state() != LinkState::up; }, 2000));
    l.pause(700);  // reconnect attempts on every link
    REQUIRE(redis.restart());
    REQUIRE(l.until(all_up, 8000));
  }
  const std::string log = capture.text();
  INFO(log);
  CHECK(count(log, "level=warn") == 1);
  CHECK(count(log, "shared store 127.0.0.1:" + std::to_string(redis.port()) + ": down") == 1);
  CHECK(count(log, "up again after") == 1);
  CHECK(count(log, "level=info") == 1);
  CHECK(count(log, "msg=\"redis ") == 0);  // the links' own transitions are debug
}

TEST_CASE_FIXTURE(
    RedisLoopCase,
    "store control: a reloaded sticky.store.timeout reaches the links without reconnect") {
  if (!started()) return;
  Node a(&l.loop, redis.port(), "host-a:1:0000000a");
  // Connected afresh with timeout 5 s: stuck after 20 s.
  Runtime none;
  a.control->configure(none);
  a.rt->config.sticky.store->timeout_ms = 5000;
  a.rt->config.sticky.store->sync_interval_ms = 60'000;  // no fleet_sync traffic
  a.control->configure(*a.rt);
  REQUIRE(l.until([&] { return a.up() && a.control->subscribed(); }, 3000));
  // The reload: same address, timeout 200 ms (the control link's minimum): stuck after
  // max(4 × 200, 500) ms once the idle PING goes unanswered.
  a.rt->config.sticky.store->timeout_ms = 200;
  a.control->configure(*a.rt);
  CHECK(a.up());  // the connections stay
  redis.pause();
  REQUIRE(l.until([&] { return !a.up(); }, 1000 + 800 + 700));
  redis.resume();
  REQUIRE(l.until([&] { return a.up(); }, 5000));
}

TEST_CASE_FIXTURE(RedisLoopCase, "store control: the subscriber link's state is in StoreShared") {
  if (!started()) return;
  Node a(&l.loop, redis.port(), "host-a:1:0000000a");
  auto sub_up = [&] {
    return a.state.store.sub_state.load() == static_cast<uint8_t>(LinkState::up);
  };
  REQUIRE(l.until(sub_up, 3000));
  redis.kill();
  REQUIRE(l.until([&] { return !sub_up(); }, 2000));
  REQUIRE(redis.restart());
  REQUIRE(l.until(sub_up, 8000));
  Runtime none;
  a.control->configure(none);
  CHECK(a.state.store.sub_state.load() == static_cast<uint8_t>(LinkState::down));
}
