// The response cache in the admin documents and POST /cache/purge (issue 16): a Runtime
// built from a config::Config whose Pool::cache is set in code (build_runtime makes the
// PoolCache through the Registry), entries put straight into its ResponseCache and
// counters bumped in its shards; the purge endpoint driven over loopback through the real
// AdminServer (token check and routing included).
#include <arpa/inet.h>
#include <doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <deque>
#include <string>
#include <thread>

#include "config/loader.h"
#include "lb/admin/admin_server.h"
#include "lb/admin/cache_purge.h"
#include "lb/core/cache_key.h"

namespace {

struct NoHealth : lb::net::HealthView {
  std::optional<lb::net::BackendHealthView> backend(lb::BackendRef, uint64_t) const override {
    return std::nullopt;
  }
  const std::deque<lb::net::Transition>& transitions() const override { return none; }
  bool set_admin(const std::string&, std::optional<lb::BackendState>) override { return false; }
  std::deque<lb::net::Transition> none;
};

// Two Kupo pools, `k` and `k2`, and an http pool `h`; which of them get a cache is the
// test's choice.
const std::string kYaml =
    "listeners:\n"
    "  - {name: pub, listen: 127.0.0.1:0, routes: [{prefix: /k2/, pool: k2, strip_prefix: "
    "true},\n"
    "      {prefix: /h/, pool: h, strip_prefix: true}, {prefix: /, pool: k}]}\n"
    "pools:\n"
    "  k: {kind: kupo, backends: [{name: k1, address: 127.0.0.1:1442}]}\n"
    "  k2: {kind: kupo, backends: [{name: k21, address: 127.0.0.1:1443}]}\n"
    "  h: {kind: http, backends: [{name: h1, address: 127.0.0.1:1444}]}\n";

struct Rig {
  uv_loop_t loop{};
  lb::net::ProxyState state{1000, 60'000};
  NoHealth health;
  std::unique_ptr<lb::admin::AdminServer> admin;

  // `cached`: names of the pools given a cache (max_bytes 16 MB; `h` gets a prefix rule).
  explicit Rig(std::initializer_list<std::string> cached, std::string token = "") {
    std::signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    config::LoadResult r = config::load_string(kYaml, "test.yaml");
    REQUIRE(r.errors.empty());
    config::Config cfg = *r.config;
    cfg.admin.token = token;
    for (config::Pool& p : cfg.pools)
      for (const std::string& name : cached)
        if (p.name == name) {
          config::CacheConfig c;
          c.max_bytes = 16ull << 20;
          c.immutable_after_slots = 2160;
          if (p.kind != config::PoolKind::kupo) {
            c.prefixes = {"/static/"};
            c.max_age_ms = 60'000;
            c.collapse = false;
          }
          p.cache = c;
        }
    state.runtime.store(lb::net::build_runtime(cfg, state.registry));
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
  const lb::net::RuntimePool& pool(const std::string& name) {
    for (const auto& p : state.runtime.load()->pools)
      if (p.name == name) return p;
    FAIL("no pool " << name);
    throw 0;
  }
  lb::net::PoolCache& cache(const std::string& name) {
    REQUIRE(pool(name).cache);
    return *pool(name).cache;
  }
  // Puts an answer of `body_bytes` bytes for `path`; returns its charge.
  uint64_t put(const std::string& name, const std::string& path, size_t body_bytes) {
    const lb::net::RuntimePool& p = pool(name);
    auto a = std::make_shared<lb::CachedAnswer>();
    lb::canonical_request(a->key, path, "", "application/json", "");
    a->fields = "Content-Type: application/json\r\n";
    a->body.assign(body_bytes, 'x');
    a->charge = static_cast<uint32_t>(lb::answer_charge(*a));
    const lb::CacheKey key = lb::cache_key(p.salt, a->key);
    const uint64_t charge = a->charge;
    lb::PutResult r = p.cache->cache.put(key, std::move(a), p.cache->cache.generation());
    REQUIRE(r == lb::PutResult::stored);
    return charge;
  }

  // Sends `request` to the admin listener from a client thread while this thread runs
  // the loop; returns the whole answer (head and body).
  std::string http(const std::string& request) {
    if (admin->port() == 0) REQUIRE(admin->listen("127.0.0.1", 0) == 0);
    const uint16_t port = admin->port();
    std::atomic<bool> done{false};
    std::string answer;
    std::thread client([&] {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      timeval tv{5, 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(port);
      inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
      if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
          send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
        char buf[4096];
        for (;;) {
          ssize_t n = recv(fd, buf, sizeof buf, 0);
          if (n <= 0) break;
          answer.append(buf, static_cast<size_t>(n));
          size_t end = answer.find("\r\n\r\n");
          size_t cl = answer.find("Content-Length: ");
          if (end != std::string::npos && cl != std::string::npos && cl < end &&
              answer.size() >= end + 4 + std::stoul(answer.substr(cl + 16)))
            break;
        }
      }
      close(fd);
      done = true;
    });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done && std::chrono::steady_clock::now() < deadline) {
      uv_run(&loop, UV_RUN_NOWAIT);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    client.join();
    return answer;
  }
};

bool has(const std::string& doc, const std::string& part) {
  return doc.find(part) != std::string::npos;
}

// The value of the sample `series` (name{labels}) in an exposition, or -1 if absent.
long long sample(const std::string& m, const std::string& series) {
  size_t at = m.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stoll(m.substr(at + series.size() + 2));
}

std::string body_of(const std::string& answer) {
  size_t end = answer.find("\r\n\r\n");
  return end == std::string::npos ? "" : answer.substr(end + 4);
}

const char* const kFamilies[][2] = {
    {"corral_cache_bytes", "gauge"},
    {"corral_cache_max_bytes", "gauge"},
    {"corral_cache_entries", "gauge"},
    {"corral_cache_hits_total", "counter"},
    {"corral_cache_misses_total", "counter"},
    {"corral_cache_not_modified_total", "counter"},
    {"corral_cache_stores_total", "counter"},
    {"corral_cache_not_stored_total", "counter"},
    {"corral_cache_evictions_total", "counter"},
    {"corral_cache_purged_total", "counter"},
    {"corral_collapsed_total", "counter"},
    {"corral_collapse_detached_total", "counter"},
    {"corral_flights", "gauge"},
};

}  // namespace

TEST_CASE("admin cache: no pool with a cache, no cache family and no /status cache key") {
  Rig rig({});
  const std::string m = rig.admin->metrics_text();
  CHECK_FALSE(has(m, "corral_cache_"));
  CHECK_FALSE(has(m, "corral_collapse"));
  CHECK_FALSE(has(m, "corral_flights"));
  CHECK_FALSE(has(rig.admin->status_json(), "\"cache\""));
}

TEST_CASE("admin cache: every family with HELP and TYPE, per cached pool, with its figures") {
  Rig rig({"k", "h"});
  const uint64_t c1 = rig.put("k", "/datums/aa", 1000);
  const uint64_t c2 = rig.put("k", "/datums/bb", 3000);
  lb::net::PoolCache& pc = rig.cache("k");
  pc.local().hits += 7;
  pc.local().misses += 3;
  pc.local().not_modified += 2;
  pc.local().stores += 2;
  pc.local().collapsed += 5;
  pc.local().detached_resumed += 1;
  pc.local().detached_cut += 4;
  pc.local().flights += 2;
  pc.count_not_stored(lb::net::NotStored::null_body);
  pc.count_not_stored(lb::net::NotStored::null_body);
  pc.count_not_stored(lb::net::NotStored::not_deep);
  // A second thread's shard is summed too.
  std::thread([&] {
    pc.local().hits += 10;
    pc.local().flights -= 1;
  }).join();

  const std::string m = rig.admin->metrics_text();
  INFO(m);
  for (const auto& f : kFamilies) {
    CHECK(has(m, std::string("# HELP ") + f[0] + " "));
    CHECK(has(m, std::string("# TYPE ") + f[0] + " " + f[1] + "\n"));
  }
  CHECK(sample(m, "corral_cache_bytes{pool=\"k\"}") == static_cast<long long>(c1 + c2));
  CHECK(sample(m, "corral_cache_max_bytes{pool=\"k\"}") == 16ll << 20);
  CHECK(sample(m, "corral_cache_entries{pool=\"k\"}") == 2);
  CHECK(sample(m, "corral_cache_hits_total{pool=\"k\"}") == 17);
  CHECK(sample(m, "corral_cache_misses_total{pool=\"k\"}") == 3);
  CHECK(sample(m, "corral_cache_not_modified_total{pool=\"k\"}") == 2);
  CHECK(sample(m, "corral_cache_stores_total{pool=\"k\"}") == 2);
  CHECK(sample(m, "corral_cache_not_stored_total{pool=\"k\",reason=\"null\"}") == 2);
  CHECK(sample(m, "corral_cache_not_stored_total{pool=\"k\",reason=\"not_deep\"}") == 1);
  // Every reason has a series, 0 until seen.
  for (size_t i = 0; i < static_cast<size_t>(lb::net::NotStored::count); ++i) {
    const std::string r = lb::net::not_stored_label(static_cast<lb::net::NotStored>(i));
    CHECK(sample(m, "corral_cache_not_stored_total{pool=\"h\",reason=\"" + r + "\"}") == 0);
  }
  CHECK(sample(m, "corral_cache_evictions_total{pool=\"k\"}") == 0);
  CHECK(sample(m, "corral_cache_purged_total{pool=\"k\"}") == 0);
  CHECK(sample(m, "corral_collapsed_total{pool=\"k\"}") == 5);
  CHECK(sample(m, "corral_collapse_detached_total{pool=\"k\",result=\"resumed\"}") == 1);
  CHECK(sample(m, "corral_collapse_detached_total{pool=\"k\",result=\"cut\"}") == 4);
  CHECK(sample(m, "corral_flights{pool=\"k\"}") == 1);
  // The http pool has its own, empty, series; the pool without a cache has none.
  CHECK(sample(m, "corral_cache_entries{pool=\"h\"}") == 0);
  CHECK(sample(m, "corral_cache_hits_total{pool=\"h\"}") == 0);
  for (const auto& f : kFamilies) CHECK_FALSE(has(m, std::string(f[0]) + "{pool=\"k2\""));
  // Each family's samples come together, right after its TYPE line.
  const size_t type = m.find("# TYPE corral_cache_entries gauge\n");
  REQUIRE(type != std::string::npos);
  const size_t next = m.find("# HELP", type);
  const std::string block = m.substr(type, next - type);
  CHECK(has(block, "corral_cache_entries{pool=\"k\"} 2\n"));
  CHECK(has(block, "corral_cache_entries{pool=\"h\"} 0\n"));

  // Evictions and purges are the shared store's: a purge shows in purged_total.
  rig.cache("k").cache.purge("/datums/a");
  const std::string m2 = rig.admin->metrics_text();
  CHECK(sample(m2, "corral_cache_purged_total{pool=\"k\"}") == 1);
  CHECK(sample(m2, "corral_cache_entries{pool=\"k\"}") == 1);
  CHECK(sample(m2, "corral_cache_bytes{pool=\"k\"}") == static_cast<long long>(c2));
}

TEST_CASE("admin cache: /status cache object, hit_ratio null then a number") {
  Rig rig({"k", "h"});
  std::string st = rig.admin->status_json();
  INFO(st);
  CHECK(has(st,
            "\"cache\":{\"enabled\":true,\"max_bytes\":16777216,\"bytes\":0,\"entries\":0,"
            "\"hits\":0,\"misses\":0,\"hit_ratio\":null,\"collapsed\":0,"
            "\"immutable_after_slots\":2160,\"best_tip\":null,\"collapse\":true}"));
  // The http pool: no built-in slot rule, collapse off as configured.
  CHECK(has(st, "\"immutable_after_slots\":null,\"best_tip\":null,\"collapse\":false}"));
  // k2 has no cache: exactly two cache objects.
  size_t n = 0;
  for (size_t at = st.find("\"cache\":{"); at != std::string::npos;
       at = st.find("\"cache\":{", at + 1))
    ++n;
  CHECK(n == 2);

  const uint64_t charge = rig.put("k", "/datums/aa", 500);
  lb::net::PoolCache& pc = rig.cache("k");
  pc.local().hits += 3;
  pc.local().misses += 1;
  pc.local().collapsed += 2;
  pc.best_tip = 123'456'789;
  st = rig.admin->status_json();
  CHECK(has(st, "\"bytes\":" + std::to_string(charge) +
                    ",\"entries\":1,\"hits\":3,\"misses\":1,\"hit_ratio\":0.75,\"collapsed\":2,"
                    "\"immutable_after_slots\":2160,\"best_tip\":123456789,\"collapse\":true}"));
}

TEST_CASE("admin cache: cache_purge answers by method, query and pool") {
  Rig rig({"k", "k2"});
  const uint64_t a = rig.put("k", "/datums/aa", 100);
  const uint64_t b = rig.put("k", "/datums/ab", 200);
  rig.put("k", "/scripts/cc", 300);
  const uint64_t d = rig.put("k2", "/datums/aa", 400);
  auto rt = rig.state.runtime.load();

  lb::admin::PurgeAnswer r = lb::admin::cache_purge(*rt, "GET", "");
  CHECK(r.status == 405);
  CHECK(r.allow_post);
  CHECK(lb::admin::cache_purge(*rt, "PUT", "pool=k").status == 405);

  for (const char* bad : {"prefix=datums/", "prefix=", "pool=", "pool=k&pool=k", "pool", "pol=k",
                          "prefix=/a%zz", "prefix=/a%4"}) {
    INFO(bad);
    r = lb::admin::cache_purge(*rt, "POST", bad);
    CHECK(r.status == 400);
    CHECK_FALSE(r.allow_post);
    CHECK(has(r.body, "\"error\":"));
  }
  r = lb::admin::cache_purge(*rt, "POST", "pool=nope");
  CHECK(r.status == 404);
  CHECK(has(r.body, "no such pool"));
  r = lb::admin::cache_purge(*rt, "POST", "pool=h");
  CHECK(r.status == 404);
  CHECK(has(r.body, "no cache"));
  CHECK(rig.cache("k").cache.stats().entries == 3);  // nothing purged by a refusal

  // A prefix in one pool (percent-escapes decoded): only the entries under it.
  r = lb::admin::cache_purge(*rt, "POST", "pool=k&prefix=%2Fdatums%2Fa");
  CHECK(r.status == 200);
  CHECK(r.body == "{\"purged\":2,\"bytes\":" + std::to_string(a + b) + ",\"pools\":[\"k\"]}\n");
  CHECK(rig.cache("k").cache.stats().entries == 1);
  CHECK(rig.cache("k2").cache.stats().entries == 1);
  // Again: nothing left under it.
  r = lb::admin::cache_purge(*rt, "POST", "prefix=/datums/a&pool=k&");
  CHECK(r.body == "{\"purged\":0,\"bytes\":0,\"pools\":[\"k\"]}\n");
  // No pool: every cached pool, in config order.
  r = lb::admin::cache_purge(*rt, "POST", "prefix=/datums/");
  CHECK(r.status == 200);
  CHECK(r.body == "{\"purged\":1,\"bytes\":" + std::to_string(d) + ",\"pools\":[\"k\",\"k2\"]}\n");
  r = lb::admin::cache_purge(*rt, "POST", "");
  CHECK(r.body.starts_with("{\"purged\":1,"));  // the script
  CHECK(rig.cache("k").cache.stats().entries == 0);
}

TEST_CASE("admin cache: POST /cache/purge over the admin listener, behind the token") {
  Rig rig({"k"}, "s3cret");
  rig.put("k", "/datums/aa", 100);
  const std::string auth = "Authorization: Bearer s3cret\r\n";

  std::string ans = rig.http("POST /cache/purge HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
  INFO(ans);
  CHECK(ans.starts_with("HTTP/1.1 401"));
  CHECK(rig.cache("k").cache.stats().entries == 1);

  ans = rig.http("GET /cache/purge HTTP/1.1\r\nHost: a\r\n" + auth + "\r\n");
  CHECK(ans.starts_with("HTTP/1.1 405"));
  CHECK(has(ans, "\r\nAllow: POST\r\n"));

  ans = rig.http("POST /cache/purge?pool=h HTTP/1.1\r\nHost: a\r\n" + auth +
                 "Content-Length: 0\r\n\r\n");
  CHECK(ans.starts_with("HTTP/1.1 404"));
  ans = rig.http("POST /cache/purge?prefix=datums HTTP/1.1\r\nHost: a\r\n" + auth +
                 "Content-Length: 0\r\n\r\n");
  CHECK(ans.starts_with("HTTP/1.1 400"));
  CHECK(rig.cache("k").cache.stats().entries == 1);

  ans = rig.http("POST /cache/purge?pool=k&prefix=/datums/ HTTP/1.1\r\nHost: a\r\n" + auth +
                 "Content-Length: 0\r\n\r\n");
  CHECK(ans.starts_with("HTTP/1.1 200"));
  CHECK(body_of(ans).starts_with("{\"purged\":1,\"bytes\":"));
  CHECK(has(body_of(ans), "\"pools\":[\"k\"]}"));
  CHECK(rig.cache("k").cache.stats().entries == 0);

  // The other POST route still works, and other paths keep their 405 for POST.
  ans = rig.http("POST /status HTTP/1.1\r\nHost: a\r\n" + auth + "Content-Length: 0\r\n\r\n");
  CHECK(ans.starts_with("HTTP/1.1 405"));
  CHECK(has(ans, "\r\nAllow: GET, HEAD\r\n"));
}
