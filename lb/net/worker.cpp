#include "lb/net/worker.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "lb/http/ws_frame.h"
#include "lb/net/client_conn.h"
#include "lb/net/log.h"
#include "lb/net/proxy_preface.h"
#include "lb/net/socket_address.h"
#include "lb/net/store_client.h"
#include "lb/net/tcp_stream.h"
#include "lb/net/tls_stream.h"
#include "lb/net/tunnel.h"

namespace lb::net {

namespace {

// The worker's unordered lists (open connections, prefaces, tunnels, parked exchanges):
// each member keeps its own index, so removal is O(1) by swapping in the last one.
template <class T>
void list_add(std::vector<T*>& v, T* x, size_t T::*index) {
  x->*index = v.size();
  v.push_back(x);
}

template <class T>
void list_remove(std::vector<T*>& v, T* x, size_t T::*index) {
  size_t i = x->*index;
  if (i >= v.size() || v[i] != x) return;
  v[i] = v.back();
  v[i]->*index = i;
  v.pop_back();
}

}  // namespace

// A listening socket. corral accepts itself (uv_poll on the socket, accept4) rather than
// through uv_listen, because libuv's own EMFILE handling refuses clients silently: here
// running out of descriptors is counted, logged and answered (see accept_ready).
struct Worker::Listener {
  uv_poll_t poll{};
  uv_timer_t resume{};  // accepting paused after an EMFILE the reserve could not cover
  int fd = -1;
  int open_handles = 0;
  bool paused = false;
  Worker* worker = nullptr;
  std::string name;
  size_t index = 0;  // in the runtime's listeners
};

namespace {

// Accepting pauses this long when even the reserve descriptor is gone (nginx waits 500 ms
// after EMFILE; a shorter pause keeps latency low once descriptors are back).
constexpr uint64_t kAcceptPauseMs = 100;
// Accepts per wake-up, so one busy listener cannot starve the loop's other work.
constexpr int kAcceptBatch = 128;

constexpr char kFdExhausted503[] =
    "HTTP/1.1 503 Service Unavailable\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 46\r\n"
    "Retry-After: 1\r\n"
    "Connection: close\r\n"
    "\r\n"
    "{\"error\":\"corral is out of file descriptors\"}\n";

void on_listener_handle_closed(uv_handle_t* h);

}  // namespace

Worker::Worker(ProxyState& state, unsigned index)
    : state_(state),
      index_(index),
      buffers_(state.buffers, state.runtime.load()->config.limits.buffer_bytes),
      deadlines_((uv_loop_init(&loop_), &loop_)) {
  uv_async_init(&loop_, &async_, &Worker::on_async);
  uv_timer_init(&loop_, &deadline_);
  uv_timer_init(&loop_, &tunnel_check_);
  async_.data = this;
  deadline_.data = this;
  tunnel_check_.data = this;
  runtime_ = state_.runtime.load();
  state_.buffers.limit = runtime_->config.limits.max_buffer_memory;
  // The store client is made on the loop's first turn (on_async), never before it runs.
  if (runtime_->store) uv_async_send(&async_);
}

Worker::~Worker() {
  join();
  if (store_) {  // never run to its stop: close the link's handles here
    store_.reset();
    // Its close callbacks; other handles may still be open, so not "until idle".
    for (int i = 0; i < 3; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  }
  for (SavedSession& s : tls_sessions_) SSL_SESSION_free(s.session);
  uv_loop_close(&loop_);
}

void Worker::open_listener(BoundSocket s) {
  auto l = std::make_unique<Listener>();
  l->worker = this;
  l->name = s.listener;
  l->fd = s.fd;
  for (size_t i = 0; i < runtime_->listeners.size(); ++i)
    if (runtime_->listeners[i].name == s.listener) l->index = i;
  if (int rc = uv_poll_init_socket(&loop_, &l->poll, s.fd); rc != 0) {
    logf(LogLevel::error, "listener %s: %s", s.listener.c_str(), uv_strerror(rc));
    ::close(s.fd);
    return;
  }
  uv_timer_init(&loop_, &l->resume);
  l->open_handles = 2;
  l->poll.data = l->resume.data = l.get();
  uv_poll_start(&l->poll, UV_READABLE, &Worker::on_acceptable);
  listeners_.push_back(std::move(l));
}

namespace {

// The listener's memory and socket go once both of its handles have closed.
void on_listener_handle_closed(uv_handle_t* h) {
  auto* l = static_cast<Worker::Listener*>(h->data);
  if (--l->open_handles > 0) return;
  ::close(l->fd);
  delete l;
}

}  // namespace

void Worker::close_listener(const std::string& name) {
  for (auto it = listeners_.begin(); it != listeners_.end(); ++it) {
    if ((*it)->name != name) continue;
    Listener* l = it->release();
    listeners_.erase(it);
    uv_close(reinterpret_cast<uv_handle_t*>(&l->poll), on_listener_handle_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&l->resume), on_listener_handle_closed);
    return;
  }
}

void Worker::start(std::vector<BoundSocket> sockets) {
  for (BoundSocket& s : sockets) open_listener(std::move(s));
  thread_ = std::thread([this] {
    set_stats_shard(index_);  // this worker's counters go to its own shard
    uv_run(&loop_, UV_RUN_DEFAULT);
    // Handles closed on the way out need one more turn to run their callbacks.
    uv_run(&loop_, UV_RUN_DEFAULT);
  });
}

void Worker::reload(std::vector<BoundSocket> add, std::vector<std::string> remove) {
  {
    std::lock_guard lock(pending_mu_);
    for (BoundSocket& b : add) pending_add_.push_back(std::move(b));
    for (std::string& r : remove) pending_remove_.push_back(std::move(r));
  }
  uv_async_send(&async_);
}

void Worker::stop(uint64_t deadline_ms) {
  stop_deadline_ms_ = deadline_ms;
  stop_requested_ = true;
  uv_async_send(&async_);
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::on_async(uv_async_t* a) {
  auto* w = static_cast<Worker*>(a->data);
  w->runtime_ = w->state_.runtime.load();
  w->buffers_.resize(w->runtime_->config.limits.buffer_bytes);
  w->state_.buffers.limit = w->runtime_->config.limits.max_buffer_memory;
  std::vector<BoundSocket> add;
  std::vector<std::string> remove;
  {
    std::lock_guard lock(w->pending_mu_);
    add.swap(w->pending_add_);
    remove.swap(w->pending_remove_);
  }
  for (const std::string& name : remove) w->close_listener(name);
  for (BoundSocket& b : add) {
    if (w->stopping_)
      ::close(b.fd);
    else
      w->open_listener(std::move(b));
  }
  w->check_tunnels();  // a reload may have removed a tunnel's backend
  if (!w->async_closed_) w->adopt_store();
  if (w->stop_requested_ && !w->stopping_) w->begin_stop();
}

void Worker::adopt_store() {
  if (!runtime_->store) {
    drop_store();
    return;
  }
  if (!store_) store_ = std::make_unique<StoreClient>(&loop_, state_);
  store_->configure(*runtime_);  // reconnects only when the address or password changed
}

// The store is gone (a reload removed it, or the worker stops): exchanges still waiting
// are cancelled and then placed locally; the link's handles finish closing on the loop's
// next turn.
void Worker::drop_store() {
  if (!store_) return;
  std::vector<Exchange*> waiting;
  waiting.swap(parked_);
  for (Exchange* e : waiting) store_->cancel(e);
  store_.reset();
  StoreAnswer failed;
  failed.why = "down";
  // Each answer resumes a different connection's request: none frees another's exchange.
  for (Exchange* e : waiting) static_cast<StoreWaiter*>(e)->store_answer(failed);
}

void Worker::park(Exchange* e) { list_add(parked_, e, &Exchange::park_index); }

void Worker::unpark(Exchange* e) { list_remove(parked_, e, &Exchange::park_index); }

void Worker::on_acceptable(uv_poll_t* p, int status, int) {
  auto* l = static_cast<Listener*>(p->data);
  if (status != 0) {
    log_limited("listener %s: poll: %s", l->name.c_str(), uv_strerror(status));
    return;
  }
  l->worker->accept_ready(*l);
}

void Worker::on_resume(uv_timer_t* t) {
  auto* l = static_cast<Listener*>(t->data);
  l->paused = false;
  if (!l->worker->reserve_.held()) l->worker->reserve_.restore();
  if (!l->worker->stopping_) uv_poll_start(&l->poll, UV_READABLE, &Worker::on_acceptable);
}

// Out of descriptors (EMFILE/ENFILE) on accept: corral's problem, not the client's and
// not a backend's. The reserve descriptor is freed for one accept so the pending client
// gets a 503 and a close instead of waiting in the backlog (and the level-triggered poll
// does not spin on it); when not even that works, accepting pauses briefly.
void Worker::accept_exhausted(Listener& l, int err) {
  state_.fd_exhausted_accept.fetch_add(1, std::memory_order_relaxed);
  log_limited(
      "listener %s: accept: %s: corral is out of file descriptors; raise the fd "
      "limit (ulimit -n / LimitNOFILE) or lower limits.max_connections",
      l.name.c_str(), std::strerror(err));
  bool refused = false;
  // A reserve lost earlier (another thread took the freed number before it came back)
  // is retaken first, or every later shortage would only pause.
  if (!reserve_.held()) reserve_.restore();
  if (reserve_.release()) {
    int fd = ::accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      // A fresh socket's send buffer takes these few bytes at once; the close follows.
      ssize_t n =
          ::send(fd, kFdExhausted503, sizeof kFdExhausted503 - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
      (void)n;
      ::shutdown(fd, SHUT_WR);
      ::close(fd);
      refused = true;
    }
    reserve_.restore();
  }
  if (!refused || !reserve_.held()) {
    l.paused = true;
    uv_poll_stop(&l.poll);
    uv_timer_start(&l.resume, &Worker::on_resume, kAcceptPauseMs, 0);
  }
}

namespace {
// A stream closed as soon as accepted, kept until libuv is done with it.
struct Discarded final : StreamHandler {
  std::unique_ptr<Stream> stream;
  static void close(std::unique_ptr<Stream> s) {
    auto* d = new Discarded;
    d->stream = std::move(s);
    d->stream->set_handler(d);
    d->stream->close();
  }
  void on_readable(Stream&) override {}
  void on_eof(Stream&) override {}
  void on_stream_error(Stream&, int) override {}
  void on_drained(Stream&) override {}
  void on_closed(Stream&) override { delete this; }
};
}  // namespace

void Worker::accept_ready(Listener& l) {
  // The listener's index can move when a reload reorders listeners.
  const auto& ls = runtime_->listeners;
  if (l.index >= ls.size() || ls[l.index].name != l.name)
    for (size_t i = 0; i < ls.size(); ++i)
      if (ls[i].name == l.name) l.index = i;
  for (int n = 0; n < kAcceptBatch && !l.paused && !stopping_; ++n) {
    int fd = ::accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      if (err == EINTR || err == ECONNABORTED) continue;
      if (err == EMFILE || err == ENFILE) {
        accept_exhausted(l, err);
        continue;
      }
      log_limited("listener %s: accept: %s", l.name.c_str(), std::strerror(err));
      return;
    }
    if (ls[l.index].proxy_protocol)
      ProxyPreface::start(*this, fd, l.name, l.index);  // adopt_client once the header is read
    else
      adopt_client(fd, l.name, l.index, nullptr, 0);
  }
}

void Worker::adopt_client(int fd, const std::string& name, size_t index, const uint8_t* given_ip,
                          size_t given_len) {
  const auto& ls = runtime_->listeners;
  if (index >= ls.size() || ls[index].name != name) {
    index = ls.size();
    for (size_t i = 0; i < ls.size(); ++i)
      if (ls[i].name == name) index = i;
    if (index == ls.size()) {  // removed by a reload while its PROXY header was read
      ::close(fd);
      return;
    }
  }
  auto tcp = std::make_unique<TcpStream>(&loop_, buffers_);
  if (int rc = uv_tcp_open(tcp->tcp(), fd); rc != 0) {
    // Not expected for a fresh descriptor.
    log_limited("listener %s: cannot adopt a client socket: %s", name.c_str(), uv_strerror(rc));
    ::close(fd);
    // Go on: the connection's first read fails and its close path releases the
    // initialised handle, which a plain destructor could not.
  }
  uint8_t ip[16];
  size_t ip_len = 0;
  if (given_ip && (given_len == 4 || given_len == 16)) {
    std::memcpy(ip, given_ip, given_len);
    ip_len = given_len;
  } else {
    ip_len = peer_ip(tcp->tcp(), ip);
  }
  uv_tcp_nodelay(tcp->tcp(), 1);
  std::unique_ptr<Stream> stream = std::move(tcp);
  if (ls[index].tls) {
    // TLS listener: the connection reads and writes through the TLS stream; the handshake
    // runs on its first bytes, under the connection's header deadline.
    const TlsContext& ctx = ls[index].tls_context;
    if (!ctx) {  // logged when the snapshot was built; never clear text instead
      Discarded::close(std::move(stream));
      return;
    }
    stream = std::make_unique<TlsStream>(std::move(stream), ctx.get(), TlsStream::Mode::server);
  }
  ClientConn::open(*this, std::move(stream), index, ip, ip_len);
}

std::unique_ptr<Stream> Worker::make_stream(const RuntimeBackend* backend) {
  std::unique_ptr<Stream> plain =
      stream_factory_ ? stream_factory_() : std::make_unique<TcpStream>(&loop_, buffers_);
  if (!backend || !backend->tls) return plain;
  plain->set_exempt(true);
  auto tls = std::make_unique<TlsStream>(std::move(plain), backend->tls_ctx.get(),
                                         TlsStream::Mode::client);
  tls->set_peer_name(backend->tls_name);
  if (backend->ref < tls_sessions_.size()) {
    const SavedSession& s = tls_sessions_[backend->ref];
    if (s.session && s.name == backend->tls_name) tls->set_session(s.session);
  }
  return tls;
}

void Worker::save_tls_session(BackendRef ref, const std::string& name, TlsStream& tls) {
  SSL_SESSION* s = tls.take_session();
  if (!s) return;
  if (!SSL_SESSION_is_resumable(s)) {
    SSL_SESSION_free(s);
    return;
  }
  if (ref >= tls_sessions_.size()) tls_sessions_.resize(ref + 1);
  SavedSession& slot = tls_sessions_[ref];
  if (slot.session == s && slot.name == name) {  // a pooled connection's, kept already
    SSL_SESSION_free(s);
    return;
  }
  if (slot.session) SSL_SESSION_free(slot.session);
  slot.session = s;
  slot.name = name;
}

size_t Worker::tls_session_count() const {
  size_t n = 0;
  for (const SavedSession& s : tls_sessions_) n += s.session != nullptr;
  return n;
}

void Worker::track(ClientConn* c) { list_add(conns_, c, &ClientConn::track_index); }

void Worker::untrack(ClientConn* c) {
  list_remove(conns_, c, &ClientConn::track_index);
  if (stopping_) maybe_finish_stop();
}

void Worker::track_preface(ProxyPreface* p) { list_add(prefaces_, p, &ProxyPreface::track_index); }

void Worker::untrack_preface(ProxyPreface* p) {
  list_remove(prefaces_, p, &ProxyPreface::track_index);
  if (stopping_) maybe_finish_stop();
}

void Worker::track_tunnel(Tunnel* t) {
  list_add(tunnels_, t, &Tunnel::track_index);
  if (tunnels_.size() == 1)
    uv_timer_start(&tunnel_check_, &Worker::on_tunnel_check, kTunnelCheckMs, kTunnelCheckMs);
}

void Worker::untrack_tunnel(Tunnel* t) {
  list_remove(tunnels_, t, &Tunnel::track_index);
  if (tunnels_.empty()) uv_timer_stop(&tunnel_check_);
  if (stopping_) maybe_finish_stop();
}

void Worker::on_tunnel_check(uv_timer_t* t) { static_cast<Worker*>(t->data)->check_tunnels(); }

// Health publishes backend states as atomics; a tunnel on a backend that went down (or
// that a reload removed) gets its 1012 within one check.
void Worker::check_tunnels() {
  std::vector<Tunnel*> all = tunnels_;  // a close may untrack one
  for (Tunnel* t : all)
    if (const char* why = t->backend_gone(*runtime_)) t->close_with(http::kWsServiceRestart, why);
}

void Worker::begin_stop() {
  stopping_ = true;
  while (!listeners_.empty()) close_listener(listeners_.front()->name);
  upstreams_.close_all();
  std::vector<ClientConn*> conns = conns_;
  for (ClientConn* c : conns) c->stop_gracefully();
  std::vector<ProxyPreface*> prefaces = prefaces_;  // no request yet: nothing to finish
  for (ProxyPreface* p : prefaces) p->abort();
  uv_timer_start(&deadline_, &Worker::on_deadline, stop_deadline_ms_.load(), 0);
  maybe_finish_stop();
}

void Worker::maybe_finish_stop() {
  if (!conns_.empty() || !tunnels_.empty() || !prefaces_.empty() || flights_.size() != 0 ||
      flights_.engine_count() != 0 || async_closed_)
    return;
  async_closed_ = true;
  upstreams_.close_all();
  drop_store();  // before the loop ends: its handles close on the next turn
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&deadline_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&tunnel_check_), nullptr);
  deadlines_.close();
}

void Worker::on_deadline(uv_timer_t* t) {
  auto* w = static_cast<Worker*>(t->data);
  if (!w->conns_.empty())
    logf(LogLevel::warn, "worker %u: stop deadline passed, closing %zu connections", w->index_,
         w->conns_.size());
  w->flights_.abort_all();  // their waiters are answered (or cut) and closed just below
  std::vector<ClientConn*> conns = w->conns_;
  for (ClientConn* c : conns) c->close();
  // Tunnels live until the deadline, then hear 1001 (going away) and reconnect elsewhere.
  std::vector<Tunnel*> tunnels = w->tunnels_;
  for (Tunnel* t : tunnels) t->close_with(http::kWsGoingAway, "corral is shutting down", true);
}

}  // namespace lb::net
