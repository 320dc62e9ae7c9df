#pragma once
// What the HTTP (load_client.cpp) and the WebSocket (load_ws.cpp) load workers share, so
// each concept lives once: the libuv loop with its end, sweep and live timers, the
// open-loop schedule (wrk2), the latency accounting of an answer and of what was left
// unanswered at the end, the user key's place in a pre-formatted request, and the
// connect / read / close / reconnect plumbing of one TCP connection. A worker derives
// from LoadLoop; its connection type `Conn` has the members the templates below name
// (w, tcp, timer, connect_req, sched_base, reconnect_delay_ms, free_space()) and its worker has
// connect(Conn&), on_connected(Conn&, int), on_read(Conn&, ssize_t), next(Conn&) and
// on_closed(Conn&).
#include <uv.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench/load_client.h"

namespace bench {

template <typename H>
uv_handle_t* as_handle(H* h) {
  return reinterpret_cast<uv_handle_t*>(h);
}
inline uv_stream_t* as_stream(uv_tcp_t* t) { return reinterpret_cast<uv_stream_t*>(t); }

// A request's target and extra header lines, with the user key's place held by `marker`
// (a run of '\x01' as wide as the key) in the path (path and address keys) or in a
// header line (header and cookie keys), after spec.headers.
struct KeyedTarget {
  std::string path;
  std::vector<std::string> headers;  // "K: V"
  std::string marker;
};
KeyedTarget keyed_target(const LoadSpec& spec);

// Writes the key of `user` (for an address key: its `seq`-th address) at `at`, which has
// room for the key's width.
void patch_key(const LoadSpec& spec, char* at, uint32_t user, uint64_t seq);

class LoadLoop {
 public:
  LoadLoop(const LoadSpec& spec, LoadResult& out, LoadLive& live)
      : spec_(spec), out_(out), live_(live) {}
  virtual ~LoadLoop() = default;
  LoadLoop(const LoadLoop&) = delete;
  LoadLoop& operator=(const LoadLoop&) = delete;

  bool stopping() const { return stopping_; }

 protected:
  // Every few milliseconds: times out what waited longer than spec.timeout_ns.
  virtual void sweep() = 0;
  // At spec.end_ns: records what is unanswered, closes every handle (close_timers()).
  virtual void finish_run() = 0;

  // The whole run: initialises the loop, the result's per-second and per-user vectors and
  // the schedule interval; creates spec.connections connections (timer ready, schedule
  // staggered across one interval so the total rate is smooth) and lets `prepare(conn, i)`
  // fill in the rest; connects them all and runs the loop until every handle has closed.
  template <class Conn, class Prepare>
  void run_conns(std::vector<std::unique_ptr<Conn>>& conns, Prepare&& prepare);
  // Closes the end, sweep and live timers (from finish_run).
  void close_timers();

  bool open_loop() const { return spec_.rate > 0; }
  bool in_window(uint64_t t) const { return t >= spec_.measure_start_ns && t < spec_.end_ns; }
  // Open-loop schedule: message i of a connection is due at sched_base + i * interval.
  uint64_t due_of(uint64_t sched_base, uint64_t i) const { return sched_base + i * interval_ns_; }
  void count_error(ErrorKind k);
  // The id of backend header value `v` in out.backends (added on first sight), or -1 when
  // kMaxBackends are tracked already.
  int intern_backend(std::string_view v);
  // Records an answer with HTTP status `status` (a WebSocket message: 200) at `now` to a
  // message due at `due` and sent at `sent`; true if it counted (its start in the window,
  // `now` before the end).
  bool record_answer(uint64_t due, uint64_t sent, uint64_t now, int status = 200);
  // At the end, open loop: a message due at `due` and not answered counts with the time it
  // has waited so far (a lower bound), so a stall at the end is not dropped from the tail.
  void record_unfinished(uint64_t due);
  // The same for every message of a connection not sent yet, from index next_index on.
  void record_unsent(uint64_t sched_base, uint64_t next_index);

  // Open loop: arms c.timer to call next(c) for a message due at `due`, unless it is due
  // now; false when it should be sent now.
  template <class Conn>
  bool wait_until_due(Conn& c, uint64_t due, uint64_t now);
  // Inits c.tcp (no Nagle) and starts connecting to spec.addr; on_connected(c, status)
  // follows. Returns uv_tcp_connect's error.
  template <class Conn>
  int start_connect(Conn& c);
  // Reads into c.free_space(), handing each read to on_read(c, n).
  template <class Conn>
  static void start_reading(Conn& c);
  // Closes c.tcp; on_closed(c) follows.
  template <class Conn>
  static void close_tcp(Conn& c);
  // After c.tcp has closed: connects again after c.reconnect_delay_ms, unless the run is over.
  template <class Conn>
  void reconnect(Conn& c);

  static constexpr size_t kMaxBackends = 64;  // distinct backend header values tracked

  const LoadSpec& spec_;
  LoadResult& out_;
  LoadLive& live_;
  uv_loop_t loop_{};
  uint64_t interval_ns_ = 0;
  bool stopping_ = false;

 private:
  void init_run();
  void run_loop();
  void publish();

  uv_timer_t end_timer_{};
  uv_timer_t sweep_timer_{};
  uv_timer_t live_timer_{};
};

template <class Conn, class Prepare>
void LoadLoop::run_conns(std::vector<std::unique_ptr<Conn>>& conns, Prepare&& prepare) {
  init_run();
  conns.reserve(spec_.connections);
  for (uint32_t i = 0; i < spec_.connections; ++i) {
    auto c = std::make_unique<Conn>();
    c->w = static_cast<decltype(c->w)>(this);
    uv_timer_init(&loop_, &c->timer);
    c->timer.data = c.get();
    c->sched_base = spec_.start_ns + interval_ns_ * i / spec_.connections;
    prepare(*c, i);
    conns.push_back(std::move(c));
  }
  for (auto& c : conns) c->w->connect(*c);
  run_loop();
  conns.clear();  // every handle's close callback has run
}

template <class Conn>
bool LoadLoop::wait_until_due(Conn& c, uint64_t due, uint64_t now) {
  // Timers tick in whole milliseconds and may wake a little late, which would add the
  // tool's own lateness to the corrected latency. So the timer aims up to 1 ms before the
  // due time and the message goes out when less than 1 ms early. An early message's
  // latency counts from its actual send (min(due, sent)), so sending early never shortens
  // it, and the schedule stays absolute, so the rate does not drift.
  if (due <= now + 1'000'000) return false;
  uv_update_time(&loop_);
  uv_timer_start(
      &c.timer,
      [](uv_timer_t* t) {
        auto& c = *static_cast<Conn*>(t->data);
        c.w->next(c);
      },
      (due - now + 999'999) / 1'000'000 - 1, 0);  // >= 1 ms: never a busy loop
  return true;
}

template <class Conn>
int LoadLoop::start_connect(Conn& c) {
  uv_tcp_init(&loop_, &c.tcp);
  c.tcp.data = &c;
  uv_tcp_nodelay(&c.tcp, 1);
  c.connect_req.data = &c;
  return uv_tcp_connect(&c.connect_req, &c.tcp, reinterpret_cast<const sockaddr*>(&spec_.addr),
                        [](uv_connect_t* req, int status) {
                          auto& c = *static_cast<Conn*>(req->data);
                          c.w->on_connected(c, status);
                        });
}

template <class Conn>
void LoadLoop::start_reading(Conn& c) {
  uv_read_start(
      as_stream(&c.tcp),
      [](uv_handle_t* h, size_t, uv_buf_t* b) { *b = static_cast<Conn*>(h->data)->free_space(); },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
        auto& c = *static_cast<Conn*>(s->data);
        c.w->on_read(c, n);
      });
}

template <class Conn>
void LoadLoop::close_tcp(Conn& c) {
  uv_close(as_handle(&c.tcp), [](uv_handle_t* h) {
    auto& c = *static_cast<Conn*>(h->data);
    c.w->on_closed(c);
  });
}

template <class Conn>
void LoadLoop::reconnect(Conn& c) {
  if (stopping_) return;
  if (c.reconnect_delay_ms == 0) return c.w->connect(c);
  uv_timer_start(
      &c.timer,
      [](uv_timer_t* t) {
        auto& c = *static_cast<Conn*>(t->data);
        if (!c.w->stopping()) c.w->connect(c);
      },
      c.reconnect_delay_ms, 0);
}

}  // namespace bench
