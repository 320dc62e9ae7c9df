#pragma once
// A small HTTP/1.1 server on libuv for corral's own endpoints (the admin listener) and
// for the simulated backends of corral-bench: keep-alive, pipelined requests answered in
// order, request bodies buffered up to a cap, responses sent now or later (a handler may
// answer from a timer), whole or streamed with chunked encoding. A server given an upgrade
// handler lets it take a connection over after its 101 (the simulated Ogmios speaks
// WebSocket this way); without one, an upgrade request is answered as a plain request and
// the connection closes after it, as corral's admin listener does.
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lb/core/header_view.h"

namespace lb::net {

// Views into the connection's buffer: valid only during the handler call. A handler that
// answers later copies what it needs.
struct ServerRequest {
  std::string_view method;
  std::string_view target;  // path[?query]
  std::span<const HeaderView> headers;
  std::string_view body;
  std::string_view peer;  // "ip:port" of the client
  int version_major = 1;
  int version_minor = 1;
};

class ServerConnection;
class RawConnection;

// What a connection taken over after an upgrade reports. Both are called from the loop
// thread; `on_data`'s view is valid only during the call. `on_close` runs once, when the
// connection's handles have closed (peer gone, an error, close() or the server closing).
struct RawHandlers {
  std::function<void(std::string_view)> on_data;
  std::function<void()> on_close;
};

// Answers one request. Cheap to copy; stays safe to use after the client went away (the
// calls then do nothing). Exactly one of respond() or begin()..end() per request.
class Responder {
 public:
  Responder() = default;
  explicit Responder(std::weak_ptr<ServerConnection> conn, uint64_t seq);
  using Headers = std::vector<std::pair<std::string, std::string>>;
  // A whole response with Content-Length.
  void respond(int status, std::string_view content_type, std::string_view body,
               const Headers& extra = {});
  // A streamed response with Transfer-Encoding: chunked.
  void begin(int status, std::string_view content_type, const Headers& extra = {});
  void chunk(std::string_view data);
  void end();
  // Drop the connection without answering (to simulate a dead backend).
  void abort();
  bool alive() const;
  // For an upgrade request (see HttpServer::set_upgrade_handler): writes `head` (a whole
  // response head such as a 101, written as it is) and hands the connection over: from
  // now on every byte read goes to `handlers.on_data` (bytes the client sent after its
  // request head first, once the handler returns), nothing is parsed as HTTP and no idle
  // timeout applies. Returns a dead RawConnection if the request cannot be upgraded.
  RawConnection switch_protocols(std::string head, RawHandlers handlers);

 private:
  std::weak_ptr<ServerConnection> conn_;
  uint64_t seq_ = 0;
};

// A connection after switch_protocols(): raw bytes both ways. Cheap to copy; after the
// connection went away its calls do nothing. Holds no buffer while idle (reads land in a
// buffer shared by the server's connections).
class RawConnection {
 public:
  RawConnection() = default;
  explicit RawConnection(std::weak_ptr<ServerConnection> conn);
  void write(std::string data);
  // Closes once every write queued so far has gone out (a FIN, then close).
  void close();
  // Closes now, queued writes dropped: `reset` sends an RST, otherwise a FIN (as the
  // kernel does for a killed process).
  void close_now(bool reset);
  bool alive() const;
  // Bytes queued for writing and not yet taken by the kernel.
  size_t write_queue_bytes() const;

 private:
  std::weak_ptr<ServerConnection> conn_;
};

using Handler = std::function<void(const ServerRequest&, Responder)>;

struct ServerOptions {
  size_t max_header_bytes = 16384;
  size_t max_body_bytes = 1 << 20;
  uint64_t idle_timeout_ms = 60'000;
  // A request head must be complete this long after the connection opened (first request)
  // or after its first byte (later ones), however slowly bytes trickle in: 408 and close.
  // 0 = no limit (only the idle timeout, which every byte restarts).
  uint64_t header_timeout_ms = 0;
  // Open connections at most; one more is answered 503 and closed. 0 = no limit.
  size_t max_connections = 0;
};

class HttpServer {
 public:
  HttpServer(uv_loop_t* loop, Handler handler, ServerOptions options = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens (port 0 = ephemeral). Returns 0 or a libuv error code.
  int listen(const std::string& host, uint16_t port);
  uint16_t port() const;
  // Requests that ask to upgrade (llhttp's upgrade: an Upgrade field with Connection:
  // upgrade, or CONNECT) go to `h` instead of the handler; `h` either answers like any
  // handler (the connection then closes) or calls Responder::switch_protocols.
  void set_upgrade_handler(Handler h);
  // Stops accepting and closes every connection; `done` runs once all handles closed.
  void close(std::function<void()> done = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lb::net
