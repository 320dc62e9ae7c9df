#include "bench/load_client.h"

#include <uv.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>

#include "bench/load_loop.h"
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
constexpr uint64_t kNoCheckpoint = ~uint64_t{0};
constexpr uint64_t kReconnectDelayMs =
    10;  // after a failed connect, so a refusing port is not spun on

class Worker;

struct Conn {
  enum class State : uint8_t { closed, connecting, idle, busy, closing };

  Worker* w = nullptr;
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
  // Open-loop schedule: request i is due at sched_base + i * interval.
  uint64_t sched_base = 0;
  uint64_t next_index = 0;
  // The request in flight.
  uint64_t due_ns = 0;
  uint64_t sent_ns = 0;
  uint32_t user = 0;
  uint64_t seen_at_send = 0;            // the user's highest checkpoint when this request left
  uint64_t checkpoint = kNoCheckpoint;  // of the answer
  int backend_id = -1;
  int status = 0;
  uint64_t reconnect_delay_ms = 0;
  // --mix: the request is pre + target + post, assembled in `request` (capacity reserved
  // once); the user key is patched into pre or post at key_off.
  std::string pre, post;
  bool key_in_pre = false;
  MixDraw draw;
  char target[kMixTargetMax];
  size_t target_len = 0;
  char hash[kDatumHashHex];
  size_t hash_len = 0;
  char body[kBodyKeep];  // the decoded body's first bytes
  uint64_t body_len = 0;
  uint32_t attempts = 0;       // of the lookup in flight
  bool retry_pending = false;  // a `null` answer: re-send the same request
  uint64_t first_start = 0;    // the lookup's logical start: its first attempt's due time

  uv_buf_t free_space() { return uv_buf_init(in.get() + in_len, unsigned(kInBuf - in_len)); }
};

class Worker : public LoadLoop {
 public:
  using LoadLoop::LoadLoop;

  void run();

  // Connection events.
  void connect(Conn& c);
  void on_connected(Conn& c, int status);
  void next(Conn& c);
  void send(Conn& c, uint64_t due);
  void write(Conn& c);
  void on_read(Conn& c, ssize_t n);
  void complete(Conn& c, bool send_next);
  void fail(Conn& c, ErrorKind kind);
  void reopen(Conn& c, uint64_t delay_ms);
  void on_closed(Conn& c);

 private:
  void sweep() override;
  void finish_run() override;
  // Errors count only in the window (the WebSocket load counts connection events over the
  // whole run).
  void note_error(ErrorKind k);
  void build_request(Conn& c);
  // --mix: draws request `seq`, formats its target and assembles c.request.
  void mix_request(Conn& c, uint64_t seq);
  // --mix: re-sends the lookup in c.request after a `null`.
  void send_retry(Conn& c);
  // --mix: counts the answer just completed; true when a retry is scheduled instead of the
  // next request.
  bool mix_answer(Conn& c, bool counted, uint64_t now);
  static void on_body(void* ctx, const char* data, size_t len);

  std::vector<std::unique_ptr<Conn>> conns_;
  uint64_t seq_ = 0;  // requests sent by this worker
  std::optional<MixSampler> mix_;
};

void Worker::build_request(Conn& c) {
  if (spec_.mix) {
    // The mix's targets go under the URL's path: '\x02' holds their place.
    LoadSpec s = spec_;
    std::string base = spec_.path.substr(0, spec_.path.find('?'));
    while (!base.empty() && base.back() == '/') base.pop_back();
    s.path = base + '\x02';
    const KeyedTarget t = keyed_target(s);
    std::string r = "GET " + t.path + " HTTP/1.1\r\nHost: " + spec_.host_header + "\r\n";
    for (const std::string& h : t.headers) r += h + "\r\n";
    r += "\r\n";
    const size_t at = r.find('\x02');
    c.pre = r.substr(0, at);
    c.post = r.substr(at + 1);
    c.request.reserve(c.pre.size() + kMixTargetMax + c.post.size());
    c.key_off = std::string::npos;
    if (spec_.key != KeyKind::none) {
      c.key_in_pre = c.pre.find(t.marker) != std::string::npos;
      c.key_off = (c.key_in_pre ? c.pre : c.post).find(t.marker);
    }
    return;
  }
  const KeyedTarget t = keyed_target(spec_);
  std::string r = spec_.method + " " + t.path + " HTTP/1.1\r\nHost: " + spec_.host_header + "\r\n";
  for (const std::string& h : t.headers) r += h + "\r\n";
  if (spec_.method == "POST" || spec_.method == "PUT" || spec_.method == "PATCH")
    r += "Content-Length: 0\r\n";
  r += "\r\n";
  c.request = std::move(r);
  c.key_off = spec_.key == KeyKind::none ? std::string::npos : c.request.find(t.marker);
}

void Worker::mix_request(Conn& c, uint64_t seq) {
  c.draw = mix_->draw(seq);
  c.target_len = format_mix_target(c.draw, c.user, seq, c.target, c.hash, c.hash_len);
  if (c.key_off != std::string::npos)
    patch_key(spec_, (c.key_in_pre ? c.pre.data() : c.post.data()) + c.key_off, c.user, seq);
  c.request.clear();  // keeps the capacity reserved in build_request: no allocation
  c.request.append(c.pre).append(c.target, c.target_len).append(c.post);
  c.attempts = 1;
  c.retry_pending = false;
}

void Worker::send_retry(Conn& c) {
  c.retry_pending = false;
  ++c.attempts;
  c.due_ns = c.sent_ns = uv_hrtime();
  c.backend_id = -1;
  c.status = 0;
  c.body_len = 0;
  c.checkpoint = kNoCheckpoint;
  if (spec_.checkpoints) c.seen_at_send = spec_.checkpoints->seen(c.user);
  c.state = Conn::State::busy;
  write(c);
}

void Worker::on_body(void* ctx, const char* data, size_t len) {
  auto& c = *static_cast<Conn*>(ctx);
  if (c.body_len < kBodyKeep)
    std::memcpy(c.body + c.body_len, data, std::min<uint64_t>(len, kBodyKeep - c.body_len));
  c.body_len += len;
}

bool Worker::mix_answer(Conn& c, bool counted, uint64_t now) {
  MixResult& m = out_.mix;
  const std::string_view head(c.body, size_t(std::min<uint64_t>(c.body_len, kBodyKeep)));
  if (c.draw.kind == MixKind::matches) {
    if (!counted) return false;
    ++m.matches;
    m.matches_latency.record((now - std::min(c.due_ns, c.sent_ns)) / 1000);
    if (c.status == 200 && (head.empty() || head[0] != '[')) ++m.wrong_answers;
    return false;
  }
  const bool null_body = c.status == 200 && is_null_body(head, c.body_len);
  if (counted) {
    ++m.lookup_requests;
    if (null_body) ++m.null_answers;
    if (c.attempts > 1) ++m.retries;
    if (c.status == 200 && wrong_lookup_answer(c.draw.kind, std::string_view(c.hash, c.hash_len),
                                               spec_.null_percent, head, c.body_len))
      ++m.wrong_answers;
  }
  if (null_body && c.attempts < spec_.mix->retries && !stopping_ && now < spec_.end_ns) {
    // Kupmios: a `null` is "not indexed yet"; wait and ask again on the same connection.
    c.retry_pending = true;
    uv_timer_start(
        &c.timer,
        [](uv_timer_t* t) {
          auto& c = *static_cast<Conn*>(t->data);
          c.w->next(c);
        },
        spec_.mix->retry_ms, 0);
    return true;
  }
  if (in_window(c.first_start) && now < spec_.end_ns) {
    ++m.lookups;
    if (null_body) ++m.null_final;
    m.lookup_latency.record((now - c.first_start) / 1000);
  }
  return false;
}

void Worker::note_error(ErrorKind k) {
  if (in_window(uv_hrtime())) count_error(k);
}

void Worker::connect(Conn& c) {
  c.parser.emplace(lb::http::MessageParser::Kind::response, kMaxHead);
  if (mix_) c.parser->set_body_sink(&Worker::on_body, &c);
  c.in_len = 0;
  c.state = Conn::State::connecting;
  if (start_connect(c) != 0) {
    note_error(err_connect);
    reopen(c, kReconnectDelayMs);
  }
}

void Worker::on_connected(Conn& c, int status) {
  if (c.state != Conn::State::connecting) return;  // closed meanwhile
  if (status != 0) {
    note_error(err_connect);
    return reopen(c, kReconnectDelayMs);
  }
  c.state = Conn::State::idle;
  start_reading(c);
  next(c);
}

// Sends the next request now, or arms the schedule timer (open loop).
void Worker::next(Conn& c) {
  if (stopping_ || c.state != Conn::State::idle) return;
  if (c.write_pending) {
    c.send_after_write = true;
    return;
  }
  if (c.retry_pending) return send_retry(c);
  const uint64_t now = uv_hrtime();
  if (!open_loop()) {
    if (now < spec_.end_ns) send(c, now);
    return;
  }
  const uint64_t due = due_of(c.sched_base, c.next_index);
  if (due >= spec_.end_ns) return;
  if (!wait_until_due(c, due, now)) send(c, due);
}

void Worker::send(Conn& c, uint64_t due) {
  const uint64_t seq = uint64_t(spec_.thread_index) + uint64_t(spec_.thread_count) * seq_++;
  // Consecutive requests of one connection carry different users, so a user's requests
  // travel over several connections, as a browser's or a wallet's would.
  c.user = spec_.users ? uint32_t(seq % spec_.users) : 0;
  if (mix_)
    mix_request(c, seq);
  else if (c.key_off != std::string::npos)
    patch_key(spec_, c.request.data() + c.key_off, c.user, seq);
  c.due_ns = due;
  c.sent_ns = uv_hrtime();
  c.first_start = std::min(due, c.sent_ns);
  c.body_len = 0;
  ++c.next_index;
  c.backend_id = -1;
  c.status = 0;
  c.checkpoint = kNoCheckpoint;
  if (spec_.checkpoints) c.seen_at_send = spec_.checkpoints->seen(c.user);
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
        if (spec_.checkpoints && c.status >= 200) {
          lb::HeaderLookup h = lb::find_header(c.parser->headers(), kCheckpointHeader);
          if (h.found) c.checkpoint = parse_checkpoint(h.value).value_or(kNoCheckpoint);
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
  c.state = Conn::State::idle;
  // The user's highest checkpoint rises with every answer, warmup included; regressions
  // count in the window, like everything else.
  const bool has_checkpoint = spec_.checkpoints && c.checkpoint != kNoCheckpoint;
  const uint64_t behind =
      has_checkpoint ? spec_.checkpoints->receive(c.user, c.seen_at_send, c.checkpoint) : 0;
  const uint64_t now = uv_hrtime();
  const bool counted = record_answer(c.due_ns, c.sent_ns, now, c.status);
  if (counted) {
    ++out_.statuses[size_t(std::clamp(c.status, 0, 599))];
    // With --mix only /matches answers count for stickiness: a lookup's answer is immutable,
    // so any backend (or a cache's copy, with the producer's X-Backend) may give it.
    const bool sticky = !mix_ || c.draw.kind == MixKind::matches;
    if (sticky && c.backend_id >= 0 && c.user < out_.user_backends.size())
      out_.user_backends[c.user] |= uint64_t{1} << c.backend_id;
    if (has_checkpoint) {
      out_.regressions.add(behind);
      if (behind) spec_.checkpoints->mark(c.user);
    }
  }
  if (mix_ && mix_answer(c, counted, now) && send_next) return;  // the retry timer sends
  if (send_next) next(c);
}

void Worker::fail(Conn& c, ErrorKind kind) {
  note_error(kind);
  c.retry_pending = false;  // the lookup failed; the connection moves on
  reopen(c, 0);
}

// Closes the socket; on_closed connects again (after delay_ms) unless the run is over.
void Worker::reopen(Conn& c, uint64_t delay_ms) {
  if (c.state == Conn::State::closing || c.state == Conn::State::closed) return;
  c.state = Conn::State::closing;
  uv_timer_stop(&c.timer);
  close_tcp(c);
  c.send_after_write = false;
  c.reconnect_delay_ms = delay_ms;
}

void Worker::on_closed(Conn& c) {
  c.state = Conn::State::closed;
  reconnect(c);
}

void Worker::sweep() {
  const uint64_t now = uv_hrtime();
  for (auto& c : conns_)
    if (c->state == Conn::State::busy && now - c->sent_ns > spec_.timeout_ns) fail(*c, err_timeout);
}

void Worker::finish_run() {
  if (stopping_) return;
  if (open_loop()) {
    for (auto& c : conns_) {
      if (c->state == Conn::State::busy) record_unfinished(c->due_ns);
      record_unsent(c->sched_base, c->next_index);
    }
  }
  stopping_ = true;
  for (auto& c : conns_) {
    uv_timer_stop(&c->timer);
    uv_close(as_handle(&c->timer), nullptr);
    if (c->state != Conn::State::closed && c->state != Conn::State::closing) {
      c->state = Conn::State::closing;
      close_tcp(*c);
    }
  }
  close_timers();
}

void Worker::run() {
  if (spec_.mix) mix_.emplace(*spec_.mix);
  run_conns(conns_, [this](Conn& c, uint32_t) { build_request(c); });
}

}  // namespace

void run_load_worker(const LoadSpec& spec, LoadResult& out, LoadLive& live) {
  Worker w(spec, out, live);
  w.run();
}

}  // namespace bench
