// Misses filling a pool's response cache (issue 16, plan-16.md §2 "cache_fill") through
// the real ClientConn and exchange over in-memory streams: what is stored (decoded, only
// the allowed fields) and what is not (null, 503, too large, over the buffer budget, a
// shallow slot, a purge meanwhile, a down producer, HEAD).
#include <doctest.h>

#include <memory>
#include <string>

#include "lb/core/etag.h"
#include "tests/lb/net/cache_rig.h"

namespace {

using namespace lb;
using namespace lb::net;

std::string answer(const std::string& body, const std::string& extra = "",
                   uint64_t checkpoint = 42) {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) +
         "\r\nX-Most-Recent-Checkpoint: " + std::to_string(checkpoint) + "\r\n" + extra + "\r\n" +
         body;
}

// `path` from `user` on client `c`; the upstream it went to (new or pooled) answers
// `reply`. Returns that upstream.
std::shared_ptr<MemoryPeer> upstream_serves(CacheRig& rig, MemoryPeer& c, const std::string& path,
                                            const std::string& user, const std::string& reply,
                                            const char* method = "GET") {
  size_t made = rig.ups.size();
  c.send(request(path, user, "", method));
  std::shared_ptr<MemoryPeer> up;
  if (rig.ups.size() == made + 1) {
    up = rig.ups.back();
    up->answer_connect(0);
  } else {
    for (auto& u : rig.ups)  // a pooled connection got it
      if (!u->written.empty()) up = u;
  }
  REQUIRE(up);
  std::string sent = up->take();
  CHECK(sent.rfind(std::string(method) + " " + path + " HTTP/1.1\r\n", 0) == 0);
  up->send(reply);
  return up;
}

// True if `path` is answered from the cache. If it went upstream instead, the backend
// answers 404 (never stored) so the connection is ready for the next request.
bool is_hit(CacheRig& rig, MemoryPeer& c, const std::string& path, std::string* out = nullptr) {
  size_t made = rig.ups.size();
  for (auto& u : rig.ups) u->take();
  c.send(request(path));
  std::shared_ptr<MemoryPeer> up;
  if (rig.ups.size() != made) {
    up = rig.ups.back();
    up->answer_connect(0);
  }
  for (auto& u : rig.ups)
    if (!u->written.empty()) up = u;
  if (up) {
    up->take();
    up->send("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  }
  std::string got = c.take();
  if (out) *out = got;
  return !up && got.find("X-Corral-Cache: hit\r\n") != std::string::npos;
}

}  // namespace

TEST_CASE("cache fill: only Content-Type, X-Block-Header-Hash and ACAO * are stored") {
  CacheRig rig;
  auto c = rig.client();
  std::string path = "/metadata/100";
  rig.cache().best_tip.store(1'000'000);
  std::string body = R"([{"hash":"ab"}])";
  upstream_serves(rig, *c, path, "",
                  answer(body,
                         "X-Block-Header-Hash: ff00\r\nAccess-Control-Allow-Origin: *\r\n"
                         "X-Backend: k1\r\nETag: \"kupo\"\r\n",
                         900'000));
  c->take();
  CHECK(rig.count(&CacheShard::stores) == 1);
  std::string out;
  REQUIRE(is_hit(rig, *c, path, &out));
  CHECK(out ==
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Block-Header-Hash: ff00\r\n"
        "Access-Control-Allow-Origin: *\r\nContent-Length: " +
            std::to_string(body.size()) + "\r\nETag: " + body_etag(body) +
            "\r\nCache-Control: public, max-age=31536000, immutable\r\n"
            "X-Corral-Cache: hit\r\n\r\n" +
            body);
}

TEST_CASE("cache fill: a null answer is not stored; the next request goes upstream") {
  CacheRig rig;
  auto c = rig.client();
  std::string path = datum_path(11);
  upstream_serves(rig, *c, path, "", answer("null"));
  CHECK(c->take().find("\r\n\r\nnull") != std::string::npos);
  CHECK(rig.not_stored(NotStored::null_body) == 1);
  CHECK(rig.count(&CacheShard::stores) == 0);
  CHECK_FALSE(is_hit(rig, *c, path));
  CHECK(rig.count(&CacheShard::misses) == 2);
}

TEST_CASE("cache fill: a pinned user's 503 reaches it and is not stored") {
  CacheRig rig;
  auto c = rig.client();
  upstream_serves(rig, *c, "/matches/x", "dave", answer("[]"));  // pins dave
  c->take();
  std::string path = datum_path(12);
  upstream_serves(rig, *c, path, "dave",
                  "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy");
  CHECK(c->take().rfind("HTTP/1.1 503", 0) == 0);
  CHECK(rig.not_stored(NotStored::status) == 1);
  CHECK_FALSE(is_hit(rig, *c, path));
}

TEST_CASE("cache fill: a chunked answer is stored decoded and replayed with Content-Length") {
  CacheRig rig;
  auto c = rig.client();
  std::string path = datum_path(13);
  upstream_serves(rig, *c, path, "",
                  "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n3;x=y\r\n12}\r\n0\r\n\r\n");
  std::string forwarded = c->take();
  CHECK(forwarded.find("Transfer-Encoding: chunked") != std::string::npos);  // as today
  CHECK(rig.count(&CacheShard::stores) == 1);
  std::string out;
  REQUIRE(is_hit(rig, *c, path, &out));
  CHECK(out.find("Content-Length: 8\r\n") != std::string::npos);
  CHECK(out.find("Transfer-Encoding") == std::string::npos);
  CHECK(out.substr(out.size() - 8) == "{\"a\":12}");
}

TEST_CASE("cache fill: /metadata near the tip is not cached; a deep one is") {
  CacheRig rig;  // immutable_after_slots 129600
  PoolCache& pc = rig.cache();
  pc.best_tip.store(1'000'000);
  auto c = rig.client();
  // Near the tip: not even cacheable (classify), so no miss is counted and nothing kept.
  std::string near = "/metadata/999900";
  upstream_serves(rig, *c, near, "", answer("[]", "", 1'000'000));
  c->take();
  CHECK(rig.count(&CacheShard::misses) == 0);
  CHECK_FALSE(is_hit(rig, *c, near));
  // Deep enough by the pool's tip, but the producer lags behind it: not stored.
  std::string lagging = "/metadata/800000";
  upstream_serves(rig, *c, lagging, "", answer("[]", "", 850'000));
  c->take();
  CHECK(rig.not_stored(NotStored::not_deep) == 1);
  // Deep by both: stored, then a hit.
  std::string deep = "/metadata/100";
  upstream_serves(rig, *c, deep, "", answer("[{\"x\":1}]", "", 1'000'000));
  c->take();
  CHECK(rig.count(&CacheShard::stores) == 1);
  CHECK(is_hit(rig, *c, deep));
  // The pool's tip unknown: a slot-bound path is not cacheable at all.
  pc.best_tip.store(0);
  CHECK_FALSE(is_hit(rig, *c, deep));
}

TEST_CASE("cache fill: an answer over the entry limit is forwarded whole and not stored") {
  config::CacheConfig cc;
  cc.max_bytes = 1 << 20;  // one shard: 64 KB
  CacheRig rig(cc);
  auto c = rig.client();
  std::string big(100 * 1024, 'z');
  std::string path = datum_path(14);
  upstream_serves(rig, *c, path, "", answer(big));
  std::string out = c->take();
  CHECK(out.substr(out.size() - big.size()) == big);
  CHECK(rig.not_stored(NotStored::too_large) == 1);
  // Chunked, so the length is only known as it comes: abandoned once over.
  std::string path2 = datum_path(15);
  std::string chunks = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 10; ++i) chunks += "2800\r\n" + std::string(0x2800, 'y') + "\r\n";
  chunks += "0\r\n\r\n";
  upstream_serves(rig, *c, path2, "", chunks);
  c->take();
  CHECK(rig.not_stored(NotStored::too_large) == 2);
  CHECK(rig.count(&CacheShard::stores) == 0);
}

TEST_CASE("cache fill: at the buffer budget the fill is abandoned; the answer still goes out") {
  CacheRig rig;
  auto c = rig.client();
  std::string path = datum_path(16);
  c->send(request(path));
  REQUIRE(rig.ups.size() == 1);
  auto up = rig.ups[0];
  up->answer_connect(0);
  up->take();
  uint64_t before = rig.state.buffers.bytes.load();
  rig.state.buffers.limit = before + 1024;  // no room for the 20 KB body
  std::string body(20 * 1024, 'b');
  up->send(answer(body));
  std::string out = c->take();
  CHECK(out.substr(out.size() - body.size()) == body);
  CHECK(rig.not_stored(NotStored::budget) == 1);
  CHECK(rig.count(&CacheShard::stores) == 0);
  rig.state.buffers.limit = UINT64_MAX;
  CHECK(rig.state.buffers.bytes.load() <= before + 1024);  // the fill's charge is given back
}

TEST_CASE("cache fill: a purge while the answer streams keeps it out") {
  CacheRig rig;
  auto c = rig.client();
  std::string path = datum_path(17);
  c->send(request(path));
  auto up = rig.ups.at(0);
  up->answer_connect(0);
  up->take();
  rig.cache().cache.purge("/datums/");
  up->send(answer("{\"d\":1}"));
  c->take();
  CHECK(rig.not_stored(NotStored::purged) == 1);
  CHECK_FALSE(is_hit(rig, *c, path));
}

TEST_CASE("cache fill: a producer marked down (or forked) is not trusted") {
  CacheRig rig;
  auto c = rig.client();
  std::string path = datum_path(18);
  c->send(request(path));
  auto up = rig.ups.at(0);
  up->answer_connect(0);
  up->take();
  BackendStats& st = rig.stats(CacheRig::backend_of(*up));
  st.evict.store(MoveReason::fork);
  up->send(answer("{\"d\":2}"));
  c->take();
  CHECK(rig.not_stored(NotStored::producer) == 1);
  st.evict.store(MoveReason::none);
}

TEST_CASE("cache fill: HEAD never fills; its GET does") {
  CacheRig rig;
  auto c = rig.client();
  std::string path = datum_path(19);
  upstream_serves(rig, *c, path, "",
                  "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n",
                  "HEAD");
  c->take();
  CHECK(rig.count(&CacheShard::misses) == 1);
  CHECK(rig.count(&CacheShard::stores) == 0);
  CHECK(rig.not_stored(NotStored::status) == 0);
  upstream_serves(rig, *c, path, "", answer("{\"d\":3}"));
  c->take();
  CHECK(rig.count(&CacheShard::stores) == 1);
  CHECK(is_hit(rig, *c, path));
}

TEST_CASE("cache fill: an entry holds no spare capacity the cache would not count") {
  CacheRig rig;
  auto c = rig.client();
  // Content-Length: reserved exactly. Chunked: grown as it came, then trimmed.
  std::string plain(3000, 'p');
  std::string chunked_body = std::string(5000, 'q') + std::string(5000, 'r');
  upstream_serves(rig, *c, datum_path(20), "", answer(plain));
  c->take();
  upstream_serves(rig, *c, datum_path(21), "",
                  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1388\r\n" +
                      std::string(5000, 'q') + "\r\n1388\r\n" + std::string(5000, 'r') +
                      "\r\n0\r\n\r\n");
  c->take();
  CHECK(rig.count(&CacheShard::stores) == 2);
  const std::pair<int, const std::string*> cases[] = {{20, &plain}, {21, &chunked_body}};
  for (auto [n, body] : cases) {
    std::string canonical;
    CacheKey key = rig.key_of(datum_path(n), canonical);
    auto e = rig.cache().cache.get(key, canonical, rig.worker->deadlines().now());
    REQUIRE(e);
    CHECK(e->body == *body);
    CHECK(e->body.capacity() <= e->body.size() + 32);
    CHECK(e->charge == answer_charge(*e));
  }
}

TEST_CASE("cache fill: a body read until the backend closes is neither stored nor trusted") {
  // Without Content-Length or chunked framing, upstream EOF cannot tell a whole body from a
  // truncated one: storing it could serve a cut answer for ever.
  CacheRig rig;
  auto c = rig.client();
  std::string path = datum_path(40);
  auto up = upstream_serves(
      rig, *c, path, "",
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Most-Recent-Checkpoint: 42\r\n"
      "Connection: close\r\n\r\n{\"datum\":\"d8");
  up->send_eof();
  MemoryStream::settle();  // the closed upstream is freed with this rig, not the next
  c->take();
  CHECK(rig.count(&CacheShard::stores) == 0);
  CHECK(rig.not_stored(NotStored::headers) == 1);
  CHECK(rig.cache().cache.stats().entries == 0);
}

TEST_CASE("cache fill: a recycled request state carries no fill, hit or lookup to the next") {
  // Every path that gives a RequestState back (a connection, a stream flight's adopted
  // engine, a fill flight's engine) calls recycle_request_state: an active fill left in a
  // pooled state would take the next request's bytes and store them under the old key.
  CacheRig rig;
  auto& states = rig.worker->request_states();
  RequestState* rs = states.take();
  std::string canonical;
  CacheKey key = rig.key_of(datum_path(41), canonical);
  rs->fill.begin(rig.pool().cache, CacheVerdict{CacheClass::immutable, 0, ""}, key, canonical,
                 rig.state.buffers);
  rs->hit = std::make_shared<CachedAnswer>();
  rs->hit_off = 3;
  rs->lookup.stream_ok = true;
  rs->access.active = false;
  rs->access.cache = "miss";
  REQUIRE(rs->fill.active());
  size_t before = states.size();
  recycle_request_state(*rig.worker, rs);
  CHECK(states.size() == before + 1);
  RequestState* again = states.take();
  REQUIRE(again == rs);
  CHECK_FALSE(again->fill.active());
  CHECK_FALSE(again->hit);
  CHECK(again->hit_off == 0);
  CHECK_FALSE(again->lookup.stream_ok);
  CHECK(again->access.cache.empty());
  // Feeding it bytes now stores nothing.
  again->fill.body("x", 1);
  again->fill.finish(0);
  CHECK(rig.count(&CacheShard::stores) == 0);
  recycle_request_state(*rig.worker, again);
}
