#pragma once
// The Ogmios side of a simulated backend (`corral-bench backend --kind ogmios`): JSON-RPC
// 2.0 over WebSocket on any path and over HTTP `POST /`, and `GET /health` with Ogmios'
// fields and codes (200 synced, 202 tip older than 60 s, 500 disconnected). The methods
// and their shapes are in ogmios_api.h; the chain is the backend's SimChain.
//
// WebSocket (RFC 6455, server side): the handshake is checked with lb/http/ws_handshake
// (a bad one gets its 4xx, no upgrade); the 101 carries X-Backend like every answer.
// Client frames must be masked; fragmented messages are reassembled (up to 16 MiB, above
// that close 1009); a ping gets a pong with its payload; a client's close gets a close
// echoing its code (an empty one for none), then the TCP connection is closed; an unmasked
// or malformed frame gets close 1002. A binary message is echoed back whole as one binary
// message. nextBlock at the tip waits for the next simulated block, as Ogmios does.
// Test hooks, as JSON-RPC methods on a WebSocket:
//   _sim/echo         any params          result = params (null without)
//   _sim/fragmented   {"size":N,"pieces":K}  a reply of exactly N bytes (or the shortest
//                     possible) whose result is a string of 'x', sent as K text fragments
//   _sim/close        {"code":C,"reason":R}  the server sends a close frame with C and R
//                     (no reply), then waits up to 5 s for the client's close
// Counters in /_sim/stats (see SimBackend): ws_open, ws_opened_total, ws_messages_in,
// ws_messages_out, ws_binary_echoed, ws_protocol_errors, ws_waiting_next_block,
// ws_close_codes_received {"code":count}, ws_close_codes_received_log [codes, oldest
// first, the last 256], ws_close_codes_sent {"code":count}.
// A dead backend (POST /_sim/control {"dead":true}) drops every open WebSocket without a
// close frame (drop_all) and aborts new handshakes. An idle WebSocket holds no buffer.
#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "bench/sim/sim_chain.h"
#include "lb/net/http_server.h"

namespace bench {

struct OgmiosStats {
  uint64_t open = 0;
  uint64_t opened_total = 0;
  uint64_t messages_in = 0;
  uint64_t messages_out = 0;
  uint64_t binary_echoed = 0;
  uint64_t protocol_errors = 0;
  std::map<uint16_t, uint64_t> close_codes_received;
  std::deque<uint16_t> close_codes_received_log;
  std::map<uint16_t, uint64_t> close_codes_sent;
};

class OgmiosSim {
 public:
  // `latency_ms` is read at each message (the backend's control may change it).
  OgmiosSim(uv_loop_t* loop, std::string name, SimChain& chain, const uint64_t& latency_ms);
  ~OgmiosSim();
  OgmiosSim(const OgmiosSim&) = delete;
  OgmiosSim& operator=(const OgmiosSim&) = delete;

  // A request that is not for /_sim/ and not an upgrade: /health, POST /, GET /.
  void handle_http(const lb::net::ServerRequest& req, lb::net::Responder& r);
  // An upgrade request: the WebSocket handshake.
  void handle_upgrade(const lb::net::ServerRequest& req, lb::net::Responder& r);
  // Closes every open WebSocket's TCP connection at once, without a close frame, and drops
  // delayed replies (a killed process).
  void drop_all();
  // Stops the timers (the server is closing); sockets are closed by the server.
  void close();

  const OgmiosStats& stats() const { return stats_; }
  // The stats as JSON members, each preceded by a comma, for /_sim/stats.
  std::string stats_json_fields() const;

 private:
  struct Conn;
  struct Timers;
  friend struct Conn;

  uint64_t now() const { return uv_now(loop_); }
  // The chain-sync view of the chain now (the same tip as /health).
  struct View;
  void on_message(Conn& c, bool text, std::string payload);
  // Sends `frame` on `c` after the configured latency (in order with earlier ones);
  // `then_close` closes the connection once it is written.
  void send_later(Conn& c, std::string frame, bool then_close = false);
  void send_now(Conn& c, std::string frame, bool then_close = false);
  void send_close(Conn& c, uint16_t code, std::string_view reason, bool then_close);
  void schedule(std::function<void()> fn);
  static void on_tick(uv_timer_t* t);
  static void on_delay(uv_timer_t* t);
  void tick();
  void run_due();

  uv_loop_t* loop_;
  std::string name_;
  SimChain& chain_;
  const uint64_t& latency_ms_;
  uint64_t start_unix_ms_;
  Timers* timers_ = nullptr;                                    // freed by its close callbacks
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // expires with this object
  std::unordered_map<Conn*, std::shared_ptr<Conn>> conns_;
  std::deque<std::pair<uint64_t, std::function<void()>>> delayed_;  // due (loop ms), action
  OgmiosStats stats_;
};

}  // namespace bench
