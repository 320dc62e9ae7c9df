#pragma once
// A real redis-server for lb/net tests, started on a free loopback port (redis-server has
// no "port 0": a port is picked and retried if taken), SIGKILLed and reaped by RAII (and
// by PDEATHSIG if the test process itself dies), plus a loop that tests turn until a
// condition holds. Tests skip when redis-server is not installed (have_redis()).
#include <doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
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
  explicit RedisServer(std::string password = "") : password_(std::move(password)) {
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

inline bool have_redis() {
  if (access(kRedis, X_OK) == 0) return true;
  MESSAGE("redis-server is not installed (scripts/install-deps.sh): skipped");
  return false;
}

}  // namespace redis_test
