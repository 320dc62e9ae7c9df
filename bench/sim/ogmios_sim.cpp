#include "bench/sim/ogmios_sim.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <vector>

#include "bench/sim/ogmios_api.h"
#include "bench/sim/ws_codec.h"
#include "lb/core/flat_json.h"
#include "lb/http/ws_frame.h"
#include "lb/http/ws_handshake.h"
#include "lb/net/wall_clock.h"

namespace bench {

using lb::net::RawConnection;
using lb::net::Responder;
using lb::net::ServerRequest;

namespace {

constexpr uint64_t kTickMs = 200;
// A close we sent that the client has not answered after this long: the TCP goes.
constexpr uint64_t kCloseWaitMs = 5000;
constexpr size_t kCloseLogMax = 256;

}  // namespace

// One WebSocket. Owned by OgmiosSim::conns_ and by the connection's raw handlers; it
// holds its connection weakly. Idle, its reader and queue hold no heap memory.
struct OgmiosSim::Conn {
  RawConnection raw;
  WsReader reader;
  ogmios_api::Session session;
  std::optional<ogmios_api::Request> waiting;  // a nextBlock waiting for the tip to move
  uint64_t close_sent_ms = 0;                  // 0: no close frame sent yet
  bool finished = false;                       // closing: read nothing more
};

struct OgmiosSim::Timers {
  uv_timer_t tick{};
  uv_timer_t delay{};
  int open = 2;
  bool closing = false;
};

OgmiosSim::OgmiosSim(uv_loop_t* loop, std::string name, SimChain& chain, const uint64_t& latency_ms)
    : loop_(loop),
      name_(std::move(name)),
      chain_(chain),
      latency_ms_(latency_ms),
      start_unix_ms_(lb::net::wall_ms()),
      timers_(new Timers) {
  uv_timer_init(loop_, &timers_->tick);
  uv_timer_init(loop_, &timers_->delay);
  timers_->tick.data = this;
  timers_->delay.data = this;
  uv_timer_start(&timers_->tick, &OgmiosSim::on_tick, kTickMs, kTickMs);
}

OgmiosSim::~OgmiosSim() {
  close();
  alive_.reset();
}

void OgmiosSim::close() {
  if (!timers_ || timers_->closing) return;
  timers_->closing = true;
  delayed_.clear();
  auto done = [](uv_handle_t* h) {
    auto* t = static_cast<Timers*>(h->data);
    if (--t->open == 0) delete t;
  };
  timers_->tick.data = timers_;
  timers_->delay.data = timers_;
  uv_close(reinterpret_cast<uv_handle_t*>(&timers_->tick), done);
  uv_close(reinterpret_cast<uv_handle_t*>(&timers_->delay), done);
  timers_ = nullptr;
}

struct OgmiosSim::View {
  static ogmios_api::ChainView of(const SimChain& chain, uint64_t now) {
    return {chain.checkpoint(now), chain.block_interval(), chain.fork_at()};
  }
};

// ---- HTTP ----

void OgmiosSim::handle_http(const ServerRequest& req, Responder& r) {
  const Responder::Headers h = {{"X-Backend", name_}};
  const std::string_view path = req.target.substr(0, req.target.find('?'));
  const std::string_view json = "application/json;charset=utf-8";
  if (path == "/health" && (req.method == "GET" || req.method == "HEAD")) {
    const uint64_t t = now();
    ogmios_api::HealthInput in;
    in.connected = chain_.connected();
    in.tip_slot = chain_.checkpoint(t);
    in.block_interval = chain_.block_interval();
    in.fork_at = chain_.fork_at();
    in.network_slot = chain_.wall_slot(t);
    in.unix_ms = lb::net::wall_ms();
    in.start_unix_ms = start_unix_ms_;
    in.network_synchronization = chain_.network_synchronization(t);
    in.active_connections = stats_.open;
    in.total_connections = stats_.opened_total;
    in.total_messages = stats_.messages_in;
    r.respond(ogmios_api::health_status(in), json, ogmios_api::health_json(in), h);
    return;
  }
  if (req.method == "POST" && path == "/") {
    ogmios_api::ParsedRequest p = ogmios_api::parse_request(req.body);
    std::string body;
    int status = 200;
    if (!p.request) {
      body = std::move(p.error);
      status = 400;
    } else {
      ogmios_api::Session none;
      ogmios_api::Outcome o =
          ogmios_api::dispatch(*p.request, none, View::of(chain_, now()), false);
      body = std::move(o.reply);
      // Ogmios answers an HTTP request that fails with 400, the error in the body.
      if (body.find("\"error\":{") != std::string::npos &&
          body.find("\"result\":") == std::string::npos)
        status = 400;
    }
    if (latency_ms_ == 0) {
      r.respond(status, json, body, h);
      return;
    }
    schedule([r, status, body = std::move(body), h, json]() mutable {
      r.respond(status, json, body, h);
    });
    return;
  }
  if (req.method == "GET" && path == "/") {
    r.respond(200, "text/html;charset=utf-8",
              "<!DOCTYPE html><title>Ogmios (corral simulation)</title><p>" + name_ +
                  ": JSON-RPC over WebSocket on any path, or POST /; health at /health.</p>",
              h);
    return;
  }
  r.respond(404, json, "{\"error\":\"not found\"}", h);
}

// ---- WebSocket ----

void OgmiosSim::handle_upgrade(const ServerRequest& req, Responder& r) {
  Responder::Headers h = {{"X-Backend", name_}};
  const lb::http::WsRequestCheck check = lb::http::check_ws_request(
      req.method, req.version_major, req.version_minor, req.headers, !req.body.empty());
  if (check.status != 0) {
    if (check.version_mismatch) h.emplace_back("Sec-WebSocket-Version", "13");
    r.respond(
        check.status, "application/json",
        "{\"error\":\"" + lb::json_escape(check.reason ? check.reason : "bad handshake") + "\"}",
        h);
    return;
  }
  const lb::HeaderLookup key = lb::find_header(req.headers, "sec-websocket-key");
  std::string head =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: " +
      lb::http::ws_accept_key(key.value) + "\r\nX-Backend: " + name_ + "\r\n\r\n";
  auto conn = std::make_shared<Conn>();
  Conn* raw_ptr = conn.get();
  lb::net::RawHandlers handlers;
  handlers.on_data = [this, conn](std::string_view bytes) {
    if (conn->finished) return;
    std::vector<WsEvent> events;
    conn->reader.feed(bytes, events);
    for (WsEvent& e : events) {
      if (conn->finished) break;
      switch (e.kind) {
        case WsEvent::Kind::text:
        case WsEvent::Kind::binary:
          on_message(*conn, e.kind == WsEvent::Kind::text, std::move(e.payload));
          break;
        case WsEvent::Kind::ping:
          send_now(*conn, ws_server_frame(lb::http::ws_pong, e.payload));
          break;
        case WsEvent::Kind::pong:
          break;
        case WsEvent::Kind::close:
          ++stats_.close_codes_received[e.code];
          stats_.close_codes_received_log.push_back(e.code);
          if (stats_.close_codes_received_log.size() > kCloseLogMax)
            stats_.close_codes_received_log.pop_front();
          if (conn->close_sent_ms == 0) {
            // Echo the code (RFC 6455 §5.5.1); a close without one gets an empty close.
            send_close(*conn, e.code == 1005 ? 0 : e.code, {}, true);
          } else {
            conn->finished = true;
            conn->raw.close();
          }
          break;
        case WsEvent::Kind::error:
          ++stats_.protocol_errors;
          send_close(*conn, e.code, e.payload, true);
          break;
      }
    }
  };
  // Connections close asynchronously, possibly after this object is gone (a backend
  // closed and destroyed before the loop ran the close callbacks).
  handlers.on_close = [this, raw_ptr, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    if (conns_.erase(raw_ptr) != 0) --stats_.open;
  };
  RawConnection raw = r.switch_protocols(std::move(head), std::move(handlers));
  if (!raw.alive()) return;
  conn->raw = raw;
  conns_.emplace(raw_ptr, std::move(conn));
  ++stats_.open;
  ++stats_.opened_total;
}

void OgmiosSim::on_message(Conn& c, bool text, std::string payload) {
  ++stats_.messages_in;
  if (c.close_sent_ms != 0) return;  // closing: data frames are no longer answered
  if (!text) {
    ++stats_.binary_echoed;
    send_later(c, ws_server_frame(lb::http::ws_binary, payload));
    return;
  }
  ogmios_api::ParsedRequest p = ogmios_api::parse_request(payload);
  if (!p.request) {
    send_later(c, ws_server_frame(lb::http::ws_text, p.error));
    return;
  }
  ogmios_api::Outcome o =
      ogmios_api::dispatch(*p.request, c.session, View::of(chain_, now()), true);
  switch (o.action) {
    case ogmios_api::Action::reply:
      send_later(c, ws_server_frame(lb::http::ws_text, o.reply));
      return;
    case ogmios_api::Action::wait_block:
      c.waiting = std::move(p.request);
      return;
    case ogmios_api::Action::fragmented:
      send_later(
          c, ws_server_fragments(lb::http::ws_text, ogmios_api::padded_reply(*p.request, o.size),
                                 static_cast<size_t>(o.pieces)));
      return;
    case ogmios_api::Action::close:
      send_close(c, o.close_code, o.close_reason, false);
      return;
  }
}

void OgmiosSim::send_close(Conn& c, uint16_t code, std::string_view reason, bool then_close) {
  if (c.close_sent_ms != 0) return;
  c.close_sent_ms = std::max<uint64_t>(1, now());
  c.waiting.reset();
  if (code != 0) ++stats_.close_codes_sent[code];
  if (then_close) c.finished = true;
  send_now(c, ws_server_close(code, reason), then_close);
}

void OgmiosSim::send_now(Conn& c, std::string frame, bool then_close) {
  if (frame[0] != static_cast<char>(0x80 | lb::http::ws_close) &&
      frame[0] != static_cast<char>(0x80 | lb::http::ws_pong))
    ++stats_.messages_out;
  c.raw.write(std::move(frame));
  if (then_close) c.raw.close();
}

void OgmiosSim::send_later(Conn& c, std::string frame, bool then_close) {
  if (latency_ms_ == 0 && delayed_.empty()) {
    send_now(c, std::move(frame), then_close);
    return;
  }
  std::weak_ptr<Conn> weak;
  if (auto it = conns_.find(&c); it != conns_.end()) weak = it->second;
  schedule([this, weak, frame = std::move(frame), then_close]() mutable {
    if (auto conn = weak.lock()) send_now(*conn, std::move(frame), then_close);
  });
}

void OgmiosSim::schedule(std::function<void()> fn) {
  if (!timers_) return;
  // In order: a lowered latency never lets a later answer overtake an earlier one.
  uint64_t due = now() + latency_ms_;
  if (!delayed_.empty()) due = std::max(due, delayed_.back().first);
  delayed_.emplace_back(due, std::move(fn));
  if (delayed_.size() == 1) uv_timer_start(&timers_->delay, &OgmiosSim::on_delay, due - now(), 0);
}

void OgmiosSim::on_delay(uv_timer_t* t) { static_cast<OgmiosSim*>(t->data)->run_due(); }

void OgmiosSim::run_due() {
  const uint64_t t = now();
  while (!delayed_.empty() && delayed_.front().first <= t) {
    std::function<void()> fn = std::move(delayed_.front().second);
    delayed_.pop_front();
    fn();
  }
  if (!delayed_.empty() && timers_)
    uv_timer_start(&timers_->delay, &OgmiosSim::on_delay, delayed_.front().first - t, 0);
}

void OgmiosSim::on_tick(uv_timer_t* t) { static_cast<OgmiosSim*>(t->data)->tick(); }

void OgmiosSim::tick() {
  const uint64_t t = now();
  const ogmios_api::ChainView view = View::of(chain_, t);
  std::vector<std::shared_ptr<Conn>> ready;
  for (auto& [ptr, conn] : conns_) {
    if (conn->close_sent_ms != 0 && t - conn->close_sent_ms >= kCloseWaitMs)
      ready.push_back(conn);  // an unanswered close: handled below
    else if (conn->waiting)
      ready.push_back(conn);
  }
  for (auto& conn : ready) {
    if (conn->close_sent_ms != 0) {
      conn->finished = true;
      conn->raw.close_now(false);
      continue;
    }
    std::optional<std::string> b = ogmios_api::next_block(*conn->waiting, conn->session, view);
    if (!b) continue;
    conn->waiting.reset();
    send_later(*conn, ws_server_frame(lb::http::ws_text, *b));
  }
}

void OgmiosSim::drop_all() {
  delayed_.clear();
  std::vector<std::shared_ptr<Conn>> all;
  for (auto& [ptr, conn] : conns_) all.push_back(conn);
  for (auto& conn : all) {
    conn->finished = true;
    conn->raw.close_now(false);
  }
}

std::string OgmiosSim::stats_json_fields() const {
  auto codes = [](const std::map<uint16_t, uint64_t>& m) {
    std::string out = "{";
    for (const auto& [code, n] : m)
      out += (out.size() > 1 ? ",\"" : "\"") + std::to_string(code) + "\":" + std::to_string(n);
    return out + "}";
  };
  size_t waiting = 0;
  for (const auto& [ptr, conn] : conns_) waiting += conn->waiting ? 1 : 0;
  std::string log = "[";
  for (uint16_t c : stats_.close_codes_received_log)
    log += (log.size() > 1 ? "," : "") + std::to_string(c);
  log += "]";
  return ",\"ws_open\":" + std::to_string(stats_.open) +
         ",\"ws_opened_total\":" + std::to_string(stats_.opened_total) +
         ",\"ws_messages_in\":" + std::to_string(stats_.messages_in) +
         ",\"ws_messages_out\":" + std::to_string(stats_.messages_out) +
         ",\"ws_binary_echoed\":" + std::to_string(stats_.binary_echoed) +
         ",\"ws_protocol_errors\":" + std::to_string(stats_.protocol_errors) +
         ",\"ws_waiting_next_block\":" + std::to_string(waiting) +
         ",\"ws_close_codes_received\":" + codes(stats_.close_codes_received) +
         ",\"ws_close_codes_received_log\":" + log +
         ",\"ws_close_codes_sent\":" + codes(stats_.close_codes_sent);
}

}  // namespace bench
