#include "bench/load_ws.h"

#include <uv.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <optional>

#include "bench/load_loop.h"
#include "bench/load_ws_frames.h"
#include "lb/core/header_view.h"
#include "lb/http/message_parser.h"
#include "lb/http/ws_frame.h"
#include "lb/http/ws_handshake.h"

namespace bench {
namespace {

constexpr size_t kInBuf = 16384;         // grows for a bigger frame, up to kMaxFrame
constexpr size_t kMaxFrame = 64u << 20;  // a larger answer is a parse error
constexpr size_t kMaxHead = 8192;        // below kInBuf, so a long head is the parser's error
constexpr uint32_t kRing = 256;          // messages in flight per socket; more waits for answers
constexpr uint64_t kCloseWaitNs = 1'000'000'000ULL;  // for the server's reply to our close
constexpr uint64_t kConnectRetryMs = 10;  // after a refused connect: no spinning on a closed port

class WsWorker;

struct Slot {
  uint64_t due = 0;
  uint64_t sent = 0;
  bool busy = false;
};

struct WsConn {
  enum class State : uint8_t { closed, connecting, handshake, open, closing_ws, closing };

  WsWorker* w = nullptr;
  uint32_t user = 0;
  uv_tcp_t tcp{};
  uv_timer_t timer{};  // open-loop schedule, and the delay before a reconnect
  uv_connect_t connect_req{};
  uv_write_t write_req{};
  std::optional<lb::http::MessageParser> parser;
  std::vector<char> in = std::vector<char>(kInBuf);
  size_t in_len = 0;
  std::string handshake;  // pre-formatted; an address key is patched in at key_off
  size_t key_off = std::string::npos;
  std::string key;     // Sec-WebSocket-Key
  std::string out;     // frames not yet handed to the kernel
  std::string flight;  // the bytes of the uv_write in progress
  bool writing = false;
  std::string frag;  // a fragmented message so far (rare: allocates)
  State state = State::closed;
  uint64_t state_since = 0;
  // Open-loop schedule: message i is due at sched_base + i * interval.
  uint64_t sched_base = 0;
  uint64_t next_index = 0;
  // Ids grow for the socket's whole life, across reconnects, so a late answer from an
  // earlier connection never matches a new message.
  uint64_t next_id = 1;
  uint64_t low_id = 1;  // no message older than this is in flight
  uint32_t inflight = 0;
  std::array<Slot, kRing> ring{};
  uint64_t sent_on_socket = 0;
  uint64_t connects = 0;
  uint64_t reconnect_delay_ms = 0;

  uv_buf_t free_space() { return uv_buf_init(in.data() + in_len, unsigned(in.size() - in_len)); }
};

class WsWorker : public LoadLoop {
 public:
  using LoadLoop::LoadLoop;
  void run();

  void connect(WsConn& c);
  void on_connected(WsConn& c, int status);
  void on_read(WsConn& c, ssize_t n);
  void next(WsConn& c);
  void on_write_done(WsConn& c, int status);
  void on_closed(WsConn& c);

 private:
  void sweep() override;
  void finish_run() override;
  void build_handshake(WsConn& c);
  void set_state(WsConn& c, WsConn::State s);
  bool read_handshake(WsConn& c, size_t old_len, size_t n);
  bool read_frames(WsConn& c);
  void on_message(WsConn& c, std::string_view payload);
  void on_close_frame(WsConn& c, std::string_view payload);
  void send(WsConn& c, uint64_t due);
  void queue_frame(WsConn& c, uint8_t opcode, std::string_view payload);
  void flush(WsConn& c);
  void start_client_close(WsConn& c);
  void server_gone(WsConn& c, uint16_t code);
  void reopen(WsConn& c, uint64_t delay_ms);
  void fail(WsConn& c, ErrorKind k) {
    count_error(k);
    reopen(c, spec_.ws_backoff_ms);
  }
  uint32_t random32() {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return uint32_t(rng_);
  }

  std::vector<std::unique_ptr<WsConn>> conns_;
  std::vector<char> scratch_;  // one JSON-RPC request's text
  uint64_t rng_ = 0x9e3779b97f4a7c15ULL;
};

// The socket's user key is patched in at every connect (connect()).
void WsWorker::build_handshake(WsConn& c) {
  const KeyedTarget t = keyed_target(spec_);
  uint8_t raw[16];
  for (int i = 0; i < 16; i += 4) {
    const uint32_t r = random32();
    std::memcpy(raw + i, &r, 4);
  }
  c.key = ws_key_from_bytes(raw);
  c.handshake = ws_handshake_request(t.path, spec_.host_header, c.key, t.headers);
  c.key_off = spec_.key == KeyKind::none ? std::string::npos : c.handshake.find(t.marker);
}

void WsWorker::set_state(WsConn& c, WsConn::State s) {
  c.state = s;
  c.state_since = uv_hrtime();
}

void WsWorker::connect(WsConn& c) {
  c.parser.emplace(lb::http::MessageParser::Kind::response, kMaxHead);
  c.in_len = 0;
  c.out.clear();
  c.frag.clear();
  // An address key: a new payment part on every connect, the same stake credential, so
  // a reconnect is the same wallet behind a different address.
  if (c.key_off != std::string::npos)
    patch_key(spec_, c.handshake.data() + c.key_off, c.user, c.connects);
  set_state(c, WsConn::State::connecting);
  if (start_connect(c) != 0) {
    count_error(err_connect);
    reopen(c, kConnectRetryMs);
  }
}

void WsWorker::on_connected(WsConn& c, int status) {
  if (c.state != WsConn::State::connecting) return;  // closed meanwhile
  if (status != 0) {
    count_error(err_connect);
    return reopen(c, kConnectRetryMs);
  }
  set_state(c, WsConn::State::handshake);
  start_reading(c);
  c.out.append(c.handshake);
  flush(c);
}

void WsWorker::on_read(WsConn& c, ssize_t n) {
  using S = WsConn::State;
  if (c.state == S::closing || c.state == S::closed || n == 0) return;
  if (n < 0) {
    if (c.state == S::closing_ws) return reopen(c, 0);  // the server ended our close
    if (c.state == S::handshake) return fail(c, err_reset);
    return server_gone(c, 1006);  // no close frame: RFC 6455 §7.1.5
  }
  out_.bytes_read += uint64_t(n);
  const size_t old_len = c.in_len;
  c.in_len += size_t(n);
  if (c.state == S::handshake && !read_handshake(c, old_len, size_t(n))) return;
  if (c.state == S::open || c.state == S::closing_ws) read_frames(c);
}

// Feeds the 101's head to the parser; false when the socket is no longer shaking hands
// (closed, or still waiting for the rest of the head).
bool WsWorker::read_handshake(WsConn& c, size_t old_len, size_t n) {
  const lb::http::ParseResult r = c.parser->feed(c.in.data() + old_len, n);
  if (r.status == lb::http::ParseStatus::need_more) {
    if (c.in_len == c.in.size()) fail(c, err_parse);
    return false;
  }
  if (r.status != lb::http::ParseStatus::head && r.status != lb::http::ParseStatus::upgrade) {
    fail(c, err_parse);
    return false;
  }
  const int status = c.parser->status_code();
  ++out_.statuses[size_t(std::clamp(status, 0, 599))];
  if (status != 101) {  // a handshake failure: counted by status, retried after the back-off
    reopen(c, spec_.ws_backoff_ms);
    return false;
  }
  const auto headers = c.parser->headers();
  if (lb::http::check_ws_response(headers, c.key) != nullptr) {
    ++out_.ws_bad_accept;
    reopen(c, spec_.ws_backoff_ms);
    return false;
  }
  ++out_.ws_handshakes;
  ++c.connects;
  if (!spec_.backend_header.empty()) {
    const lb::HeaderLookup h = lb::find_header(headers, spec_.backend_header);
    const int id = h.found ? intern_backend(lb::trim_ows(h.value)) : -1;
    if (id >= 0 && c.user < out_.user_backends.size())
      out_.user_backends[c.user] |= uint64_t{1} << id;
  }
  // Whatever followed the head is already WebSocket frames.
  const size_t head_end = old_len + r.consumed;
  std::memmove(c.in.data(), c.in.data() + head_end, c.in_len - head_end);
  c.in_len -= head_end;
  c.parser.reset();
  c.sent_on_socket = 0;
  set_state(c, WsConn::State::open);
  next(c);
  return c.state == WsConn::State::open;
}

// Walks the whole frames in the buffer; false if the socket was closed on the way.
bool WsWorker::read_frames(WsConn& c) {
  size_t pos = 0;
  while (pos < c.in_len) {
    lb::http::WsFrameHeader h;
    const std::string_view avail(c.in.data() + pos, c.in_len - pos);
    const lb::http::WsParse p = lb::http::parse_ws_header(avail, h);
    if (p == lb::http::WsParse::error) {
      fail(c, err_parse);
      return false;
    }
    if (p == lb::http::WsParse::need_more) break;
    const uint64_t total = h.header_len + h.payload_len;
    if (total > avail.size()) {
      if (total > kMaxFrame) {
        fail(c, err_parse);
        return false;
      }
      if (total > c.in.size()) c.in.resize(size_t(total));  // a big answer: grow once
      break;
    }
    char* payload = c.in.data() + pos + h.header_len;
    const size_t len = size_t(h.payload_len);
    if (h.masked) lb::http::ws_apply_mask(payload, len, h.mask);  // servers should not
    pos += size_t(total);
    const std::string_view pl(payload, len);
    switch (h.opcode) {
      case lb::http::ws_text:
      case lb::http::ws_binary:
      case lb::http::ws_continuation:
        if (h.fin && c.frag.empty() && h.opcode != lb::http::ws_continuation) {
          on_message(c, pl);
        } else {
          if (c.frag.size() + len > kMaxFrame) {
            fail(c, err_parse);
            return false;
          }
          c.frag.append(pl);
          if (h.fin) {
            on_message(c, c.frag);
            c.frag.clear();
          }
        }
        break;
      case lb::http::ws_ping:
        queue_frame(c, lb::http::ws_pong, pl);
        flush(c);
        break;
      case lb::http::ws_pong:
        break;
      case lb::http::ws_close:
        on_close_frame(c, pl);
        return false;
      default:
        fail(c, err_parse);
        return false;
    }
    if (c.state != WsConn::State::open && c.state != WsConn::State::closing_ws) return false;
  }
  std::memmove(c.in.data(), c.in.data() + pos, c.in_len - pos);
  c.in_len -= pos;
  return true;
}

void WsWorker::on_message(WsConn& c, std::string_view payload) {
  const std::optional<uint64_t> id = rpc_response_id(payload);
  if (!id || *id < c.low_id || *id >= c.next_id || !c.ring[*id % kRing].busy) {
    ++out_.ws_unmatched;
    return;
  }
  Slot& s = c.ring[*id % kRing];
  s.busy = false;
  --c.inflight;
  while (c.low_id < c.next_id && !c.ring[c.low_id % kRing].busy) ++c.low_id;
  record_answer(s.due, s.sent, uv_hrtime());
  next(c);
}

void WsWorker::on_close_frame(WsConn& c, std::string_view payload) {
  if (c.state == WsConn::State::closing_ws) return reopen(c, 0);  // the reply to ours
  server_gone(c, ws_close_code(payload));
}

// The server ended the socket (close frame `code`, or 1006): counted, then a reconnect
// after the back-off, as a client library would.
void WsWorker::server_gone(WsConn& c, uint16_t code) {
  ++out_.ws_close_codes[code];  // allocates once per distinct code
  if (code != 1006) {
    // Echo the close (RFC 6455 §5.5.1), best effort: the socket closes right after.
    const uint16_t echo = code == 1005 ? 1000 : code;  // 1005 must never be sent
    const uint8_t body[2] = {uint8_t(echo >> 8), uint8_t(echo & 0xff)};
    queue_frame(c, lb::http::ws_close, std::string_view(reinterpret_cast<const char*>(body), 2));
    flush(c);
  }
  reopen(c, spec_.ws_backoff_ms);
}

// Sends what is due: closed loop, one message when none is in flight; open loop, every
// message whose time has come (a backlog after a reconnect goes out at once), then arms
// the timer for the next one.
void WsWorker::next(WsConn& c) {
  if (stopping_ || c.state != WsConn::State::open) return;
  const bool draining = spec_.ws_reconnect_every && c.sent_on_socket >= spec_.ws_reconnect_every;
  if (draining) {
    if (c.inflight == 0) start_client_close(c);
    return;
  }
  const uint64_t now = uv_hrtime();
  if (!open_loop()) {
    if (c.inflight == 0 && now < spec_.end_ns) send(c, now);
    return;
  }
  for (;;) {
    const uint64_t due = due_of(c.sched_base, c.next_index);
    if (due >= spec_.end_ns) return;
    if (wait_until_due(c, due, now)) return;
    if (c.ring[c.next_id % kRing].busy) return;  // kRing in flight: the answer calls next
    send(c, due);
    if (spec_.ws_reconnect_every && c.sent_on_socket >= spec_.ws_reconnect_every) return;
  }
}

void WsWorker::send(WsConn& c, uint64_t due) {
  const uint64_t id = c.next_id++;
  const uint64_t now = uv_hrtime();
  c.ring[id % kRing] = Slot{due, now, true};
  ++c.inflight;
  ++c.next_index;
  ++c.sent_on_socket;
  if (in_window(std::min(due, now))) ++out_.ws_sent;
  const size_t n =
      format_rpc_request(scratch_.data(), scratch_.size(), spec_.ws_method, spec_.ws_params, id);
  queue_frame(c, lb::http::ws_text, std::string_view(scratch_.data(), n));
  flush(c);
}

void WsWorker::queue_frame(WsConn& c, uint8_t opcode, std::string_view payload) {
  const uint32_t r = random32();
  uint8_t mask[4];
  std::memcpy(mask, &r, 4);
  const size_t old = c.out.size();
  c.out.resize(old + lb::http::kWsMaxHeader + payload.size());
  const size_t n = write_client_frame(c.out.data() + old, opcode, payload, mask);
  c.out.resize(old + n);
}

// Hands `out` to the kernel: a direct write when possible, else one uv_write at a time
// (the rest waits in `out` until it completes).
void WsWorker::flush(WsConn& c) {
  if (c.writing || c.out.empty()) return;
  uv_buf_t b = uv_buf_init(c.out.data(), unsigned(c.out.size()));
  const int n = uv_try_write(as_stream(&c.tcp), &b, 1);
  if (n == int(c.out.size())) {
    c.out.clear();
    return;
  }
  if (n < 0 && n != UV_EAGAIN) return fail(c, err_reset);
  c.out.erase(0, n > 0 ? size_t(n) : 0);
  std::swap(c.out, c.flight);
  c.out.clear();
  c.writing = true;
  c.write_req.data = &c;
  b = uv_buf_init(c.flight.data(), unsigned(c.flight.size()));
  const int rc = uv_write(&c.write_req, as_stream(&c.tcp), &b, 1, [](uv_write_t* req, int status) {
    auto& c = *static_cast<WsConn*>(req->data);
    c.w->on_write_done(c, status);
  });
  if (rc != 0) {
    c.writing = false;
    fail(c, err_reset);
  }
}

void WsWorker::on_write_done(WsConn& c, int status) {
  c.writing = false;
  c.flight.clear();
  using S = WsConn::State;
  if (c.state == S::closing || c.state == S::closed) return;
  if (status != 0) return fail(c, err_reset);
  flush(c);
}

// --ws-reconnect-every: the socket has sent its share and every answer is in.
void WsWorker::start_client_close(WsConn& c) {
  const uint8_t body[2] = {uint8_t(1000 >> 8), uint8_t(1000 & 0xff)};
  ++out_.ws_client_closes;
  queue_frame(c, lb::http::ws_close, std::string_view(reinterpret_cast<const char*>(body), 2));
  set_state(c, WsConn::State::closing_ws);
  flush(c);
}

// Closes the TCP connection; on_closed connects again after delay_ms unless the run is
// over. Messages still in flight are lost.
void WsWorker::reopen(WsConn& c, uint64_t delay_ms) {
  if (c.state == WsConn::State::closing || c.state == WsConn::State::closed) return;
  set_state(c, WsConn::State::closing);
  uv_timer_stop(&c.timer);
  for (uint64_t id = c.low_id; id < c.next_id; ++id) {
    Slot& s = c.ring[id % kRing];
    if (s.busy && in_window(std::min(s.due, s.sent))) ++out_.ws_lost;
    s.busy = false;
  }
  c.low_id = c.next_id;
  c.inflight = 0;
  c.reconnect_delay_ms = delay_ms;
  close_tcp(c);
}

void WsWorker::on_closed(WsConn& c) {
  set_state(c, WsConn::State::closed);
  reconnect(c);
}

void WsWorker::sweep() {
  const uint64_t now = uv_hrtime();
  for (auto& cp : conns_) {
    WsConn& c = *cp;
    switch (c.state) {
      case WsConn::State::connecting:  // a dropped SYN retries for long: the timeout bounds it
      case WsConn::State::handshake:
        if (now - c.state_since > spec_.timeout_ns) fail(c, err_timeout);
        break;
      case WsConn::State::open:
        if (c.inflight && now - c.ring[c.low_id % kRing].sent > spec_.timeout_ns)
          fail(c, err_timeout);
        break;
      case WsConn::State::closing_ws:
        if (now - c.state_since > kCloseWaitNs) reopen(c, 0);  // no reply to our close
        break;
      default:
        break;
    }
  }
}

void WsWorker::finish_run() {
  if (stopping_) return;
  if (open_loop()) {
    for (auto& cp : conns_) {
      WsConn& c = *cp;
      for (uint64_t id = c.low_id; id < c.next_id; ++id)
        if (c.ring[id % kRing].busy) record_unfinished(c.ring[id % kRing].due);
      record_unsent(c.sched_base, c.next_index);
    }
  }
  stopping_ = true;
  for (auto& cp : conns_) {
    WsConn& c = *cp;
    uv_timer_stop(&c.timer);
    uv_close(as_handle(&c.timer), nullptr);
    if (c.state == WsConn::State::closing || c.state == WsConn::State::closed) continue;
    if (c.state == WsConn::State::open && !c.writing) {
      // A polite end (best effort), so servers do not log an abnormal closure.
      c.out.clear();
      const uint8_t body[2] = {uint8_t(1000 >> 8), uint8_t(1000 & 0xff)};
      queue_frame(c, lb::http::ws_close, std::string_view(reinterpret_cast<const char*>(body), 2));
      uv_buf_t b = uv_buf_init(c.out.data(), unsigned(c.out.size()));
      uv_try_write(as_stream(&c.tcp), &b, 1);
    }
    set_state(c, WsConn::State::closing);
    close_tcp(c);
  }
  close_timers();
}

void WsWorker::run() {
  rng_ ^= uv_hrtime() * 0x2545F4914F6CDD1DULL + spec_.thread_index;
  scratch_.resize(spec_.ws_method.size() + spec_.ws_params.size() + 96);
  run_conns(conns_, [this](WsConn& c, uint32_t i) {
    c.user = spec_.thread_index + spec_.thread_count * i;
    // Room for a few messages; a bigger backlog grows the buffers once, and they stay.
    c.out.reserve(4 * (scratch_.size() + lb::http::kWsMaxHeader) + 256);
    c.flight.reserve(c.out.capacity());
    build_handshake(c);
  });
}

}  // namespace

void run_ws_worker(const LoadSpec& spec, LoadResult& out, LoadLive& live) {
  WsWorker w(spec, out, live);
  w.run();
}

}  // namespace bench
