// Fill flights (lb/net/flight_fill.h, issue 16 "request collapsing", plan-16 §0.2): the
// identical cacheable GETs that miss on one worker while the first is under way wait for
// its answer, over the in-memory streams with the real ClientConn, CacheFill and Exchange.
#include <doctest.h>
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "lb/net/flight_fill.h"
#include "tests/lb/net/cache_rig.h"

namespace {

using namespace lb;
using namespace lb::net;

std::string datum_answer(const std::string& body, uint64_t checkpoint = 42) {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) +
         "\r\nX-Most-Recent-Checkpoint: " + std::to_string(checkpoint) + "\r\n\r\n" + body;
}

// The body of one whole response in `bytes` (Content-Length framed), or "<partial>".
std::string body_of(const std::string& bytes) {
  size_t end = bytes.find("\r\n\r\n");
  size_t cl = bytes.find("Content-Length: ");
  if (end == std::string::npos || cl == std::string::npos || cl > end) return "<partial>";
  size_t n = std::stoul(bytes.substr(cl + 16));
  if (bytes.size() < end + 4 + n) return "<partial>";
  return bytes.substr(end + 4, n);
}

bool is_hit(const std::string& bytes) {
  return bytes.find("X-Corral-Cache: hit\r\n") != std::string::npos;
}

struct Fleet {
  CacheRig rig;
  std::vector<std::shared_ptr<MemoryPeer>> clients;
  // Client i asks `path` as user "u<i>" (or `user` when given).
  std::shared_ptr<MemoryPeer> ask(const std::string& path, const std::string& user) {
    clients.push_back(rig.client());
    clients.back()->send(request(path, user));
    return clients.back();
  }
  uint64_t collapsed() { return rig.count(&CacheShard::collapsed); }
  size_t fills() { return rig.worker->flights().fill_count(); }
};

}  // namespace

TEST_CASE("fill flight: N clients, one upstream request, N-1 hits, no pins for followers") {
  Fleet f;
  const std::string path = datum_path(7);
  const std::string body = R"({"datum":"d87980"})";
  for (int i = 0; i < 6; ++i) f.ask(path, "u" + std::to_string(i));
  REQUIRE(f.rig.ups.size() == 1);  // the leader's request only
  CHECK(f.fills() == 1);
  CHECK(f.rig.cache().sum(&CacheShard::flights) == 1);
  // Followers are placed nowhere: only the leader has a pin.
  CHECK(f.rig.peek("u0").has_value());
  for (int i = 1; i < 6; ++i) CHECK_FALSE(f.rig.peek("u" + std::to_string(i)).has_value());
  auto up = f.rig.ups[0];
  up->answer_connect(0);
  CHECK(up->take().rfind("GET " + path + " HTTP/1.1\r\n", 0) == 0);
  up->send(datum_answer(body));
  std::string lead = f.clients[0]->take();
  CHECK(body_of(lead) == body);
  CHECK_FALSE(is_hit(lead));
  for (int i = 1; i < 6; ++i) {
    std::string got = f.clients[i]->take();
    CHECK(body_of(got) == body);
    CHECK(is_hit(got));
    CHECK(got.find("ETag: \"c1-") != std::string::npos);
    CHECK_FALSE(f.rig.peek("u" + std::to_string(i)).has_value());
  }
  CHECK(f.collapsed() == 5);
  CHECK(f.rig.count(&CacheShard::hits) == 5);
  // A miss is a request that went upstream: the leader alone (not 6 misses and 5 hits).
  CHECK(f.rig.count(&CacheShard::misses) == 1);
  CHECK(f.rig.count(&CacheShard::stores) == 1);
  CHECK(f.fills() == 0);
  CHECK(f.rig.cache().sum(&CacheShard::flights) == 0);
  CHECK(f.rig.ups.size() == 1);
  CHECK(f.rig.worker->request_states().size() == 6);
  // The connections go on: the next one is a plain hit.
  f.clients[3]->send(request(path, "u3"));
  CHECK(is_hit(f.clients[3]->take()));
}

TEST_CASE("fill flight: HEAD neither leads nor joins; a keyed HEAD waits for nobody") {
  Fleet f;
  const std::string path = datum_path(8);
  f.ask(path, "a");
  auto head = f.rig.client();
  head->send(request(path, "b", "", "HEAD"));
  CHECK(f.rig.ups.size() == 2);  // the HEAD went on its own
  CHECK(f.fills() == 1);
}

TEST_CASE("fill flight: a null answer is copied to followers pinned to its producer only") {
  Fleet f;
  const std::string path = datum_path(9);
  auto leader = f.ask(path, "a");
  auto same_pin = f.ask(path, "a");  // the same user: pinned to the producer
  auto keyless = f.ask(path, "");    // no pin: goes solo
  REQUIRE(f.rig.ups.size() == 1);
  auto up = f.rig.ups[0];
  up->answer_connect(0);
  up->take();
  up->send(datum_answer("null"));
  CHECK(body_of(leader->take()) == "null");
  std::string copy = same_pin->take();
  CHECK(copy.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(body_of(copy) == "null");
  CHECK(copy.find("X-Corral-Cache: collapsed\r\n") != std::string::npos);
  CHECK(copy.find("Content-Type: application/json\r\n") != std::string::npos);
  CHECK(f.rig.not_stored(NotStored::null_body) == 1);
  // The keyless one sent its own request (a plain miss, no flight of its own), on a new
  // connection or, when the per-worker spread picks the producer, on its pooled one.
  CHECK(keyless->take().empty());
  std::shared_ptr<MemoryPeer> solo;
  for (auto& u : f.rig.ups)
    if (u->written.rfind("GET " + path, 0) == 0) solo = u;
  REQUIRE(solo);
  solo->answer_connect(0);  // a no-op on a pooled connection
  solo->take();
  solo->send(datum_answer(R"({"datum":"01"})"));
  CHECK(body_of(keyless->take()) == R"({"datum":"01"})");
  CHECK(f.collapsed() == 1);
  // The leader and the keyless one that went solo; the copy is neither hit nor miss.
  CHECK(f.rig.count(&CacheShard::misses) == 2);
  CHECK(f.rig.count(&CacheShard::hits) == 0);
  CHECK(f.fills() == 0);
  CHECK_FALSE(f.rig.peek("").has_value());
}

TEST_CASE("fill flight: a 404 goes solo for a user pinned elsewhere") {
  Fleet f;
  const std::string path = datum_path(10);
  auto leader = f.ask(path, "a");
  // "b" is pinned first through an uncacheable request; wherever it lands.
  auto b = f.rig.client();
  b->send(request("/matches/x", "b"));
  REQUIRE(f.rig.ups.size() == 2);
  auto bup = f.rig.ups[1];
  bup->answer_connect(0);
  bup->take();
  bup->send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]");
  b->take();
  b->send(request(path, "b"));
  CHECK(f.fills() == 1);
  bool same = f.rig.peek("b")->backend == f.rig.peek("a")->backend;
  auto up = f.rig.ups[0];
  up->answer_connect(0);
  up->take();
  size_t before = f.rig.ups.size();
  up->send("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found");
  CHECK(body_of(leader->take()) == "not found");
  if (same) {
    std::string got = b->take();
    CHECK(got.rfind("HTTP/1.1 404 Not Found\r\n", 0) == 0);
    CHECK(body_of(got) == "not found");
    CHECK(f.rig.ups.size() == before);
  } else {
    CHECK(b->take().empty());
    // Its own request went out (pooled or new): somebody got it.
    size_t sent = 0;
    for (auto& u : f.rig.ups)
      if (u->written.find("GET " + path) != std::string::npos) ++sent;
    CHECK(sent == 1);
  }
}

TEST_CASE(
    "fill flight: the leader's client leaving mid-answer; the exchange goes on for the rest") {
  Fleet f;
  const std::string path = datum_path(11);
  const std::string body = R"({"datum":"abcdef"})";
  auto leader = f.ask(path, "a");
  auto b = f.ask(path, "b");
  auto c = f.ask(path, "c");
  REQUIRE(f.rig.ups.size() == 1);
  auto up = f.rig.ups[0];
  up->answer_connect(0);
  up->take();
  std::string whole = datum_answer(body);
  up->send(whole.substr(0, whole.size() - 4));
  leader->fail(UV_ECONNRESET);
  MemoryStream::settle();
  CHECK(leader->closed);
  CHECK_FALSE(up->closed);  // adopted: the upstream request goes on for the followers
  CHECK(f.rig.worker->flights().engine_count() == 1);
  CHECK(f.rig.worker->request_states().size() == 0);  // the leader's state is the engine's
  up->send(whole.substr(whole.size() - 4));
  CHECK(is_hit(b->take()));
  CHECK(body_of(c->take()) == body);
  CHECK(f.rig.ups.size() == 1);
  CHECK(f.fills() == 0);
  CHECK(f.rig.worker->flights().engine_count() == 0);
  CHECK(f.rig.worker->request_states().size() == 3);  // each given back once
  CHECK(f.collapsed() == 2);
}

TEST_CASE("fill flight: the leader gone, the last follower leaving aborts the upstream request") {
  Fleet f;
  const std::string path = datum_path(17);
  auto leader = f.ask(path, "a");
  auto b = f.ask(path, "b");
  auto c = f.ask(path, "c");
  auto up = f.rig.ups[0];
  up->answer_connect(0);
  leader->send_eof();  // gone before its answer started
  MemoryStream::settle();
  CHECK_FALSE(up->closed);
  b->fail(UV_ECONNRESET);
  MemoryStream::settle();
  CHECK_FALSE(up->closed);
  c->fail(UV_ECONNRESET);
  MemoryStream::settle();
  CHECK(up->closed);
  CHECK(f.fills() == 0);
  CHECK(f.rig.worker->flights().engine_count() == 0);
  CHECK(f.rig.worker->request_states().size() == 3);
}

TEST_CASE("fill flight: the leader gone and its backend failing: the followers go solo") {
  Fleet f;
  const std::string path = datum_path(18);
  auto leader = f.ask(path, "a");
  auto b = f.ask(path, "b");
  auto up = f.rig.ups[0];
  up->answer_connect(0);
  up->take();
  up->send("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\npart");
  leader->fail(UV_ECONNRESET);
  MemoryStream::settle();
  up->fail(UV_ECONNRESET);
  MemoryStream::settle();
  CHECK(f.rig.worker->flights().engine_count() == 0);
  std::shared_ptr<MemoryPeer> mine;
  for (auto& u : f.rig.ups)
    if (u.get() != up.get() && !u->closed) mine = u;
  REQUIRE(mine);
  mine->answer_connect(0);
  CHECK(mine->take().rfind("GET " + path, 0) == 0);
  mine->send(datum_answer("{}"));
  CHECK(body_of(b->take()) == "{}");
}

TEST_CASE("fill flight: the leader's backend failing before the head; followers still answered") {
  Fleet f;
  const std::string path = datum_path(12);
  const std::string body = R"({"datum":"77"})";
  auto leader = f.ask(path, "a");
  auto b = f.ask(path, "b");
  auto c = f.ask(path, "c");
  REQUIRE(f.rig.ups.size() == 1);
  std::string dead = CacheRig::backend_of(*f.rig.ups[0]);
  f.rig.ups[0]->answer_connect(UV_ECONNREFUSED);
  // The leader fails over; the followers keep waiting for its answer.
  REQUIRE(f.rig.ups.size() == 2);
  auto up = f.rig.ups[1];
  CHECK(CacheRig::backend_of(*up) != dead);
  up->answer_connect(0);
  CHECK(up->take().rfind("GET " + path, 0) == 0);
  up->send(datum_answer(body));
  CHECK(body_of(leader->take()) == body);
  CHECK(is_hit(b->take()));
  CHECK(body_of(c->take()) == body);
  CHECK(f.rig.ups.size() == 2);
  CHECK(f.collapsed() == 2);
}

TEST_CASE("fill flight: the leader's exchange failing (502) sends the followers solo") {
  Fleet f;
  const std::string path = datum_path(13);
  auto leader = f.ask(path, "a");
  auto b = f.ask(path, "b");
  REQUIRE(f.rig.ups.size() == 1);
  auto up = f.rig.ups[0];
  up->answer_connect(0);
  up->take();
  up->send("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\npartial");
  up->fail(UV_ECONNRESET);  // cut mid-body: the leader's client is cut too
  MemoryStream::settle();
  CHECK(f.fills() == 0);
  // b sent its own request and is answered.
  std::shared_ptr<MemoryPeer> mine;
  for (auto& u : f.rig.ups)
    if (u.get() != up.get() && !u->closed) mine = u;
  REQUIRE(mine);
  mine->answer_connect(0);
  CHECK(mine->take().rfind("GET " + path, 0) == 0);
  mine->send(datum_answer("{}"));
  CHECK(body_of(b->take()) == "{}");
}

TEST_CASE("fill flight: a follower leaving early is fine") {
  Fleet f;
  const std::string path = datum_path(14);
  auto leader = f.ask(path, "a");
  auto gone = f.ask(path, "b");
  auto stays = f.ask(path, "c");
  gone->fail(UV_ECONNRESET);
  MemoryStream::settle();
  CHECK(gone->closed);
  auto up = f.rig.ups[0];
  up->answer_connect(0);
  up->take();
  up->send(datum_answer("{\"x\":1}"));
  CHECK(body_of(leader->take()) == "{\"x\":1}");
  CHECK(is_hit(stays->take()));
  CHECK(f.collapsed() == 1);
  CHECK(f.rig.ups.size() == 1);
}

TEST_CASE("fill flight: a follower's header_timeout sends it solo; the stop deadline answers 503") {
  config::Config cfg = cache_config({});
  cfg.limits.header_timeout_ms = 30;
  CacheRig rig(cfg);
  const std::string path = datum_path(15);
  auto a = rig.client();
  a->send(request(path, "a"));
  auto b = rig.client();
  b->send(request(path, "b"));
  REQUIRE(rig.ups.size() == 1);
  for (int i = 0; i < 100 && rig.ups.size() == 1; ++i) {
    uv_run(rig.worker->loop(), UV_RUN_ONCE);
    MemoryStream::settle();
  }
  CHECK(rig.ups.size() == 2);  // b's own request
  CHECK(rig.worker->flights().fill_count() == 1);

  // A new follower, then the stop deadline: answered 503 and closed.
  auto c = rig.client();
  c->send(request(path, "c"));
  CHECK(rig.ups.size() == 2);
  rig.worker->stop(0);
  for (int i = 0; i < 10 && !c->closed; ++i) {
    uv_run(rig.worker->loop(), UV_RUN_NOWAIT);
    MemoryStream::settle();
  }
  CHECK(c->closed);
  CHECK(c->take().rfind("HTTP/1.1 503", 0) == 0);
  CHECK(rig.worker->flights().fill_count() == 0);
}

TEST_CASE("fill flight: collapse off, every miss goes upstream") {
  config::CacheConfig cc;
  cc.collapse = false;
  CacheRig rig(cc);
  for (int i = 0; i < 3; ++i) rig.client()->send(request(datum_path(16), "u" + std::to_string(i)));
  CHECK(rig.ups.size() == 3);
  CHECK(rig.worker->flights().fill_count() == 0);
  CHECK(rig.count(&CacheShard::misses) == 3);
}

TEST_CASE("fill flight: an http pool collapses only its cacheable prefixes; a Set-Cookie copy") {
  // Stream flights are for Kupo pools only: an http backend may answer by X-Api-Key,
  // project_id or Origin, which the key does not hold.
  config::CacheConfig cc;
  cc.prefixes = {"/static/"};
  cc.max_age_ms = 60'000;
  CacheRig rig(cache_config(cc, "http"));
  auto a = rig.client();
  auto b = rig.client();
  // The same user (one backend), different API keys, an uncacheable path: each goes.
  a->send(request("/api/me", "u", "X-Api-Key: alice\r\n"));
  b->send(request("/api/me", "u", "X-Api-Key: bob\r\n"));
  CHECK(rig.ups.size() == 2);
  CHECK(rig.worker->flights().size() == 0);
  // A cacheable prefix collapses as a fill flight, pool-wide.
  auto c = rig.client();
  auto d = rig.client();
  c->send(request("/static/x.json", "u"));
  d->send(request("/static/x.json", "u"));
  REQUIRE(rig.ups.size() == 3);
  CHECK(rig.worker->flights().fill_count() == 1);
  // Its answer sets a cookie: not stored, and the follower (pinned to the producer) gets
  // no copy of it: it goes upstream itself.
  auto up = rig.ups[2];
  up->answer_connect(0);
  up->take();
  up->send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: s=alice\r\n\r\nok");
  CHECK(c->take().find("Set-Cookie: s=alice") != std::string::npos);
  CHECK(rig.not_stored(NotStored::privacy) == 1);
  CHECK(rig.count(&CacheShard::collapsed) == 0);
  // The follower's own request (on a new or the pooled connection) gets its own answer.
  std::shared_ptr<MemoryPeer> solo;
  for (auto& u : rig.ups)
    if (u->written.find("GET /static/x.json") != std::string::npos) solo = u;
  REQUIRE(solo);
  solo->answer_connect(0);  // a no-op on a pooled connection
  solo->take();
  solo->send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: s=dave\r\n\r\nok");
  std::string got = d->take();
  CHECK(got.find("Set-Cookie: s=dave") != std::string::npos);
  CHECK(got.find("s=alice") == std::string::npos);
}

TEST_CASE("fill flight: the stop deadline ends an adopted exchange and answers its follower") {
  Fleet f;
  const std::string path = datum_path(19);
  auto leader = f.ask(path, "a");
  auto b = f.ask(path, "b");
  auto up = f.rig.ups[0];
  up->answer_connect(0);
  leader->fail(UV_ECONNRESET);
  MemoryStream::settle();
  REQUIRE(f.rig.worker->flights().engine_count() == 1);
  f.rig.worker->stop(0);
  for (int i = 0; i < 10 && !b->closed; ++i) {
    uv_run(f.rig.worker->loop(), UV_RUN_NOWAIT);
    MemoryStream::settle();
  }
  CHECK(b->closed);
  CHECK(b->take().rfind("HTTP/1.1 503", 0) == 0);
  CHECK(up->closed);
  CHECK(f.rig.worker->flights().engine_count() == 0);
}
