#pragma once
// A real redis-server for lb/net tests, started on a free loopback port (redis-server has
// no "port 0": a port is picked and retried if taken), SIGKILLed and reaped by RAII (and
// by PDEATHSIG if the test process itself dies), plus a loop that tests turn until a
// condition holds and a synchronous client (Cli) for the test's own view of the keys.
// Tests skip when redis-server is not installed (have_redis(), RedisCase::started()).
#include <doctest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace redis_test {

inline const char* kRedis = "/usr/bin/redis-server";

inline uint16_t free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

inline bool port_open(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

// One redis-server child; killed (SIGKILL) and reaped by the destructor.
class RedisServer {
 public:
  // Not started (ok() false) when redis-server is not installed.
  explicit RedisServer(std::string password = "") : password_(std::move(password)) {
    if (access(kRedis, X_OK) != 0) return;
    for (int i = 0; i < 5 && pid_ <= 0; ++i) start(free_port());
  }
  ~RedisServer() { kill(); }
  bool ok() const { return pid_ > 0; }
  uint16_t port() const { return port_; }
  void pause() { ::kill(pid_, SIGSTOP); }
  void resume() { ::kill(pid_, SIGCONT); }
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // Starts again on the same port (retrying while the old socket lingers).
  bool restart() {
    kill();
    for (int i = 0; i < 20 && pid_ <= 0; ++i) {
      start(port_);
      if (pid_ <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return ok();
  }

 private:
  void start(uint16_t port) {
    std::string p = std::to_string(port);
    std::vector<std::string> args = {kRedis,      "--port",           p,    "--bind",
                                     "127.0.0.1", "--save",           "",   "--appendonly",
                                     "no",        "--protected-mode", "no", "--logfile",
                                     "/dev/null", "--daemonize",      "no"};
    if (!password_.empty()) {
      args.push_back("--requirepass");
      args.push_back(password_);
    }
    pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      std::vector<char*> av;
      for (auto& a : args) av.push_back(a.data());
      av.push_back(nullptr);
      execv(kRedis, av.data());
      _exit(127);
    }
    for (int i = 0; i < 100; ++i) {                       // up to 5 s
      if (waitpid(pid, nullptr, WNOHANG) == pid) return;  // e.g. address in use
      if (port_open(port)) {
        pid_ = pid;
        port_ = port;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }

  std::string password_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

struct Loop {
  uv_loop_t loop{};
  Loop() { uv_loop_init(&loop); }
  ~Loop() {
    uv_run(&loop, UV_RUN_NOWAIT);  // the closes of freed links
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
  }
  // Runs the loop until pred() or ms elapse; returns pred().
  bool until(const std::function<bool()>& pred, uint64_t ms) {
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    bool expired = false;
    t.data = &expired;
    uv_timer_start(
        &t, [](uv_timer_t* h) { *static_cast<bool*>(h->data) = true; }, ms, 0);
    while (!pred() && !expired) uv_run(&loop, UV_RUN_ONCE);
    uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
    uv_run(&loop, UV_RUN_NOWAIT);
    return pred();
  }
  void pause(uint64_t ms) {
    until([] { return false; }, ms);
  }
};

// Milliseconds since t0.
inline long ms_since(std::chrono::steady_clock::time_point t0) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count());
}

inline bool have_redis() {
  if (access(kRedis, X_OK) == 0) return true;
  MESSAGE("redis-server is not installed (scripts/install-deps.sh): skipped");
  return false;
}

// A test's redis-server (TEST_CASE_FIXTURE): the test starts with `if (!started()) return;`.
struct RedisCase {
  RedisServer redis;
  // False (the test is skipped) when redis-server is not installed; fails when it did not
  // start.
  bool started() {
    if (!have_redis()) return false;
    REQUIRE(redis.ok());
    return true;
  }
};

// The same with a loop for the test's links; once the test's objects are gone, the loop
// turns 20 ms (their handles close), then it closes, then the server is killed.
struct RedisLoopCase : RedisCase {
  Loop l;
  ~RedisLoopCase() { l.pause(20); }
};

// A synchronous hiredis connection: the test's view of the store.
class Cli {
 public:
  explicit Cli(uint16_t port) {
    timeval tv{2, 0};
    c_ = redisConnectWithTimeout("127.0.0.1", port, tv);
    REQUIRE(c_ != nullptr);
    REQUIRE(c_->err == 0);
    redisSetTimeout(c_, tv);
  }
  ~Cli() { redisFree(c_); }
  Cli(const Cli&) = delete;
  Cli& operator=(const Cli&) = delete;

  // The reply as text: a string, an integer, "(nil)" or "(error)"; an array's first element.
  std::string run(const std::vector<std::string>& argv) {
    std::vector<const char*> av;
    std::vector<size_t> lens;
    for (auto& a : argv) {
      av.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c_, static_cast<int>(av.size()), av.data(), lens.data()));
    return take(r);
  }
  // The next message pushed on a SUBSCRIBEd connection (its payload), or "" after 2 s.
  std::string next_message() {
    void* r = nullptr;
    if (redisGetReply(c_, &r) != REDIS_OK || r == nullptr) return "";
    auto* m = static_cast<redisReply*>(r);
    std::string out;
    if (m->type == REDIS_REPLY_ARRAY && m->elements == 3 && m->element[2]->str)
      out.assign(m->element[2]->str, m->element[2]->len);
    freeReplyObject(m);
    return out;
  }

 private:
  static std::string take(redisReply* r) {
    if (r == nullptr) return "(error)";
    if (r->type == REDIS_REPLY_ARRAY) {
      std::string first = r->elements > 0 && r->element[0]->str
                              ? std::string(r->element[0]->str, r->element[0]->len)
                              : "";
      freeReplyObject(r);
      return first;
    }
    std::string out = r->type == REDIS_REPLY_INTEGER ? std::to_string(r->integer)
                      : r->type == REDIS_REPLY_NIL   ? "(nil)"
                      : r->type == REDIS_REPLY_ERROR ? "(error)"
                                                     : std::string(r->str ? r->str : "", r->len);
    freeReplyObject(r);
    return out;
  }
  redisContext* c_;
};

}  // namespace redis_test
