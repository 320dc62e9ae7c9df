// RedisLink against a real redis-server that the test starts on a free loopback port
// (redis-server has no "port 0"): round trip, per-command timeout while Redis is SIGSTOPped
// and the late reply dropped, stuck detection, commands failing at once when Redis dies,
// reconnect after a restart, AUTH. The server is SIGKILLed by RAII (and by PDEATHSIG if
// the test process itself dies). Skipped when redis-server is not installed.
#include <doctest.h>
#include <uv.h>

#include <chrono>
#include <string>
#include <vector>

#include "lb/core/store_scripts.h"
#include "lb/net/redis_link.h"
#include "tests/lb/net/redis_server.h"

using namespace lb::net;
using namespace redis_test;

namespace {

RedisLinkOptions opts(uint16_t port, std::string password = "", uint64_t timeout_ms = 1000) {
  RedisLinkOptions o;
  o.ip = "127.0.0.1";
  o.port = port;
  o.password = std::move(password);
  o.timeout_ms = timeout_ms;
  return o;
}

// A RedisLink on `l`, connected with `o`; constructed once it is up.
struct UpLink : RedisLink {
  UpLink(Loop& l, const RedisLinkOptions& o) : RedisLink(&l.loop) {
    REQUIRE(connect(o));
    REQUIRE(l.until([&] { return state() == LinkState::up; }, 3000));
  }
};

struct Outcome {
  int calls = 0;
  LinkResult result = LinkResult::failed;
  std::string text;
  RedisLink::ReplyFn fn() {
    return [this](LinkResult r, const redisReply* reply) {
      ++calls;
      result = r;
      if (reply && reply->str) text.assign(reply->str, reply->len);
    };
  }
};

}  // namespace

TEST_CASE("redis link: back-off doubles from min to max within the jitter") {
  CHECK(link_backoff_ms(0, 100, 5000, 1.0) == 100);
  CHECK(link_backoff_ms(1, 100, 5000, 1.0) == 200);
  CHECK(link_backoff_ms(5, 100, 5000, 1.0) == 3200);
  CHECK(link_backoff_ms(6, 100, 5000, 1.0) == 5000);
  CHECK(link_backoff_ms(60, 100, 5000, 1.0) == 5000);
  CHECK(link_backoff_ms(0, 100, 5000, 0.8) == 80);
  CHECK(link_backoff_ms(6, 100, 5000, 1.2) == 6000);
  CHECK(link_backoff_ms(0, 100, 5000, 3.0) == 120);  // jitter is clamped to ±20%
}

TEST_CASE("redis link: a host name is refused (no getaddrinfo on a worker)") {
  Loop l;
  RedisLink link(&l.loop);
  auto o = opts(6379);
  o.ip = "localhost";
  CHECK_FALSE(link.connect(o));
  CHECK(link.state() == LinkState::down);
  CHECK(link.last_error().find("numeric") != std::string::npos);
  Outcome out;
  CHECK(link.command({"PING"}, out.fn()) == 0);
  CHECK(out.calls == 0);
}

TEST_CASE_FIXTURE(RedisLoopCase,
                  "redis link: round trip, cancel, and a late reply after SIGSTOP is dropped") {
  if (!started()) return;
  RedisLink link(&l.loop);
  std::vector<LinkState> states;
  link.on_state([&](LinkState s) { states.push_back(s); });
  REQUIRE(link.connect(opts(redis.port())));
  REQUIRE(l.until([&] { return link.state() == LinkState::up; }, 3000));

  Outcome set, get;
  CHECK(link.command({"SET", "k", "v1|kupo-2|7|none"}, set.fn()) != 0);
  CHECK(link.command({"GET", "k"}, get.fn()) != 0);
  REQUIRE(l.until([&] { return get.calls == 1; }, 2000));
  CHECK(set.calls == 1);
  CHECK(set.result == LinkResult::reply);
  CHECK(get.result == LinkResult::reply);
  CHECK(get.text == "v1|kupo-2|7|none");

  // Cancelled: the reply comes back and is dropped.
  Outcome cancelled, after;
  Ticket t = link.command({"GET", "k"}, cancelled.fn());
  link.cancel(t);
  link.command({"PING"}, after.fn());
  REQUIRE(l.until([&] { return after.calls == 1; }, 2000));
  CHECK(cancelled.calls == 0);

  // Silent Redis: the command times out at its own deadline...
  redis.pause();
  Outcome slow;
  auto t0 = std::chrono::steady_clock::now();
  link.command({"GET", "k"}, slow.fn(), 80);
  REQUIRE(l.until([&] { return slow.calls == 1; }, 2000));
  long waited = ms_since(t0);
  CHECK(slow.result == LinkResult::timeout);
  CHECK(waited >= 70);
  CHECK(waited < 400);
  CHECK(link.timeouts() == 1);
  CHECK(link.state() == LinkState::up);  // not yet stuck (500 ms)
  // ...and its late reply, once Redis runs again, is dropped: replies come in order, so
  // when the next command is answered the late one has been seen.
  redis.resume();
  Outcome next;
  link.command({"GET", "k"}, next.fn());
  REQUIRE(l.until([&] { return next.calls == 1; }, 2000));
  CHECK(next.result == LinkResult::reply);
  CHECK(next.text == "v1|kupo-2|7|none");
  CHECK(slow.calls == 1);
  CHECK(link.outstanding() == 0);
  CHECK(link.connects() == 1);
  CHECK(states == std::vector<LinkState>{LinkState::connecting, LinkState::up});
}

TEST_CASE_FIXTURE(RedisLoopCase,
                  "redis link: a silent Redis is declared stuck, then the link reconnects") {
  if (!started()) return;
  UpLink link(l, opts(redis.port(), "", 50));
  redis.pause();
  Outcome a;
  link.command({"PING"}, a.fn());
  REQUIRE(l.until([&] { return a.calls == 1; }, 1000));
  CHECK(a.result == LinkResult::timeout);
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(l.until([&] { return link.state() == LinkState::down; }, 3000));
  long waited = ms_since(t0);
  CHECK(waited < 1000);
  CHECK(link.stuck() == 1);
  Outcome b;
  CHECK(link.command({"PING"}, b.fn()) == 0);  // down: not sent, never called
  redis.resume();
  REQUIRE(l.until([&] { return link.state() == LinkState::up; }, 3000));
  CHECK(link.connects() == 2);
  Outcome c;
  link.command({"PING"}, c.fn());
  REQUIRE(l.until([&] { return c.calls == 1; }, 2000));
  CHECK(c.result == LinkResult::reply);
  CHECK(c.text == "PONG");
  CHECK(b.calls == 0);
  CHECK(a.calls == 1);
}

TEST_CASE_FIXTURE(
    RedisLoopCase,
    "redis link: Redis killed fails outstanding commands at once; restart reconnects") {
  if (!started()) return;
  UpLink link(l, opts(redis.port(), "", 50));
  redis.pause();
  Outcome pending;
  link.command({"PING"}, pending.fn(), 5000);
  l.until([] { return false; }, 30);
  CHECK(pending.calls == 0);
  redis.kill();  // the kernel resets the connection: EOF at once
  // (hiredis 0.14's own libuv adapter missed the reset: only stuck detection, at 500 ms.)
  REQUIRE(l.until([&] { return pending.calls == 1; }, 400));
  CHECK(pending.result == LinkResult::failed);
  CHECK(link.state() != LinkState::up);
  REQUIRE(redis.restart());
  REQUIRE(l.until([&] { return link.state() == LinkState::up; }, 8000));
  CHECK(link.connects() >= 2);
  Outcome c;
  link.command({"ECHO", "back"}, c.fn());
  REQUIRE(l.until([&] { return c.calls == 1; }, 2000));
  CHECK(c.text == "back");
}

TEST_CASE("redis link: AUTH first; a wrong password keeps the link down") {
  if (!have_redis()) return;
  RedisServer redis("s3cret-pw");
  REQUIRE(redis.ok());
  Loop l;
  {
    UpLink good(l, opts(redis.port(), "s3cret-pw"));
    Outcome c;
    good.command({"SET", "a", "1"}, c.fn());
    REQUIRE(l.until([&] { return c.calls == 1; }, 2000));
    CHECK(c.result == LinkResult::reply);
    CHECK(c.text == "OK");

    RedisLink bad(&l.loop);
    int ups = 0;
    bad.on_state([&](LinkState s) { ups += s == LinkState::up; });
    REQUIRE(bad.connect(opts(redis.port(), "wrong")));
    REQUIRE(l.until([&] { return bad.last_error() == "authentication failed"; }, 3000));
    l.until([] { return false; }, 400);  // at least one retry at the back-off's pace
    CHECK(ups == 0);
    CHECK(bad.state() != LinkState::up);
    CHECK(bad.connects() >= 2);
    CHECK(bad.last_error().find("wrong") == std::string::npos);
  }
  l.until([] { return false; }, 20);
}

TEST_CASE_FIXTURE(RedisLoopCase,
                  "redis link: scripts are loaded on connect, and again after NOSCRIPT") {
  if (!started()) return;
  RedisLink link(&l.loop);
  link.set_scripts({std::string(lb::store_scripts::pin_claim)});
  REQUIRE(link.script_sha(0).size() == 40);
  REQUIRE(link.connect(opts(redis.port())));
  REQUIRE(l.until([&] { return link.state() == LinkState::up; }, 3000));
  // Sent at once after up: the loads are ahead of it on the wire.
  int n = 0;
  std::vector<std::string> got;
  auto collect = [&](LinkResult r, const redisReply* reply) {
    ++n;
    got.clear();
    if (r != LinkResult::reply) return got.push_back("no reply");
    if (reply->type == REDIS_REPLY_ERROR) return got.push_back(std::string(reply->str, 8));
    for (size_t i = 0; i < reply->elements; ++i) {
      const redisReply* e = reply->element[i];
      got.push_back(e->type == REDIS_REPLY_INTEGER ? std::to_string(e->integer)
                                                   : std::string(e->str, e->len));
    }
  };
  CHECK(link.evalsha(0, {"corral:pin:1"}, {"v1|kupo-1|5|none", "60000"}, collect) != 0);
  REQUIRE(l.until([&] { return n == 1; }, 2000));
  CHECK(got == std::vector<std::string>{"1", "v1|kupo-1|5|none"});

  Outcome flushed;
  link.command({"SCRIPT", "FLUSH"}, flushed.fn());
  // Two in flight both miss (one reload); the next finds the script again.
  link.evalsha(0, {"corral:pin:1"}, {"v1|kupo-2|6|none", "60000"}, collect);
  link.evalsha(0, {"corral:pin:1"}, {"v1|kupo-2|6|none", "60000"}, collect);
  REQUIRE(l.until([&] { return n == 3; }, 2000));
  CHECK(got == std::vector<std::string>{"NOSCRIPT"});
  CHECK(link.noscripts() == 2);
  link.evalsha(0, {"corral:pin:1"}, {"v1|kupo-2|6|none", "60000"}, collect);
  REQUIRE(l.until([&] { return n == 4; }, 2000));
  CHECK(got == std::vector<std::string>{"0", "v1|kupo-1|5|none"});
  CHECK(link.evalsha(7, {}, {}, collect) == 0);  // no such script
}

TEST_CASE_FIXTURE(RedisLoopCase,
                  "redis link: a SIGSTOPped Redis that accepts TCP never makes the link up") {
  if (!started()) return;
  RedisLink link(&l.loop);
  link.set_scripts({std::string(lb::store_scripts::pin_claim)});
  RedisLink plain(&l.loop);  // no scripts: a PING is its first answer
  int ups = 0;
  link.on_state([&](LinkState s) { ups += s == LinkState::up; });
  plain.on_state([&](LinkState s) { ups += s == LinkState::up; });
  redis.pause();
  // The kernel completes the TCP handshake from the listen backlog; Redis answers nothing.
  REQUIRE(link.connect(opts(redis.port(), "", 50)));
  REQUIRE(plain.connect(opts(redis.port(), "", 50)));
  l.pause(2600);
  CHECK(ups == 0);
  CHECK(link.state() != LinkState::up);
  CHECK(plain.state() != LinkState::up);
  CHECK(link.last_error().find("no answer") != std::string::npos);
  // Each attempt waits the connect limit (1 s) and the back-off grows: no fast cycling.
  CHECK(link.connects() <= 3);
  CHECK(plain.connects() <= 3);
  redis.resume();
  // Attempts start once per back-off at most, counted from the start of the attempt: back
  // within about one connect limit.
  REQUIRE(l.until([&] { return link.state() == LinkState::up && plain.state() == LinkState::up; },
                  2000));
  CHECK(ups == 2);
  // Up means the scripts are there: the first EVALSHA finds its script.
  Outcome e;
  link.evalsha(0, {"corral:pin:9"}, {"v1|kupo-1|5|none", "60000"}, e.fn());
  REQUIRE(l.until([&] { return e.calls == 1; }, 2000));
  CHECK(e.result == LinkResult::reply);
  CHECK(link.noscripts() == 0);
}

TEST_CASE_FIXTURE(RedisLoopCase,
                  "redis link: an idle link notices a SIGSTOPped Redis (idle PING, then stuck)") {
  if (!started()) return;
  UpLink link(l, opts(redis.port(), "", 50));
  l.pause(1200);  // idle PINGs answered: still up, never stuck
  CHECK(link.state() == LinkState::up);
  CHECK(link.stuck() == 0);
  CHECK(link.outstanding() == 0);
  redis.pause();
  auto t0 = std::chrono::steady_clock::now();
  // max(4 × 50, 500) ms after an idle PING sent at most 1 s from now.
  REQUIRE(l.until([&] { return link.state() != LinkState::up; }, 1500 + 500));
  long waited = ms_since(t0);
  CHECK(waited >= 450);
  CHECK(link.stuck() == 1);
  redis.resume();
  REQUIRE(l.until([&] { return link.state() == LinkState::up; }, 3000));
}

TEST_CASE_FIXTURE(
    RedisLoopCase,
    "redis link: set_timeout changes the default command timeout without reconnecting") {
  if (!started()) return;
  UpLink link(l, opts(redis.port(), "", 5000));
  link.set_timeout(40);
  CHECK(link.timeout_ms() == 40);
  redis.pause();
  Outcome slow;
  auto t0 = std::chrono::steady_clock::now();
  link.command({"PING"}, slow.fn());  // the link's default timeout
  REQUIRE(l.until([&] { return slow.calls == 1; }, 3000));
  long waited = ms_since(t0);
  CHECK(slow.result == LinkResult::timeout);
  CHECK(waited < 400);
  // Stuck detection follows too: max(4 × 40, 500) ms, not 20 s.
  REQUIRE(l.until([&] { return link.state() != LinkState::up; }, 1500));
  CHECK(link.connects() == 1);  // no reconnect before the stuck one
  redis.resume();
}
