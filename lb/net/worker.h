#pragma once
// A worker: one thread, one libuv loop, its own accepting sockets (SO_REUSEPORT) and its
// own upstream pools (DESIGN.md "Threads"). It picks up a new runtime snapshot when woken
// through its uv_async_t, and stops gracefully: no new connections, in-flight requests
// finish, then the loop ends.
#include <uv.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "lb/http/message_parser.h"
#include "lb/net/buffer_pool.h"
#include "lb/net/deadlines.h"
#include "lb/net/fd_limit.h"
#include "lb/net/flight_table.h"
#include "lb/net/free_list.h"
#include "lb/net/proxy_state.h"
#include "lb/net/stream.h"
#include "lb/net/tls_context.h"
#include "lb/net/upstream_pool.h"

namespace lb::net {

class ClientConn;
class Exchange;
class ProxyPreface;
class StoreClient;
class Tunnel;
class TlsStream;
struct RequestState;

// A bound listening socket (fd) for one listener, created before the workers start so
// that bind errors surface at start-up and port 0 resolves to one port for all workers.
struct BoundSocket {
  std::string listener;
  int fd = -1;
};

// Opens `count` SO_REUSEPORT sockets bound to the same address; the first fixes the port
// when the configured one is 0. Returns false and sets error on failure; then every socket
// this call opened is closed again and fds is as it was.
bool bind_reuseport(const std::string& host, uint16_t port, int backlog, size_t count,
                    std::vector<int>& fds, uint16_t& bound_port, std::string& error);

class Worker {
 public:
  Worker(ProxyState& state, unsigned index);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts the thread serving the given sockets (ownership passes to the worker).
  void start(std::vector<BoundSocket> sockets);
  // Thread-safe: adopt state.runtime now, then open `add` (sockets already bound) and
  // close the listeners named in `remove` (their open connections finish their current
  // request and close).
  void reload(std::vector<BoundSocket> add = {}, std::vector<std::string> remove = {});
  // Thread-safe: stop accepting; finish in-flight work for up to deadline_ms, then close.
  void stop(uint64_t deadline_ms);
  void join();

  // Worker thread only.
  uv_loop_t* loop() { return &loop_; }
  const std::shared_ptr<const Runtime>& runtime() const { return runtime_; }
  ProxyState& state() { return state_; }
  UpstreamPool& upstreams() { return upstreams_; }
  BufferPool& buffers() { return buffers_; }
  const BufferPool& buffers() const { return buffers_; }
  Deadlines& deadlines() { return deadlines_; }
  FreeList<RequestState>& request_states() { return request_states_; }
  FreeList<http::MessageParser>& response_parsers() { return response_parsers_; }
  // A new stream for an upstream connection to `backend`: TCP, or what a test installed,
  // wrapped in a client TlsStream (SNI, name check, the saved session offered) when the
  // backend speaks TLS.
  std::unique_ptr<Stream> make_stream(const RuntimeBackend* backend = nullptr);
  using StreamFactory = std::function<std::unique_ptr<Stream>()>;
  // Keeps the session of a TLS connection to backend `ref`, verified for `name`, (when
  // resumable) for the next connection there: this worker's, so no lock.
  void save_tls_session(BackendRef ref, const std::string& name, TlsStream& tls);
  // Saved TLS sessions (tests).
  size_t tls_session_count() const;
  void set_stream_factory(StreamFactory f) { stream_factory_ = std::move(f); }
  // Stop reading one side while the other side's queue holds more than this.
  size_t max_pending() const { return 4 * buffers_.buffer_bytes(); }
  size_t connection_count() const { return conns_.size(); }
  bool stopping() const { return stopping_; }
  void track(ClientConn* c);
  void untrack(ClientConn* c);
  // WebSocket tunnels: checked every kTunnelCheckMs (and on every reload) for a backend
  // that went down or was removed; given 1001 when the stop deadline passes.
  void track_tunnel(Tunnel* t);
  void untrack_tunnel(Tunnel* t);
  size_t tunnel_count() const { return tunnels_.size(); }
  // Connections of proxy_protocol listeners whose PROXY header is still awaited.
  void track_preface(ProxyPreface* p);
  void untrack_preface(ProxyPreface* p);
  size_t preface_count() const { return prefaces_.size(); }
  // Serves an accepted client socket of listener `name` (index: where it was; a reload
  // may have moved it, or removed it: then the socket is closed): a TcpStream, TLS on a
  // TLS listener, a ClientConn. ip: the client's address bytes (4 or 16) from a PROXY
  // header, or null for the socket's own peer.
  void adopt_client(int fd, const std::string& name, size_t index, const uint8_t* ip,
                    size_t ip_len);
  static constexpr uint64_t kTunnelCheckMs = 250;
  unsigned index() const { return index_; }
  // This loop's client of the shared pin store (sticky.store), or null without one. Made
  // and configured on the loop (the first turn, then every runtime adopted), so nothing
  // connects before the loop runs.
  StoreClient* store() { return store_.get(); }
  // Exchanges whose placement waits for the store: if a reload removes the store they
  // are answered `failed` (placed locally) rather than left waiting.
  void park(Exchange* e);
  void unpark(Exchange* e);
  size_t parked_count() const { return parked_.size(); }
  // Request collapsing (lb/net/flight.h): this worker's flights. A graceful stop waits for
  // them; its deadline aborts them.
  FlightTable& flights() { return flights_; }
  // A flight was freed (a stop in progress may finish now).
  void flight_ended() {
    if (stopping_) maybe_finish_stop();
  }

  struct Listener;  // public for its close callback; defined in worker.cpp

 private:
  static void on_async(uv_async_t* a);
  static void on_acceptable(uv_poll_t* p, int status, int events);
  static void on_resume(uv_timer_t* t);
  void accept_ready(Listener& l);
  void accept_exhausted(Listener& l, int err);
  static void on_deadline(uv_timer_t* t);
  static void on_tunnel_check(uv_timer_t* t);
  void check_tunnels();
  void begin_stop();
  void maybe_finish_stop();
  void open_listener(BoundSocket s);
  // Makes, reconfigures or drops store_ for the runtime just adopted.
  void adopt_store();
  void drop_store();
  void close_listener(const std::string& name);

  ProxyState& state_;
  unsigned index_;
  uv_loop_t loop_{};
  uv_async_t async_{};
  uv_timer_t deadline_{};
  std::thread thread_;
  std::shared_ptr<const Runtime> runtime_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  BufferPool buffers_;
  Deadlines deadlines_;
  FreeList<RequestState> request_states_;
  FreeList<http::MessageParser> response_parsers_;
  UpstreamPool upstreams_;
  StreamFactory stream_factory_;
  // The last resumable TLS session per backend (by BackendRef) and the name it was
  // verified for: a session is offered only to the same name.
  struct SavedSession {
    SSL_SESSION* session = nullptr;
    std::string name;
  };
  std::vector<SavedSession> tls_sessions_;
  FdReserve reserve_;  // freed for one accept when out of descriptors
  std::vector<ClientConn*> conns_;
  std::vector<Tunnel*> tunnels_;
  std::vector<ProxyPreface*> prefaces_;
  uv_timer_t tunnel_check_{};  // runs only while there are tunnels
  std::mutex pending_mu_;      // guards the two lists below, filled by reload()
  std::vector<BoundSocket> pending_add_;
  std::vector<std::string> pending_remove_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<uint64_t> stop_deadline_ms_{0};
  bool stopping_ = false;
  bool async_closed_ = false;
  std::unique_ptr<StoreClient> store_;
  std::vector<Exchange*> parked_;
  FlightTable flights_;
};

}  // namespace lb::net
