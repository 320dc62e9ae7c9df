#include "bench/load_client.h"

#include <uv.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>

#include "lb/core/cip19.h"
#include "lb/core/header_view.h"
#include "lb/http/message_parser.h"

namespace bench {

// ---- keys ----

void format_user_key(uint32_t user, char out[kUserKeyWidth]) {
  std::memcpy(out, "user-", 5);
  for (int i = 12; i >= 5; --i) {
    out[i] = char('0' + user % 10);
    user /= 10;
  }
}

namespace {

// 28 bytes of hash material from two 128-bit xxHash3 digests of (a, b).
void hash28(uint64_t a, uint64_t b, uint64_t seed, uint8_t out[28]) {
  const uint64_t in[2] = {a, b};
  uint8_t buf[32];
  XXH128_hash_t h1 = XXH3_128bits_withSeed(in, sizeof in, seed);
  XXH128_hash_t h2 = XXH3_128bits_withSeed(in, sizeof in, seed + 1);
  std::memcpy(buf, &h1, 16);
  std::memcpy(buf + 16, &h2, 16);
  std::memcpy(out, buf, 28);
}

}  // namespace

void format_base_address(uint32_t user, uint64_t seq, char out[kAddressWidth]) {
  uint8_t raw[57];
  raw[0] = 0x01;  // CIP-19 type 0 (payment key hash, stake key hash), network 1 (mainnet)
  hash28(user, seq, 0x9a11e7, raw + 1);     // payment: new on every request
  hash28(user, 0x5a4e, 0x57a6e, raw + 29);  // stake: the user's wallet
  lb::bech32_encode("addr", raw, out);
}

namespace {

constexpr size_t kInBuf = 65536;
constexpr size_t kMaxHead = 16384;
constexpr uint64_t kReconnectDelayMs =
    10;                              // after a failed connect, so a refusing port is not spun on
constexpr size_t kMaxBackends = 64;  // distinct backend header values tracked

class Worker;

struct Conn {
  enum class State : uint8_t { closed, connecting, idle, busy, closing };

  Worker* w = nullptr;
  uint32_t index = 0;
  uv_tcp_t tcp{};
  uv_timer_t timer{};  // open-loop schedule, and the delay before a reconnect
  uv_connect_t connect_req{};
  uv_write_t write_req{};
  std::optional<lb::http::MessageParser> parser;
  std::unique_ptr<char[]> in{new char[kInBuf]};
  size_t in_len = 0;
  std::string request;  // pre-formatted; the key is patched in at key_off
  size_t key_off = std::string::npos;
  State state = State::closed;
  bool write_pending = false;
  bool send_after_write = false;
  bool stopping = false;
  // Open-loop schedule: request i is due at sched_base + i * interval.
  uint64_t sched_base = 0;
  uint64_t next_index = 0;
  // The request in flight.
  uint64_t due_ns = 0;
  uint64_t sent_ns = 0;
  uint32_t user = 0;
  int backend_id = -1;
  int status = 0;
  int open_handles = 0;
  uint64_t reconnect_delay_ms = 0;
};

class Worker {
 public:
  Worker(const LoadSpec& spec, LoadResult& out, LoadLive& live)
      : spec_(spec), out_(out), live_(live) {}

  void run();

  // Connection events.
  void connect(Conn& c);
  void on_connected(Conn& c);
  void next(Conn& c);
  void send(Conn& c, uint64_t due);
  void write(Conn& c);
  void on_read(Conn& c, ssize_t n);
  void complete(Conn& c, bool send_next);
  void fail(Conn& c, ErrorKind kind);
  void reopen(Conn& c, uint64_t delay_ms);
  void on_closed(Conn& c);

 private:
  bool open_loop() const { return spec_.rate > 0; }
  bool in_window(uint64_t t) const { return t >= spec_.measure_start_ns && t < spec_.end_ns; }
  uint64_t due_of(const Conn& c, uint64_t i) const { return c.sched_base + i * interval_ns_; }
  void count_error(ErrorKind k);
  void build_request(Conn& c);
  void patch_key(Conn& c, uint32_t user, uint64_t seq);
  int intern_backend(std::string_view v);
  void finish_run();
  void sweep();
  void publish();

  const LoadSpec& spec_;
  LoadResult& out_;
  LoadLive& live_;
  uv_loop_t loop_{};
  uv_timer_t end_timer_{};
  uv_timer_t sweep_timer_{};
  uv_timer_t live_timer_{};
  std::vector<std::unique_ptr<Conn>> conns_;
  uint64_t interval_ns_ = 0;
  uint64_t seq_ = 0;  // requests sent by this worker
  bool stopping_ = false;
};

template <typename H>
uv_handle_t* as_handle(H* h) {
  return reinterpret_cast<uv_handle_t*>(h);
}
uv_stream_t* as_stream(uv_tcp_t* t) { return reinterpret_cast<uv_stream_t*>(t); }

void Worker::build_request(Conn& c) {
  std::string path = spec_.path;
  const std::string marker(spec_.key == KeyKind::address ? kAddressWidth : kUserKeyWidth, '\x01');
  if (spec_.key == KeyKind::path) {
    path = "/s/" + marker + path;
  } else if (spec_.key == KeyKind::address) {
    // The last path segment (before any query) becomes the address.
    size_t q = path.find('?');
    std::string query = q == std::string::npos ? "" : path.substr(q);
    std::string p = path.substr(0, q);
    size_t slash = p.rfind('/');
    path = p.substr(0, slash + 1) + marker + query;
  }
  std::string r = spec_.method + " " + path + " HTTP/1.1\r\nHost: " + spec_.host_header + "\r\n";
  for (const std::string& h : spec_.headers) r += h + "\r\n";
  if (spec_.key == KeyKind::header) r += spec_.key_name + ": " + marker + "\r\n";
  if (spec_.key == KeyKind::cookie) r += "Cookie: " + spec_.key_name + "=" + marker + "\r\n";
  if (spec_.method == "POST" || spec_.method == "PUT" || spec_.method == "PATCH")
    r += "Content-Length: 0\r\n";
  r += "\r\n";
  c.request = std::move(r);
  c.key_off = spec_.key == KeyKind::none ? std::string::npos : c.request.find(marker);
}

void Worker::patch_key(Conn& c, uint32_t user, uint64_t seq) {
  if (c.key_off == std::string::npos) return;
  if (spec_.key == KeyKind::address)
    format_base_address(user, seq, c.request.data() + c.key_off);
  else
    format_user_key(user, c.request.data() + c.key_off);
}

int Worker::intern_backend(std::string_view v) {
  for (size_t i = 0; i < out_.backends.size(); ++i)
    if (out_.backends[i] == v) return int(i);
  if (out_.backends.size() >= kMaxBackends) return -1;
  out_.backends.emplace_back(v);  // once per distinct backend, not per request
  return int(out_.backends.size() - 1);
}

void Worker::count_error(ErrorKind k) {
  if (!in_window(uv_hrtime())) return;
  ++out_.errors[k];
  live_.errors.fetch_add(1, std::memory_order_relaxed);
}

void Worker::connect(Conn& c) {
  uv_tcp_init(&loop_, &c.tcp);
  c.tcp.data = &c;
  ++c.open_handles;
  uv_tcp_nodelay(&c.tcp, 1);
  c.parser.emplace(lb::http::MessageParser::Kind::response, kMaxHead);
  c.in_len = 0;
  c.state = Conn::State::connecting;
  c.connect_req.data = &c;
  int rc = uv_tcp_connect(&c.connect_req, &c.tcp, reinterpret_cast<const sockaddr*>(&spec_.addr),
                          [](uv_connect_t* req, int status) {
                            auto& c = *static_cast<Conn*>(req->data);
                            if (c.state != Conn::State::connecting) return;  // closed meanwhile
                            if (status != 0) {
                              c.w->count_error(err_connect);
                              return c.w->reopen(c, kReconnectDelayMs);
                            }
                            c.w->on_connected(c);
                          });
  if (rc != 0) {
    count_error(err_connect);
    reopen(c, kReconnectDelayMs);
  }
}

void Worker::on_connected(Conn& c) {
  c.state = Conn::State::idle;
  uv_read_start(
      as_stream(&c.tcp),
      [](uv_handle_t* h, size_t, uv_buf_t* b) {
        auto& c = *static_cast<Conn*>(h->data);
        *b = uv_buf_init(c.in.get() + c.in_len, unsigned(kInBuf - c.in_len));
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
        static_cast<Conn*>(s->data)->w->on_read(*static_cast<Conn*>(s->data), n);
      });
  next(c);
}

// Sends the next request now, or arms the schedule timer (open loop).
void Worker::next(Conn& c) {
  if (stopping_ || c.state != Conn::State::idle) return;
  if (c.write_pending) {
    c.send_after_write = true;
    return;
  }
  const uint64_t now = uv_hrtime();
  if (!open_loop()) {
    if (now < spec_.end_ns) send(c, now);
    return;
  }
  const uint64_t due = due_of(c, c.next_index);
  if (due >= spec_.end_ns) return;
  // Timers tick in whole milliseconds and may wake a little late, which would add the
  // tool's own lateness to the corrected latency. So the timer aims up to 1 ms before the
  // due time and the request goes out when less than 1 ms early. An early request's
  // latency counts from its actual send (min(due, sent)), so sending early never shortens
  // it, and the schedule stays absolute, so the rate does not drift.
  if (due <= now + 1'000'000) return send(c, due);
  uv_update_time(&loop_);
  uv_timer_start(
      &c.timer,
      [](uv_timer_t* t) {
        auto& c = *static_cast<Conn*>(t->data);
        c.w->next(c);
      },
      (due - now + 999'999) / 1'000'000 - 1, 0);  // >= 1 ms: never a busy loop
}

void Worker::send(Conn& c, uint64_t due) {
  const uint64_t seq = uint64_t(spec_.thread_index) + uint64_t(spec_.thread_count) * seq_++;
  // Consecutive requests of one connection carry different users, so a user's requests
  // travel over several connections, as a browser's or a wallet's would.
  c.user = spec_.users ? uint32_t(seq % spec_.users) : 0;
  patch_key(c, c.user, seq);
  c.due_ns = due;
  c.sent_ns = uv_hrtime();
  ++c.next_index;
  c.backend_id = -1;
  c.status = 0;
  c.state = Conn::State::busy;
  write(c);
}

void Worker::write(Conn& c) {
  uv_buf_t b = uv_buf_init(c.request.data(), unsigned(c.request.size()));
  int n = uv_try_write(as_stream(&c.tcp), &b, 1);
  if (n == int(c.request.size())) return;
  if (n < 0 && n != UV_EAGAIN) return fail(c, err_reset);
  const size_t done = n > 0 ? size_t(n) : 0;
  b = uv_buf_init(c.request.data() + done, unsigned(c.request.size() - done));
  c.write_pending = true;
  c.write_req.data = &c;
  int rc = uv_write(&c.write_req, as_stream(&c.tcp), &b, 1, [](uv_write_t* req, int status) {
    auto& c = *static_cast<Conn*>(req->data);
    c.write_pending = false;
    if (c.state == Conn::State::closing || c.state == Conn::State::closed) return;
    if (status != 0) return c.w->fail(c, err_reset);
    if (c.send_after_write) {
      c.send_after_write = false;
      c.w->next(c);
    }
  });
  if (rc != 0) {
    c.write_pending = false;
    fail(c, err_reset);
  }
}

void Worker::on_read(Conn& c, ssize_t n) {
  if (c.state == Conn::State::closing || c.state == Conn::State::closed) return;
  if (n == 0) return;
  if (n < 0) {
    if (c.state != Conn::State::busy) return reopen(c, 0);  // an idle keep-alive closed
    if (n == UV_EOF && c.parser->in_body() && c.parser->finish() == lb::http::ParseStatus::done) {
      complete(c, false);  // a body that ends at close
      return reopen(c, 0);
    }
    return fail(c, err_reset);
  }
  out_.bytes_read += uint64_t(n);
  const size_t end = c.in_len + size_t(n);
  size_t pos = c.in_len;
  while (pos < end) {
    if (c.state != Conn::State::busy) return fail(c, err_parse);  // bytes nobody asked for
    lb::http::ParseResult r = c.parser->feed(c.in.get() + pos, end - pos);
    pos += r.consumed;
    switch (r.status) {
      case lb::http::ParseStatus::need_more:
        break;
      case lb::http::ParseStatus::head: {
        c.status = c.parser->status_code();
        if (!spec_.backend_header.empty()) {
          lb::HeaderLookup h = lb::find_header(c.parser->headers(), spec_.backend_header);
          if (h.found) c.backend_id = intern_backend(h.value);
        }
        c.parser->resume_after_head(spec_.method == "HEAD" && c.status >= 200);
        break;
      }
      case lb::http::ParseStatus::done: {
        c.parser->resume_after_message();
        const bool keep = c.parser->keep_alive();
        if (c.status >= 100 && c.status < 200) break;  // interim answer: wait for the final one
        if (pos < end) {
          // The next message's head must start at the buffer's start (header views are
          // only valid while the head stays contiguous); nothing points into it yet.
          std::memmove(c.in.get(), c.in.get() + pos, end - pos);
          c.in_len = 0;
          complete(c, keep);
          if (!keep) return reopen(c, 0);
          return on_read(c, ssize_t(end - pos));
        }
        c.in_len = 0;
        complete(c, keep);
        if (!keep) return reopen(c, 0);
        return;
      }
      case lb::http::ParseStatus::upgrade:
      case lb::http::ParseStatus::error:
        return fail(c, err_parse);
    }
  }
  // Body bytes are not kept; an unfinished head is, since the parser's views point into it.
  c.in_len = c.parser->in_body() ? 0 : end;
  if (c.in_len == kInBuf) fail(c, err_parse);
}

void Worker::complete(Conn& c, bool send_next) {
  const uint64_t now = uv_hrtime();
  c.state = Conn::State::idle;
  // wrk2: an open-loop latency runs from when the request was due, not from when the
  // connection got round to sending it (a request sent up to 1 ms early counts from its send).
  const uint64_t start = std::min(c.due_ns, c.sent_ns);
  if (in_window(start) && now < spec_.end_ns) {
    out_.latency.record((now - start) / 1000);
    out_.uncorrected.record((now - c.sent_ns) / 1000);
    ++out_.requests;
    live_.requests.fetch_add(1, std::memory_order_relaxed);
    ++out_.statuses[size_t(std::clamp(c.status, 0, 599))];
    const size_t sec = size_t((now - spec_.measure_start_ns) / 1'000'000'000ULL);
    if (sec < out_.per_second.size()) ++out_.per_second[sec];
    if (c.backend_id >= 0 && c.user < out_.user_backends.size())
      out_.user_backends[c.user] |= uint64_t{1} << c.backend_id;
  }
  if (send_next) next(c);
}

void Worker::fail(Conn& c, ErrorKind kind) {
  count_error(kind);
  reopen(c, 0);
}

// Closes the socket; on_closed connects again (after delay_ms) unless the run is over.
void Worker::reopen(Conn& c, uint64_t delay_ms) {
  if (c.state == Conn::State::closing || c.state == Conn::State::closed) return;
  c.state = Conn::State::closing;
  uv_timer_stop(&c.timer);
  c.timer.data = &c;
  uv_close(as_handle(&c.tcp), [](uv_handle_t* h) {
    auto& c = *static_cast<Conn*>(h->data);
    c.w->on_closed(c);
  });
  c.send_after_write = false;
  c.reconnect_delay_ms = delay_ms;
}

void Worker::on_closed(Conn& c) {
  --c.open_handles;
  c.state = Conn::State::closed;
  if (stopping_) return;
  const uint64_t delay = c.reconnect_delay_ms;
  if (delay == 0) return connect(c);
  uv_timer_start(
      &c.timer,
      [](uv_timer_t* t) {
        auto& c = *static_cast<Conn*>(t->data);
        if (!c.w->stopping_) c.w->connect(c);
      },
      delay, 0);
}

void Worker::sweep() {
  const uint64_t now = uv_hrtime();
  for (auto& c : conns_)
    if (c->state == Conn::State::busy && now - c->sent_ns > spec_.timeout_ns) fail(*c, err_timeout);
}

void Worker::publish() {
  std::lock_guard<std::mutex> lock(live_.mu);
  live_.snapshot = out_.latency;
}

void Worker::finish_run() {
  if (stopping_) return;
  // Open loop: requests due before the end and not answered are counted with the time they
  // have waited so far (a lower bound), so a stall at the end is not dropped from the tail.
  if (open_loop()) {
    for (auto& cp : conns_) {
      Conn& c = *cp;
      if (c.state == Conn::State::busy && in_window(c.due_ns)) {
        out_.latency.record((spec_.end_ns - c.due_ns) / 1000);
        ++out_.unfinished;
      }
      for (uint64_t i = c.next_index;; ++i) {
        const uint64_t due = due_of(c, i);
        if (due >= spec_.end_ns) break;
        if (!in_window(due)) continue;
        out_.latency.record((spec_.end_ns - due) / 1000);
        ++out_.unfinished;
      }
    }
  }
  stopping_ = true;
  for (auto& c : conns_) {
    uv_timer_stop(&c->timer);
    uv_close(as_handle(&c->timer), nullptr);
    if (c->state != Conn::State::closed && c->state != Conn::State::closing) {
      c->state = Conn::State::closing;
      uv_close(as_handle(&c->tcp), [](uv_handle_t* h) {
        auto& c = *static_cast<Conn*>(h->data);
        c.w->on_closed(c);
      });
    }
  }
  uv_close(as_handle(&end_timer_), nullptr);
  uv_close(as_handle(&sweep_timer_), nullptr);
  uv_close(as_handle(&live_timer_), nullptr);
}

void Worker::run() {
  uv_loop_init(&loop_);
  const double window = double(spec_.end_ns - spec_.measure_start_ns) / 1e9;
  out_.per_second.assign(size_t(window) + 2, 0);
  out_.user_backends.assign(spec_.users, 0);
  if (open_loop()) interval_ns_ = uint64_t(double(spec_.connections) / spec_.rate * 1e9);
  conns_.reserve(spec_.connections);
  for (uint32_t i = 0; i < spec_.connections; ++i) {
    auto c = std::make_unique<Conn>();
    c->w = this;
    c->index = i;
    uv_timer_init(&loop_, &c->timer);
    c->timer.data = c.get();
    // Stagger the connections across one interval so the total rate is smooth.
    c->sched_base = spec_.start_ns + interval_ns_ * i / spec_.connections;
    build_request(*c);
    conns_.push_back(std::move(c));
  }
  for (auto& c : conns_) connect(*c);

  uv_timer_init(&loop_, &end_timer_);
  end_timer_.data = this;
  const uint64_t now = uv_hrtime();
  uv_timer_start(
      &end_timer_,
      [](uv_timer_t* t) {
        auto* w = static_cast<Worker*>(t->data);
        if (uv_hrtime() < w->spec_.end_ns) {  // ms timers may fire a little early
          uv_timer_start(t, t->timer_cb, 1, 0);
          return;
        }
        w->finish_run();
      },
      spec_.end_ns > now ? (spec_.end_ns - now) / 1'000'000 : 0, 0);

  uv_timer_init(&loop_, &sweep_timer_);
  sweep_timer_.data = this;
  const uint64_t period = std::clamp<uint64_t>(spec_.timeout_ns / 10'000'000, 1, 100);
  uv_timer_start(
      &sweep_timer_, [](uv_timer_t* t) { static_cast<Worker*>(t->data)->sweep(); }, period, period);
  uv_timer_init(&loop_, &live_timer_);
  live_timer_.data = this;
  if (spec_.live)
    uv_timer_start(
        &live_timer_, [](uv_timer_t* t) { static_cast<Worker*>(t->data)->publish(); }, 1000, 1000);

  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
  conns_.clear();  // every handle's close callback has run
}

}  // namespace

void run_load_worker(const LoadSpec& spec, LoadResult& out, LoadLive& live) {
  Worker w(spec, out, live);
  w.run();
}

}  // namespace bench
