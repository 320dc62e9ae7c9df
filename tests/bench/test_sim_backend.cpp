#include <arpa/inet.h>
#include <doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench/sim/kupo_api.h"
#include "bench/sim/sim_backend.h"
#include "bench/sim/sim_chain.h"
#include "lb/core/flat_json.h"

using namespace bench;
using lb::FlatJson;
using lb::JsonValue;

namespace {

// Simulated backends on their own loop thread; the test thread is a blocking HTTP client.
// Backends are created before the thread starts; stop() closes them from the loop thread,
// counts the done callbacks and checks that the loop closes with nothing left open.
class Fleet {
 public:
  Fleet() {
    std::signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop_);
    uv_async_init(&loop_, &wake_, &Fleet::on_wake);
    wake_.data = this;
  }
  ~Fleet() { stop(); }

  uint16_t add(SimOptions o) {
    backends_.push_back(std::make_unique<SimBackend>(&loop_, std::move(o)));
    REQUIRE(backends_.back()->listen("127.0.0.1", 0) == 0);
    return backends_.back()->port();
  }
  void adopt(std::vector<std::unique_ptr<SimBackend>> v) {
    for (auto& b : v) backends_.push_back(std::move(b));
  }
  const std::vector<std::unique_ptr<SimBackend>>& backends() const { return backends_; }
  uv_loop_t* loop() { return &loop_; }
  void start() {
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
  }
  void stop() {
    if (!thread_.joinable()) return;
    uv_async_send(&wake_);
    thread_.join();
    CHECK(done_calls_ == static_cast<int>(backends_.size()));
    backends_.clear();
    uv_run(&loop_, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop_) == 0);
  }
  // After stop(): the in-process counters.
  int done_calls() const { return done_calls_; }

 private:
  static void on_wake(uv_async_t* a) {
    auto* self = static_cast<Fleet*>(a->data);
    for (auto& b : self->backends_) {
      b->close([self] {
        if (++self->done_calls_ == static_cast<int>(self->backends_.size()))
          uv_close(reinterpret_cast<uv_handle_t*>(&self->wake_), nullptr);
      });
    }
    if (self->backends_.empty()) uv_close(reinterpret_cast<uv_handle_t*>(&self->wake_), nullptr);
  }

  uv_loop_t loop_{};
  uv_async_t wake_{};
  std::vector<std::unique_ptr<SimBackend>> backends_;
  std::thread thread_;
  int done_calls_ = 0;
};

struct Reply {
  int status = 0;  // 0: no answer (reset or closed)
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string raw;
  std::string header(std::string_view name) const {
    for (const auto& [n, v] : headers)
      if (lb::iequals(n, name)) return v;
    return {};
  }
  bool has(std::string_view name) const {
    for (const auto& [n, v] : headers)
      if (lb::iequals(n, name)) return true;
    return false;
  }
};

int connect_to(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void send_request(int fd, std::string_view method, std::string_view path,
                  std::string_view extra = "", std::string_view body = "") {
  std::string req = std::string(method) + " " + std::string(path) +
                    " HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n" + std::string(extra);
  if (!body.empty()) req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n";
  req += body;
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
}

// Reads one Connection: close response to its end and decodes it.
Reply read_reply(int fd) {
  Reply r;
  char buf[8192];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    r.raw.append(buf, static_cast<size_t>(n));
  }
  size_t head_end = r.raw.find("\r\n\r\n");
  if (r.raw.size() < 12 || head_end == std::string::npos) return r;
  r.status = std::atoi(r.raw.c_str() + 9);
  size_t p = r.raw.find("\r\n") + 2;
  while (p < head_end) {
    size_t e = r.raw.find("\r\n", p);
    std::string line = r.raw.substr(p, e - p);
    size_t colon = line.find(':');
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    r.headers.emplace_back(line.substr(0, colon), value);
    p = e + 2;
  }
  std::string rest = r.raw.substr(head_end + 4);
  if (r.header("Transfer-Encoding") == "chunked") {
    size_t q = 0;
    while (q < rest.size()) {
      size_t e = rest.find("\r\n", q);
      size_t len = std::stoul(rest.substr(q, e - q), nullptr, 16);
      if (len == 0) break;
      r.body += rest.substr(e + 2, len);
      q = e + 2 + len + 2;
    }
  } else {
    r.body = rest;
  }
  return r;
}

Reply call(uint16_t port, std::string_view method, std::string_view path,
           std::string_view extra = "", std::string_view body = "") {
  int fd = connect_to(port);
  if (fd < 0) return {};
  send_request(fd, method, path, extra, body);
  Reply r = read_reply(fd);
  ::close(fd);
  return r;
}

Reply control(uint16_t port, std::string_view json) {
  return call(port, "POST", "/_sim/control", "", json);
}

// The integer value of "key": in a flat JSON body.
uint64_t json_number(const std::string& body, std::string_view key) {
  auto j = FlatJson::parse(body);
  REQUIRE(j.has_value());
  const JsonValue* v = j->find(key);
  REQUIRE(v != nullptr);
  REQUIRE(v->as_count().has_value());
  return *v->as_count();
}

size_t count_of(const std::string& s, std::string_view needle) {
  size_t n = 0;
  for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

SimOptions fixed(std::string name) {
  SimOptions o;
  o.name = std::move(name);
  o.tip_slot = 100'000'000;  // deterministic: no wall-clock slot
  o.freeze_tip = true;
  return o;
}

}  // namespace

TEST_CASE("sim_chain: the tip moves one slot a second and blocks land every interval") {
  SimChain c(1000, 50'000, 20);
  CHECK(c.node_tip(50'000) == 1000);
  CHECK(c.node_tip(50'999) == 1000);
  CHECK(c.node_tip(53'500) == 1003);
  CHECK(c.checkpoint(53'500) == 1000);
  CHECK(c.checkpoint(50'000 + 25'000) == 1020);
  CHECK(c.seconds_since_last_block(50'000 + 25'000) == 5);
  CHECK(c.health_status(60'000) == 200);
  CHECK(c.network_synchronization(60'000) == 1.0);

  c.set_lag(500);
  CHECK(c.checkpoint(60'000) == 500);  // 1010 - 500 -> block 500
  CHECK(c.health_status(60'000) == 202);
  CHECK(c.health(60'000) == SimHealth::behind);
  CHECK(c.network_synchronization(60'000) < 1.0);

  c.set_health(SimHealth::synced, 60'000);
  CHECK(c.lag() == 0);
  c.set_health(SimHealth::behind, 60'000);
  CHECK(c.lag() == SimChain::kDefaultBehindLag);
  c.set_health(SimHealth::synced, 60'000);

  c.set_frozen(true, 60'000);  // tip 1010
  CHECK(c.node_tip(90'000) == 1010);
  CHECK(c.checkpoint(90'000) == 1000);
  CHECK(c.seconds_since_last_block(90'000) == 40);  // block 1000 was seen at t = 50 s
  c.set_frozen(false, 90'000);
  CHECK(c.node_tip(90'000) == 1040);  // a recovered node is back at the wall-clock tip

  c.set_health(SimHealth::disconnected, 90'000);
  CHECK(c.health_status(95'000) == 503);
  CHECK(!c.connected());
  CHECK(c.node_tip(120'000) == 1040);  // what a disconnected Kupo last knew
  c.set_health(SimHealth::synced, 120'000);
  CHECK(c.node_tip(120'000) == 1070);
  CHECK(SimChain::header_hash(7).size() == 64);
  CHECK(SimChain::header_hash(7) == SimChain::header_hash(7));
  CHECK(SimChain::header_hash(7) != SimChain::header_hash(8));
}

TEST_CASE("kupo_api: matches are deterministic and honour ?spent, ?unspent and order") {
  kupo_api::MatchQuery all;
  auto a = kupo_api::matches("addr1xyz", all, 100'000'000);
  CHECK(a == kupo_api::matches("addr1xyz", all, 100'000'000));
  REQUIRE(a.size() >= 2);
  REQUIRE(a.size() <= 4);
  kupo_api::MatchQuery spent;
  spent.spent = true;
  kupo_api::MatchQuery unspent;
  unspent.unspent = true;
  auto s = kupo_api::matches("addr1xyz", spent, 100'000'000);
  auto u = kupo_api::matches("addr1xyz", unspent, 100'000'000);
  CHECK(s.size() + u.size() == a.size());
  for (const auto& m : s) CHECK(m.find("\"spent_at\":null") == std::string::npos);
  for (const auto& m : u) CHECK(m.find("\"spent_at\":null") != std::string::npos);
  kupo_api::MatchQuery oldest;
  oldest.oldest_first = true;
  auto o = kupo_api::matches("addr1xyz", oldest, 100'000'000);
  CHECK(std::vector<std::string>(a.rbegin(), a.rend()) == o);
  for (const char* field : {"\"transaction_id\"", "\"output_index\"", "\"address\":\"addr1xyz\"",
                            "\"value\":{\"coins\"", "\"assets\"", "\"datum_hash\"",
                            "\"script_hash\"", "\"created_at\":{\"slot_no\"", "\"spent_at\""})
    CHECK(a[0].find(field) != std::string::npos);
}

TEST_CASE("sim_backend: /health answers 200, 202, 503 by state, in JSON or Prometheus text") {
  Fleet fleet;
  const uint16_t port = fleet.add(fixed("kupo-h"));
  fleet.start();
  const std::string json = "Accept: application/json\r\n";

  Reply r = call(port, "GET", "/health", json);
  CHECK(r.status == 200);
  CHECK(r.header("Content-Type") == "application/json;charset=utf-8");
  CHECK(r.header("X-Backend") == "kupo-h");
  REQUIRE(r.has("X-Most-Recent-Checkpoint"));
  CHECK(r.header("X-Most-Recent-Checkpoint") == "100000000");
  CHECK(json_number(r.body, "most_recent_checkpoint") == 100'000'000);
  CHECK(json_number(r.body, "most_recent_node_tip") == 100'000'000);
  CHECK(r.body.find("\"connection_status\":\"connected\"") != std::string::npos);
  CHECK(r.body.find("\"network_synchronization\":1.00000") != std::string::npos);
  CHECK(r.body.find("\"seconds_since_last_block\":") != std::string::npos);
  CHECK(r.body.find("\"version\":") != std::string::npos);

  // Kupo: no Accept means JSON, text/plain and */* mean Prometheus, others are refused.
  CHECK(call(port, "GET", "/health").body.front() == '{');
  Reply text = call(port, "GET", "/health", "Accept: text/plain\r\n");
  CHECK(text.header("Content-Type") == "text/plain;charset=utf-8");
  CHECK(text.body.find("kupo_connection_status  1.0") != std::string::npos);
  CHECK(text.body.find("kupo_most_recent_checkpoint  100000000") != std::string::npos);
  CHECK(call(port, "GET", "/health", "Accept: */*\r\n").body.find("# TYPE") == 0);
  CHECK(call(port, "GET", "/health", "Accept: image/png\r\n").status == 400);

  CHECK(control(port, R"({"health":"behind"})").status == 200);
  r = call(port, "GET", "/health", json);
  CHECK(r.status == 202);
  CHECK(json_number(r.body, "most_recent_node_tip") -
            json_number(r.body, "most_recent_checkpoint") >=
        SimChain::kDefaultBehindLag);
  CHECK(r.header("X-Most-Recent-Checkpoint") ==
        std::to_string(json_number(r.body, "most_recent_checkpoint")));

  CHECK(control(port, R"({"health":"disconnected"})").status == 200);
  r = call(port, "GET", "/health", json);
  CHECK(r.status == 503);
  CHECK(r.body.find("\"connection_status\":\"disconnected\"") != std::string::npos);
  CHECK(call(port, "GET", "/health", "Accept: text/plain\r\n")
            .body.find("kupo_connection_status  0.0") != std::string::npos);

  CHECK(control(port, R"({"health":"synced"})").status == 200);
  CHECK(call(port, "GET", "/health", json).status == 200);
  CHECK(control(port, R"({"tip_lag_slots":600})").status == 200);
  r = call(port, "GET", "/health", json);
  CHECK(r.status == 202);
  CHECK(r.header("X-Most-Recent-Checkpoint") == "99999400");
  fleet.stop();
}

TEST_CASE("sim_backend: Kupo endpoints, X-Most-Recent-Checkpoint on data, 404 and 406") {
  Fleet fleet;
  const uint16_t port = fleet.add(fixed("kupo-e"));
  fleet.start();

  Reply m =
      call(port, "GET", "/matches/addr1vyc29pvl2uyzqt8nwxrcxnf558ffm27u3d9calxn8tdudjgz4xq9p");
  CHECK(m.status == 200);
  CHECK(m.header("Transfer-Encoding") == "chunked");
  CHECK(m.header("X-Most-Recent-Checkpoint") == "100000000");
  CHECK(m.header("X-Backend") == "kupo-e");
  CHECK(m.body.front() == '[');
  CHECK(m.body.back() == ']');
  const size_t n = count_of(m.body, "\"transaction_id\"");
  CHECK(n >= 2);
  // One chunk per match, plus the brackets.
  CHECK(count_of(m.raw, "\r\n{\"transaction_index\"") + count_of(m.raw, "\r\n,{") == n);
  CHECK(call(port, "GET", "/v1/matches/addr1vyc29pvl2uyzqt8nwxrcxnf558ffm27u3d9calxn8tdudjgz4xq9p")
            .body == m.body);
  Reply spent = call(port, "GET", "/matches/*/*?spent");
  Reply unspent = call(port, "GET", "/matches/*/*?unspent&order=oldest_first");
  Reply both = call(port, "GET", "/matches/*/*");
  CHECK(count_of(spent.body, "\"spent_at\":null") == 0);
  CHECK(count_of(unspent.body, "\"spent_at\":{") == 0);
  CHECK(count_of(spent.body, "transaction_id") + count_of(unspent.body, "transaction_id") ==
        count_of(both.body, "transaction_id"));
  CHECK(call(port, "GET", "/matches?spent&unspent").status == 400);
  CHECK(call(port, "GET", "/matches?order=sideways").status == 400);
  CHECK(call(port, "GET", "/matches/a/b/c").status == 400);

  Reply cps = call(port, "GET", "/checkpoints");
  CHECK(cps.status == 200);
  CHECK(cps.body.find("{\"slot_no\":100000000,") == 1);
  CHECK(call(port, "GET", "/checkpoints/99999990").body.find("\"slot_no\":99999980") !=
        std::string::npos);
  CHECK(call(port, "GET", "/checkpoints/99999990?strict").body == "null");
  CHECK(call(port, "GET", "/checkpoints/abc").status == 400);

  Reply d = call(port, "GET", "/datums/" + std::string(64, 'a'));
  CHECK(d.status == 200);
  CHECK(d.has("X-Most-Recent-Checkpoint"));
  CHECK(d.body.find("\"datum\":\"d8799f") != std::string::npos);
  CHECK(call(port, "GET", "/datums/zz").status == 400);
  CHECK(call(port, "GET", "/scripts/" + std::string(56, 'b')).body.find("\"language\"") !=
        std::string::npos);
  Reply md = call(port, "GET", "/metadata/99999990");
  CHECK(md.status == 200);
  CHECK(md.header("X-Block-Header-Hash") == SimChain::header_hash(99'999'980));
  CHECK(md.body.find("\"674\"") != std::string::npos);

  // ETag / If-None-Match as Kupo's cache: 304 while the checkpoint has not moved.
  Reply cached = call(port, "GET", "/matches",
                      "If-None-Match: " + SimChain::header_hash(100'000'000) + "\r\n");
  CHECK(cached.status == 304);
  CHECK(cached.body.empty());

  CHECK(call(port, "GET", "/patterns").body == "[\"*\"]");
  CHECK(call(port, "PUT", "/patterns/addr1abc", "", R"({"rollback_to":{"slot_no":1}})").body ==
        "[\"*\",\"addr1abc\"]");
  CHECK(call(port, "DELETE", "/patterns/addr1abc").body == "{\"deleted\":1}");
  Reply del = call(port, "DELETE", "/matches/addr1abc");
  CHECK(del.status == 200);
  CHECK(del.body.find("\"deleted\":") != std::string::npos);

  Reply nf = call(port, "GET", "/nope");
  CHECK(nf.status == 404);
  CHECK(nf.body.find("\"hint\"") != std::string::npos);
  CHECK(call(port, "GET", "/health/extra").status == 404);
  CHECK(call(port, "POST", "/health").status == 406);  // Kupo's own choice, not 405
  CHECK(call(port, "POST", "/matches").status == 406);
  CHECK(call(port, "HEAD", "/matches").status == 406);
  CHECK(call(port, "OPTIONS", "/matches").header("Access-Control-Allow-Origin") == "*");
  fleet.stop();
}

TEST_CASE("sim_backend: above capacity it answers exactly the surplus with 503") {
  constexpr int kCapacity = 3;
  constexpr int kSurplus = 4;
  Fleet fleet;
  SimOptions o = fixed("kupo-c");
  o.capacity = kCapacity;
  o.latency_ms = 300;  // long enough for every request to arrive while the first are held
  const uint16_t port = fleet.add(o);
  fleet.start();

  std::vector<int> fds;
  for (int i = 0; i < kCapacity + kSurplus; ++i) {
    fds.push_back(connect_to(port));
    REQUIRE(fds.back() >= 0);
    send_request(fds.back(), "GET", "/matches/addr1test" + std::to_string(i));
  }
  // Health never touches Kupo's database: it is answered at once even when saturated.
  auto t0 = std::chrono::steady_clock::now();
  CHECK(call(port, "GET", "/health").status == 200);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(200));
  Reply mid = call(port, "GET", "/_sim/stats");
  CHECK(json_number(mid.body, "in_flight") == kCapacity);

  int ok = 0, busy = 0;
  for (int fd : fds) {
    Reply r = read_reply(fd);
    ::close(fd);
    if (r.status == 200) ++ok;
    if (r.status == 503) {
      ++busy;
      CHECK(r.body.find("\"hint\"") != std::string::npos);
      CHECK(r.header("X-Backend") == "kupo-c");
    }
  }
  CHECK(ok == kCapacity);
  CHECK(busy == kSurplus);
  Reply stats = call(port, "GET", "/_sim/stats");
  CHECK(stats.body.find("\"name\":\"kupo-c\"") != std::string::npos);
  CHECK(json_number(stats.body, "requests") == kCapacity + kSurplus + 1);  // + /health
  CHECK(json_number(stats.body, "in_flight") == 0);
  CHECK(json_number(stats.body, "rejected_503") == kSurplus);
  fleet.stop();
  CHECK(fleet.done_calls() == 1);
}

// by_route.null counts the lookups answered `null`, not the ones refused with 503 nor the
// malformed ones, while datums and scripts count every request.
TEST_CASE("sim_backend: by_route null counts only the lookups answered null") {
  constexpr int kCapacity = 3;
  constexpr int kSurplus = 2;
  Fleet fleet;
  SimOptions o = fixed("kupo-n");
  o.capacity = kCapacity;
  o.latency_ms = 300;    // every request arrives while the first are held
  o.null_percent = 100;  // every well-formed hash is in the null set
  const uint16_t port = fleet.add(o);
  fleet.start();

  std::vector<int> fds;
  for (int i = 0; i < kCapacity + kSurplus; ++i) {
    fds.push_back(connect_to(port));
    REQUIRE(fds.back() >= 0);
    send_request(fds.back(), "GET", "/datums/" + std::string(63, 'a') + char('0' + i));
  }
  int nulls = 0, busy = 0;
  for (int fd : fds) {
    Reply r = read_reply(fd);
    ::close(fd);
    nulls += r.status == 200 && r.body == "null";
    busy += r.status == 503;
  }
  CHECK(nulls == kCapacity);
  CHECK(busy == kSurplus);
  CHECK(call(port, "GET", "/v1/scripts/" + std::string(56, 'b')).body == "null");
  CHECK(call(port, "GET", "/datums/nothex").status == 400);

  Reply stats = call(port, "GET", "/_sim/stats");
  auto j = FlatJson::parse(stats.body);
  REQUIRE(j.has_value());
  auto count = [&](const char* path) {
    auto v = j->lookup(path);
    REQUIRE(v.has_value());
    REQUIRE(v->as_count().has_value());
    return *v->as_count();
  };
  CHECK(count("by_route.datums") == kCapacity + kSurplus + 1);
  CHECK(count("by_route.scripts") == 1);
  CHECK(count("by_route.null") == kCapacity + 1);
  CHECK(count("rejected_503") == kSurplus);
  fleet.stop();
}

TEST_CASE("sim_backend: /_sim/control changes latency, capacity, tip and liveness") {
  Fleet fleet;
  const uint16_t port = fleet.add(fixed("kupo-x"));
  fleet.start();

  SUBCASE("latency") {
    auto timed = [&] {
      auto t0 = std::chrono::steady_clock::now();
      CHECK(call(port, "GET", "/datums/" + std::string(64, 'c')).status == 200);
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now() - t0)
          .count();
    };
    CHECK(timed() < 100);
    Reply c = control(port, R"({"latency_ms":150})");
    CHECK(c.status == 200);
    CHECK(c.body.find("\"latency_ms\":150") != std::string::npos);
    CHECK(timed() >= 140);
  }
  SUBCASE("capacity 0 means no limit, and a held 503 waits like Kupo's retries") {
    CHECK(control(port, R"({"capacity":0,"latency_ms":50})").status == 200);
    CHECK(call(port, "GET", "/checkpoints").status == 200);
    CHECK(control(port, R"({"capacity":1,"latency_ms":300,"reject_delay_ms":100})").status == 200);
    int held = connect_to(port);
    send_request(held, "GET", "/checkpoints");
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    auto t0 = std::chrono::steady_clock::now();
    CHECK(call(port, "GET", "/checkpoints").status == 503);
    CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(90));
    CHECK(read_reply(held).status == 200);
    ::close(held);
  }
  SUBCASE("tip lag and freeze move X-Most-Recent-Checkpoint") {
    CHECK(control(port, R"({"tip_lag_slots":2000})").status == 200);
    CHECK(call(port, "GET", "/checkpoints/1").header("X-Most-Recent-Checkpoint") == "99998000");
    Reply c = control(port, R"({"freeze_tip":false,"tip_lag_slots":0})");
    CHECK(c.body.find("\"freeze_tip\":false") != std::string::npos);
    CHECK(json_number(c.body, "most_recent_node_tip") >= 100'000'000);
  }
  SUBCASE("dead aborts without answering, held requests included, and can be revived") {
    CHECK(control(port, R"({"latency_ms":500})").status == 200);
    int held = connect_to(port);
    send_request(held, "GET", "/checkpoints");
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    auto t0 = std::chrono::steady_clock::now();
    CHECK(control(port, R"({"dead":true})").status == 200);
    Reply r = read_reply(held);
    ::close(held);
    CHECK(r.status == 0);
    CHECK(r.raw.empty());
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(400));
    CHECK(call(port, "GET", "/health").raw.empty());
    CHECK(json_number(call(port, "GET", "/_sim/stats").body, "in_flight") == 0);
    CHECK(control(port, R"({"dead":false,"latency_ms":0})").status == 200);
    CHECK(call(port, "GET", "/health").status == 200);
  }
  SUBCASE("bad control bodies change nothing") {
    CHECK(control(port, "not json").status == 400);
    CHECK(control(port, R"({"latency_ms":"fast"})").status == 400);
    CHECK(control(port, R"({"health":"sleepy"})").status == 400);
    CHECK(control(port, R"({"capacity":2,"bogus":true})").status == 400);
    CHECK(json_number(call(port, "GET", "/_sim/control").body, "capacity") == 50);
    CHECK(call(port, "GET", "/_sim/unknown").status == 404);
  }
  fleet.stop();
}

TEST_CASE("sim_backend: start_sim_fleet starts named instances on distinct ports") {
  Fleet fleet;
  fleet.adopt(start_sim_fleet(fleet.loop(), 3, "127.0.0.1"));
  REQUIRE(fleet.backends().size() == 3);
  std::vector<uint16_t> ports;
  for (const auto& b : fleet.backends()) ports.push_back(b->port());
  fleet.start();
  for (int i = 0; i < 3; ++i) {
    CHECK(ports[i] != 0);
    Reply r = call(ports[i], "GET", "/health", "Accept: application/json\r\n");
    CHECK(r.status == 200);
    CHECK(r.header("X-Backend") == "kupo-" + std::to_string(i + 1));
  }
  CHECK(ports[0] != ports[1]);
  CHECK(ports[1] != ports[2]);
  fleet.stop();
  CHECK(fleet.done_calls() == 3);
}
