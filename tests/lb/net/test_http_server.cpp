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
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "lb/net/http_server.h"

using namespace lb::net;

namespace {

// Runs an HttpServer on its own loop thread; the test thread plays a blocking POSIX client.
// stop() closes the server from the loop thread and checks that every handle was closed.
class ServerThread {
 public:
  explicit ServerThread(Handler handler, ServerOptions options = {}) {
    std::signal(SIGPIPE, SIG_IGN);  // a client closing early must not kill the test binary
    uv_loop_init(&loop_);
    server_ = std::make_unique<HttpServer>(&loop_, std::move(handler), options);
    listen_status_ = server_->listen("127.0.0.1", 0);
    port_ = server_->port();
    uv_async_init(&loop_, &wake_, &ServerThread::on_wake);
    wake_.data = this;
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
  }
  ~ServerThread() { stop(); }

  uv_loop_t* loop() { return &loop_; }
  uint16_t port() const { return port_; }
  int listen_status() const { return listen_status_; }
  int done_calls() const { return done_calls_; }

  // Runs `fn` on the loop thread.
  void post(std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.push_back(std::move(fn));
    }
    uv_async_send(&wake_);
  }

  void stop() {
    if (stopped_) return;
    stopped_ = true;
    post([this] {
      server_->close([this] {
        ++done_calls_;
        uv_close(reinterpret_cast<uv_handle_t*>(&wake_), nullptr);
      });
    });
    thread_.join();
    server_.reset();
    CHECK(done_calls_ == 1);
    CHECK(uv_loop_close(&loop_) == 0);  // nothing left open
  }

 private:
  static void on_wake(uv_async_t* a) {
    auto* self = static_cast<ServerThread*>(a->data);
    std::vector<std::function<void()>> tasks;
    {
      std::lock_guard<std::mutex> lock(self->mu_);
      tasks.swap(self->tasks_);
    }
    for (auto& t : tasks) t();
  }

  uv_loop_t loop_{};
  uv_async_t wake_{};
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::function<void()>> tasks_;
  int listen_status_ = 0;
  uint16_t port_ = 0;
  int done_calls_ = 0;
  bool stopped_ = false;
};

int connect_to(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{2, 0};  // no test may hang
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

void send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

struct RawResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string header(std::string_view name) const {
    for (const auto& [n, v] : headers)
      if (lb::iequals(n, name)) return v;
    return {};
  }
};

// Parses complete responses from `data` (Content-Length or chunked framing). Returns false
// in `complete` when the last one is cut short.
std::vector<RawResponse> parse_responses(const std::string& data, bool* complete = nullptr) {
  std::vector<RawResponse> out;
  size_t pos = 0;
  if (complete) *complete = true;
  while (pos < data.size()) {
    size_t head_end = data.find("\r\n\r\n", pos);
    if (head_end == std::string::npos) break;
    RawResponse r;
    std::string head = data.substr(pos, head_end - pos);
    size_t line_end = head.find("\r\n");
    std::string status_line = head.substr(0, line_end);
    r.status = std::atoi(status_line.c_str() + 9);
    size_t p = line_end == std::string::npos ? head.size() : line_end + 2;
    while (p < head.size()) {
      size_t e = head.find("\r\n", p);
      if (e == std::string::npos) e = head.size();
      std::string line = head.substr(p, e - p);
      size_t colon = line.find(':');
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers.emplace_back(line.substr(0, colon), value);
      p = e + 2;
    }
    pos = head_end + 4;
    if (r.status == 100) continue;  // interim
    if (r.header("Transfer-Encoding") == "chunked") {
      while (true) {
        size_t e = data.find("\r\n", pos);
        if (e == std::string::npos) {
          if (complete) *complete = false;
          return out;
        }
        size_t n = std::stoul(data.substr(pos, e - pos), nullptr, 16);
        if (data.size() < e + 2 + n + 2) {
          if (complete) *complete = false;
          return out;
        }
        r.body += data.substr(e + 2, n);
        pos = e + 2 + n + 2;
        if (n == 0) break;
      }
    } else if (!r.header("Content-Length").empty()) {
      size_t n = std::stoul(r.header("Content-Length"));
      if (data.size() < pos + n) {
        if (complete) *complete = false;
        return out;
      }
      r.body = data.substr(pos, n);
      pos += n;
    }
    out.push_back(std::move(r));
  }
  if (pos < data.size() && complete) *complete = false;
  return out;
}

// Reads until `count` complete responses arrived, the peer closed, or 2 s passed.
std::string read_responses(int fd, size_t count, bool* closed = nullptr) {
  std::string data;
  char buf[8192];
  if (closed) *closed = false;
  while (true) {
    bool complete = false;
    if (count > 0 && parse_responses(data, &complete).size() >= count && complete) return data;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      if (closed) *closed = n == 0 || errno == ECONNRESET;
      return data;
    }
    data.append(buf, static_cast<size_t>(n));
  }
}

std::string read_until_close(int fd, bool* closed = nullptr) {
  return read_responses(fd, 0, closed);
}

// Answers from a one-shot timer, as a backend with latency would.
void respond_later(uv_loop_t* loop, uint64_t ms, std::function<void()> fn) {
  struct Later {
    uv_timer_t timer;
    std::function<void()> fn;
  };
  auto* l = new Later{{}, std::move(fn)};
  uv_timer_init(loop, &l->timer);
  l->timer.data = l;
  uv_timer_start(
      &l->timer,
      [](uv_timer_t* t) {
        auto* l = static_cast<Later*>(t->data);
        l->fn();
        uv_close(reinterpret_cast<uv_handle_t*>(t),
                 [](uv_handle_t* h) { delete static_cast<Later*>(h->data); });
      },
      ms, 0);
}

}  // namespace

TEST_CASE("http_server: a simple GET is answered, and keep-alive serves a second one") {
  std::atomic<int> calls{0};
  ServerThread srv([&](const ServerRequest& req, Responder r) {
    ++calls;
    CHECK(req.method == "GET");
    CHECK(req.peer.substr(0, 10) == "127.0.0.1:");
    auto host = lb::find_header(req.headers, "host");
    CHECK(host.found);
    r.respond(200, "text/plain", "hello " + std::string(req.target), {{"X-Test", "1"}});
  });
  REQUIRE(srv.listen_status() == 0);
  REQUIRE(srv.port() != 0);
  int fd = connect_to(srv.port());
  REQUIRE(fd >= 0);
  send_all(fd, "GET /hi?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
  auto first = parse_responses(read_responses(fd, 1));
  REQUIRE(first.size() == 1);
  CHECK(first[0].status == 200);
  CHECK(first[0].body == "hello /hi?x=1");
  CHECK(first[0].header("Connection") == "keep-alive");
  CHECK(first[0].header("X-Test") == "1");
  CHECK(first[0].header("Content-Type") == "text/plain");

  send_all(fd, "GET /again HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  bool closed = false;
  auto second = parse_responses(read_until_close(fd, &closed));
  CHECK(closed);
  REQUIRE(second.size() == 1);
  CHECK(second[0].body == "hello /again");
  CHECK(second[0].header("Connection") == "close");
  ::close(fd);
  srv.stop();
  CHECK(calls == 2);
}

TEST_CASE("http_server: status lines carry the shared reason-phrase table") {
  // 409 and 422 were missing from the server's old private table; 599 is in no table.
  ServerThread srv([&](const ServerRequest& req, Responder r) {
    r.respond(std::atoi(std::string(req.target.substr(1)).c_str()), "text/plain", "x");
  });
  REQUIRE(srv.listen_status() == 0);
  int fd = connect_to(srv.port());
  REQUIRE(fd >= 0);
  send_all(fd,
           "GET /409 HTTP/1.1\r\nHost: a\r\n\r\n"
           "GET /422 HTTP/1.1\r\nHost: a\r\n\r\n"
           "GET /599 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  std::string data = read_until_close(fd);
  ::close(fd);
  srv.stop();
  CHECK(parse_responses(data).size() == 3);
  const size_t conflict = data.find("HTTP/1.1 409 Conflict\r\n");
  const size_t unprocessable = data.find("HTTP/1.1 422 Unprocessable Content\r\n");
  const size_t unknown = data.find("HTTP/1.1 599 Unknown\r\n");
  CHECK(conflict == 0);
  CHECK(unprocessable != std::string::npos);
  CHECK(unknown != std::string::npos);
  CHECK(unprocessable < unknown);
}

TEST_CASE("http_server: pipelined requests are answered strictly in order") {
  std::mutex mu;
  std::vector<std::string> events;
  ServerThread* self = nullptr;
  ServerThread srv([&](const ServerRequest& req, Responder r) {
    std::string target(req.target);
    {
      std::lock_guard<std::mutex> lock(mu);
      events.push_back("call " + target);
    }
    auto answer = [&, target, r]() mutable {
      {
        std::lock_guard<std::mutex> lock(mu);
        events.push_back("answer " + target);
      }
      r.respond(200, "text/plain", "body of " + target);
    };
    // The first one is slow: the second must still wait for it.
    if (target == "/a")
      respond_later(self->loop(), 60, answer);
    else
      answer();
  });
  self = &srv;
  int fd = connect_to(srv.port());
  REQUIRE(fd >= 0);
  send_all(fd,
           "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
           "GET /b HTTP/1.1\r\nHost: a\r\n\r\n"
           "GET /c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  auto rs = parse_responses(read_until_close(fd));
  ::close(fd);
  srv.stop();
  REQUIRE(rs.size() == 3);
  CHECK(rs[0].body == "body of /a");
  CHECK(rs[1].body == "body of /b");
  CHECK(rs[2].body == "body of /c");
  std::vector<std::string> want = {"call /a",   "answer /a", "call /b",
                                   "answer /b", "call /c",   "answer /c"};
  CHECK(events == want);
}

TEST_CASE("http_server: a response sent later from a timer arrives") {
  std::atomic<int> calls{0};
  ServerThread* self = nullptr;
  ServerThread srv([&](const ServerRequest&, Responder r) {
    ++calls;
    CHECK(r.alive());
    respond_later(self->loop(), 100, [r]() mutable { r.respond(200, "text/plain", "late"); });
  });
  self = &srv;
  int fd = connect_to(srv.port());
  auto t0 = std::chrono::steady_clock::now();
  send_all(fd, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n");
  auto rs = parse_responses(read_responses(fd, 1));
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  ::close(fd);
  srv.stop();
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].body == "late");
  CHECK(ms >= 90);
  CHECK(calls == 1);
}

TEST_CASE("http_server: a streamed response decodes to the expected body") {
  ServerThread srv([&](const ServerRequest& req, Responder r) {
    r.begin(200, "application/json", {{"X-Stream", "yes"}});
    r.chunk("[1");
    r.chunk("");  // ignored: an empty chunk would end the stream
    r.chunk(",2");
    r.chunk(",3]");
    r.end();
    r.chunk("late");  // after end(): ignored
    (void)req;
  });
  int fd = connect_to(srv.port());
  send_all(fd, "GET /stream HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  std::string raw = read_until_close(fd);
  ::close(fd);
  srv.stop();
  CHECK(raw.find("\r\n\r\n2\r\n[1\r\n2\r\n,2\r\n3\r\n,3]\r\n0\r\n\r\n") != std::string::npos);
  auto rs = parse_responses(raw);
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].header("Transfer-Encoding") == "chunked");
  CHECK(rs[0].header("X-Stream") == "yes");
  CHECK(rs[0].body == "[1,2,3]");
}

TEST_CASE("http_server: a malformed request gets 400 and the connection closes") {
  std::atomic<int> calls{0};
  ServerThread srv([&](const ServerRequest&, Responder r) {
    ++calls;
    r.respond(200, "text/plain", "no");
  });
  int fd = connect_to(srv.port());
  send_all(fd, "GARBAGE \x01\x02 nonsense\r\n\r\n");
  bool closed = false;
  auto rs = parse_responses(read_until_close(fd, &closed));
  ::close(fd);
  srv.stop();
  CHECK(closed);
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].status == 400);
  CHECK(rs[0].header("Connection") == "close");
  CHECK(rs[0].body.find("\"error\"") != std::string::npos);
  CHECK(calls == 0);
}

TEST_CASE("http_server: an oversized head gets 431 and the connection closes") {
  ServerOptions o;
  o.max_header_bytes = 1024;
  std::atomic<int> calls{0};
  ServerThread srv(
      [&](const ServerRequest&, Responder r) {
        ++calls;
        r.respond(200, "text/plain", "no");
      },
      o);
  int fd = connect_to(srv.port());
  send_all(fd, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(4000, 'x') + "\r\n\r\n");
  bool closed = false;
  auto rs = parse_responses(read_until_close(fd, &closed));
  ::close(fd);
  srv.stop();
  CHECK(closed);
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].status == 431);
  CHECK(calls == 0);
}

TEST_CASE("http_server: request bodies, HEAD, 411 for chunked bodies") {
  std::atomic<int> calls{0};
  ServerThread srv([&](const ServerRequest& req, Responder r) {
    ++calls;
    r.respond(200, "text/plain", req.method == "POST" ? std::string(req.body) : "0123456789");
  });

  SUBCASE("a Content-Length body split across writes is buffered whole") {
    int fd = connect_to(srv.port());
    std::string body(100000, 'b');
    send_all(fd, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" +
                     body.substr(0, 10));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    send_all(fd, body.substr(10));
    send_all(fd, "GET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    auto rs = parse_responses(read_until_close(fd));
    ::close(fd);
    REQUIRE(rs.size() == 2);
    CHECK(rs[0].body == body);
    CHECK(rs[1].body == "0123456789");
  }
  SUBCASE("HEAD sends the length of the body it does not send") {
    int fd = connect_to(srv.port());
    send_all(fd,
             "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"
             "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    std::string raw = read_until_close(fd);
    ::close(fd);
    // The HEAD response has Content-Length: 10 and no body; the GET response follows.
    size_t first_end = raw.find("\r\n\r\n");
    REQUIRE(first_end != std::string::npos);
    CHECK(raw.substr(0, first_end).find("Content-Length: 10") != std::string::npos);
    CHECK(raw.compare(first_end + 4, 15, "HTTP/1.1 200 OK") == 0);
    CHECK(raw.substr(raw.size() - 10) == "0123456789");
  }
  SUBCASE("a chunked request body gets 411") {
    int fd = connect_to(srv.port());
    send_all(fd,
             "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
             "3\r\nabc\r\n0\r\n\r\n");
    bool closed = false;
    auto rs = parse_responses(read_until_close(fd, &closed));
    ::close(fd);
    CHECK(closed);
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].status == 411);
  }
  srv.stop();
}

TEST_CASE("http_server: abort resets, a late responder is harmless, idle connections close") {
  ServerOptions o;
  o.idle_timeout_ms = 150;
  std::atomic<int> late_dead{0};
  ServerThread* self = nullptr;
  ServerThread srv(
      [&](const ServerRequest& req, Responder r) {
        if (req.target == "/abort") {
          r.abort();
        } else if (req.target == "/late") {
          respond_later(self->loop(), 80, [r, &late_dead]() mutable {
            if (!r.alive()) ++late_dead;
            r.respond(200, "text/plain", "nobody listens");  // must be a no-op
          });
        }
      },
      o);
  self = &srv;

  int fd = connect_to(srv.port());
  send_all(fd, "GET /abort HTTP/1.1\r\nHost: a\r\n\r\n");
  bool closed = false;
  std::string got = read_until_close(fd, &closed);
  ::close(fd);
  CHECK(got.empty());
  CHECK(closed);

  fd = connect_to(srv.port());
  send_all(fd, "GET /late HTTP/1.1\r\nHost: a\r\n\r\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // Gone before the answer, with a reset: a plain close would be a legal half-close.
  linger lg{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  ::close(fd);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  CHECK(late_dead == 1);

  fd = connect_to(srv.port());
  auto t0 = std::chrono::steady_clock::now();
  got = read_until_close(fd, &closed);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  ::close(fd);
  CHECK(closed);
  CHECK(got.empty());
  CHECK(ms >= 100);
  CHECK(ms < 1500);
  srv.stop();
}

TEST_CASE("http_server: close() ends open keep-alive connections and then runs done") {
  ServerThread srv([&](const ServerRequest&, Responder r) { r.respond(204, "", ""); });
  int fd = connect_to(srv.port());
  send_all(fd, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  auto rs = parse_responses(read_responses(fd, 1));
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].status == 204);
  CHECK(rs[0].header("Content-Length").empty());
  srv.stop();  // checks done ran once and the loop closes with nothing left open
  bool closed = false;
  read_until_close(fd, &closed);
  CHECK(closed);
  ::close(fd);
}
