// Hits served from a pool's response cache (issue 16, plan-16.md §3) by the real
// ClientConn over in-memory streams: the exact head, 304, HEAD, pins left alone, no
// upstream connection, and a large body written in slices under back-pressure.
#include <doctest.h>
#include <uv.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "lb/core/etag.h"
#include "lb/net/access_log.h"
#include "tests/lb/net/cache_rig.h"

namespace {

using namespace lb;
using namespace lb::net;

const std::string kBody = R"({"datum":"d87980"})";

// The backend's answer to a datum: fields a hit must not replay (X-Backend, its own ETag
// and checkpoint) beside those it must (Content-Type, X-Block-Header-Hash).
std::string datum_answer(const std::string& body = kBody, uint64_t checkpoint = 42) {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json;charset=utf-8\r\nContent-Length: " +
         std::to_string(body.size()) +
         "\r\nX-Most-Recent-Checkpoint: " + std::to_string(checkpoint) +
         "\r\nETag: \"kupo-etag\"\r\nX-Backend: k9\r\n\r\n" + body;
}

// The head a hit of kBody carries, before its connection field and blank line.
std::string hit_head(const std::string& body = kBody) {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json;charset=utf-8\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nETag: " + body_etag(body) +
         "\r\nCache-Control: public, max-age=31536000, immutable\r\nX-Corral-Cache: hit\r\n";
}

// Sends a miss for `path` on client `c` and answers it with `answer` from a new upstream.
std::shared_ptr<MemoryPeer> miss(CacheRig& rig, MemoryPeer& c, const std::string& path,
                                 const std::string& user, const std::string& answer) {
  size_t made = rig.ups.size();
  c.send(request(path, user));
  REQUIRE(rig.ups.size() == made + 1);
  auto up = rig.ups.back();
  up->answer_connect(0);
  CHECK(up->take().rfind("GET " + path + " HTTP/1.1\r\n", 0) == 0);
  up->send(answer);
  return up;
}

// Puts `body` into the cache as a fill would, under the key of a plain GET of `path`.
void put(CacheRig& rig, const std::string& path, const std::string& body, uint64_t expires_ms = 0) {
  auto a = std::make_shared<CachedAnswer>();
  CacheKey key = rig.key_of(path, a->key);
  a->fields = "Content-Type: application/json\r\n";
  a->body = body;
  std::string tag = body_etag(body);
  std::memcpy(a->etag, tag.data(), tag.size());
  a->expires_ms = expires_ms;
  a->charge = static_cast<uint32_t>(answer_charge(*a));
  REQUIRE(rig.cache().cache.put(key, a, rig.cache().cache.generation()) == PutResult::stored);
}

}  // namespace

TEST_CASE("cache hit: a miss goes upstream and fills; the same GET is then a hit, no upstream") {
  CacheRig rig;
  auto c = rig.client();
  std::string path = datum_path(1);
  auto up = miss(rig, *c, path, "alice", datum_answer());
  std::string first = c->take();
  // The miss is forwarded as today: the backend's own fields reach the client.
  CHECK(first.find("X-Backend: k9\r\n") != std::string::npos);
  CHECK(first.find("X-Corral-Cache") == std::string::npos);
  CHECK(rig.count(&CacheShard::misses) == 1);
  CHECK(rig.count(&CacheShard::stores) == 1);
  CHECK(rig.cache().cache.stats().entries == 1);

  // A new user on another connection: the hit's exact bytes, no upstream connection, no pin.
  uint64_t sessions = rig.state.sessions.stats().size;
  auto d = rig.client();
  d->send(request(path, "bob"));
  CHECK(d->take() == hit_head() + "\r\n" + kBody);
  CHECK(rig.ups.size() == 1);
  CHECK(up->take().empty());  // nothing went to the pooled upstream connection either
  CHECK(rig.count(&CacheShard::hits) == 1);
  CHECK(rig.state.sessions.stats().size == sessions);
  CHECK_FALSE(rig.peek("bob").has_value());
}

TEST_CASE("cache hit: a pinned user's hit carries its backend's tip and leaves the pin alone") {
  CacheRig rig;
  auto c = rig.client();
  std::string path = datum_path(2);
  auto up = miss(rig, *c, path, "alice", datum_answer(kBody, 42));
  c->take();
  std::optional<Pin> before = rig.peek("alice");
  REQUIRE(before.has_value());
  CHECK(before->last_slot == 42);
  // The backend moved on since (probes): the hit names its tip now, and records nothing.
  BackendStats& home = rig.stats(CacheRig::backend_of(*up));
  home.raise_tip(500);
  c->send(request(path, "alice"));
  std::string out = c->take();
  CHECK(out == hit_head() + "X-Most-Recent-Checkpoint: 500\r\n\r\n" + kBody);
  std::optional<Pin> after = rig.peek("alice");
  REQUIRE(after.has_value());
  CHECK(after->backend == before->backend);
  CHECK(after->last_slot == 42);  // no record_slot
  CHECK(rig.ups.size() == 1);
  // No answer counted on the backend beyond the miss's.
  CHECK(home.code_count(200) == 1);
}

TEST_CASE("cache hit: If-None-Match (strong, weak, a list) gives 304 without a body") {
  CacheRig rig;
  std::string path = datum_path(3);
  put(rig, path, kBody);
  std::string tag = body_etag(kBody);
  auto c = rig.client();
  const std::string tags[] = {tag, "W/" + tag, "\"x\", " + tag};
  for (const std::string& t : tags) {
    c->send(request(path, "", "If-None-Match: " + t + "\r\n"));
    CHECK(c->take() == "HTTP/1.1 304 Not Modified\r\nETag: " + tag +
                           "\r\nCache-Control: public, max-age=31536000, immutable\r\n"
                           "X-Corral-Cache: hit\r\n\r\n");
  }
  // Another tag: the whole answer.
  c->send(request(path, "", "If-None-Match: \"c1-other\"\r\n"));
  std::string out = c->take();
  CHECK(out.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(out.substr(out.size() - kBody.size()) == kBody);
  CHECK(rig.count(&CacheShard::not_modified) == 3);
  CHECK(rig.count(&CacheShard::hits) == 4);
  CHECK(rig.ups.empty());
}

TEST_CASE("cache hit: HEAD gets the head only, with Content-Length; the connection goes on") {
  CacheRig rig;
  std::string path = datum_path(4);
  put(rig, path, kBody);
  auto c = rig.client();
  // Pipelined: a HEAD then a GET, answered in order.
  c->send(request(path, "", "", "HEAD") + request(path));
  std::string out = c->take();
  std::string head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                     std::to_string(kBody.size()) + "\r\nETag: " + body_etag(kBody) +
                     "\r\nCache-Control: public, max-age=31536000, immutable\r\n"
                     "X-Corral-Cache: hit\r\n\r\n";
  CHECK(out == head + head + kBody);
  CHECK_FALSE(c->shut);
  CHECK(rig.ups.empty());
}

TEST_CASE("cache hit: HTTP/1.0 without keep-alive is answered and closed") {
  CacheRig rig;
  std::string path = datum_path(5);
  put(rig, path, kBody);
  auto c = rig.client();
  c->send("GET " + path + " HTTP/1.0\r\n\r\n");
  std::string out = c->take();
  CHECK(out.find("Connection: close\r\n\r\n") != std::string::npos);
  CHECK(out.substr(out.size() - kBody.size()) == kBody);
  CHECK(c->shut);
}

TEST_CASE("cache hit: remove_headers.response applies to a hit's fields") {
  config::Config cfg = cache_config({});
  cfg.pools[0].remove_headers.response = {"x-corral-cache", "Content-Type"};
  CacheRig rig(cfg);
  std::string path = datum_path(6);
  put(rig, path, kBody);
  auto c = rig.client();
  c->send(request(path));
  std::string out = c->take();
  CHECK(out.find("X-Corral-Cache") == std::string::npos);
  CHECK(out.find("Content-Type") == std::string::npos);
  CHECK(out.find("ETag: " + body_etag(kBody)) != std::string::npos);
}

TEST_CASE("cache hit: a max_age entry says how long it has left; expired, it is a miss") {
  config::CacheConfig cc;
  cc.prefixes = {"/api/"};
  cc.max_age_ms = 600'000;
  CacheRig rig(cc);
  uint64_t now = rig.worker->deadlines().now();
  put(rig, "/api/x", kBody, now + 90'500);
  auto c = rig.client();
  c->send(request("/api/x"));
  std::string out = c->take();
  CHECK(out.find("Cache-Control: public, max-age=90\r\n") != std::string::npos);
  put(rig, "/api/y", kBody, now);  // expired already
  c->send(request("/api/y"));
  CHECK(c->take().empty());  // gone upstream
  CHECK(rig.ups.size() == 1);
  CHECK(rig.count(&CacheShard::misses) == 1);
}

TEST_CASE("cache hit: the access line says cache=hit only when the cache answered") {
  AccessRecord r;
  r.status = 200;
  r.backend = "-";
  r.cache = "hit";
  std::string line;
  append_access_line(line, LogFormat::logfmt, r, 1);
  CHECK(line.find(" cache=hit") != std::string::npos);
  CHECK(line.find(" backend=-") != std::string::npos);
  r.cache = {};
  line.clear();
  append_access_line(line, LogFormat::logfmt, r, 1);
  CHECK(line.find("cache=") == std::string::npos);
  r.store = "hit";
  r.cache = "miss";
  line.clear();
  append_access_line(line, LogFormat::logfmt, r, 1);
  CHECK(line.find(" store=hit cache=miss") != std::string::npos);
}

// ---- back-pressure ----------------------------------------------------------------------

namespace {

// A client stream that keeps what is written until the test lets the client take it, so
// pending() grows as with a slow reader; its close finishes in a later loop turn.
class SlowStream final : public Stream {
 public:
  SlowStream(BufferPool& pool, uv_loop_t* loop) : Stream(pool), loop_(loop) {}
  std::string out;     // taken by the client
  std::string queued;  // written, not taken yet
  size_t peak = 0;     // the most bytes ever queued

  int connect(const sockaddr*) override { return UV_EINVAL; }
  void read_start() override { reading_ = true; }
  void read_stop() override { reading_ = false; }
  bool reading() const override { return reading_; }
  using Stream::write;
  bool write(const std::string_view* parts, size_t n) override {
    for (size_t i = 0; i < n; ++i) queued.append(parts[i]);
    peak = std::max(peak, queued.size());
    return true;
  }
  size_t pending() const override { return queued.size(); }
  void shutdown() override {}
  void close() override {
    auto* idle = new uv_idle_t;
    idle->data = this;
    uv_idle_init(loop_, idle);
    uv_idle_start(idle, [](uv_idle_t* h) {
      auto* s = static_cast<SlowStream*>(h->data);
      uv_idle_stop(h);
      uv_close(reinterpret_cast<uv_handle_t*>(h),
               [](uv_handle_t* x) { delete reinterpret_cast<uv_idle_t*>(x); });
      s->handler()->on_closed(*s);  // frees the connection, and with it this stream
    });
  }
  // The client sends `bytes` (one read).
  void feed(std::string_view bytes) {
    size_t len = 0;
    char* p = read_space(len);
    REQUIRE(len >= bytes.size());
    std::memcpy(p, bytes.data(), bytes.size());
    commit_read(bytes.size());
    handler()->on_readable(*this);
  }
  // The client takes everything queued; the connection hears it drained.
  void drain() {
    out += queued;
    sent_ += queued.size();
    queued.clear();
    handler()->on_drained(*this);
  }

 private:
  uv_loop_t* loop_;
  bool reading_ = false;
};

}  // namespace

TEST_CASE("cache hit: a 200 KB body goes out in slices, resumed on drain, even if evicted") {
  CacheRig rig;
  const size_t max = rig.worker->max_pending();
  std::string body(200 * 1024, 'x');
  for (size_t i = 0; i < body.size(); i += 97) body[i] = static_cast<char>('a' + i % 26);
  REQUIRE(body.size() > 2 * max);
  std::string path = datum_path(7);
  put(rig, path, body);

  auto owned = std::make_unique<SlowStream>(rig.worker->buffers(), rig.worker->loop());
  SlowStream* s = owned.get();
  ClientConn::open(*rig.worker, std::move(owned), 0);
  s->feed(request(path) + request(datum_path(8)));  // the second is a miss, after the hit
  CHECK(s->queued.size() <= max + 512);  // one slice (and the head) until the client reads
  // Evicted while it is written: the connection holds the entry.
  rig.cache().cache.purge({});
  CHECK(rig.cache().cache.stats().entries == 0);
  int drains = 0;
  while (!s->queued.empty() && drains < 100) {
    s->drain();
    ++drains;
  }
  CHECK(drains >= 3);
  CHECK(s->peak <= 2 * max + 512);
  REQUIRE(s->out.size() > body.size());
  CHECK(s->out.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(s->out.substr(s->out.size() - body.size()) == body);
  // The pipelined request went on after the hit's last byte: upstream, as a miss.
  CHECK(rig.ups.size() == 1);
  CHECK(rig.count(&CacheShard::misses) == 1);
}
