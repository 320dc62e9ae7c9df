#include "lb/net/proxy_preface.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lb/net/log.h"
#include "lb/net/runtime.h"
#include "lb/net/socket_address.h"
#include "lb/net/worker.h"

namespace lb::net {
namespace {

// The header deadline when limits.header_timeout is 0 (off): a preface must not wait forever.
constexpr uint64_t kDefaultPrefaceMs = 10'000;

// The socket's peer address as text, for log lines.
void socket_peer_text(int fd, char* out, size_t size) {
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  std::snprintf(out, size, "?");
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) return;
  if (peer.ss_family == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&peer)->sin_addr, out, size);
  else if (peer.ss_family == AF_INET6)
    inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&peer)->sin6_addr, out, size);
}

// Counts how a preface of `listener` ended in that listener's stats (found by name: the
// stats live in the Registry by name, so a reload since the accept still finds them).
void count_result(Worker& w, const std::string& listener,
                  std::atomic<uint64_t> ListenerShard::*result) {
  for (const RuntimeListener& l : w.runtime()->listeners)
    if (l.name == listener) {
      (l.stats->local().*result).fetch_add(1, std::memory_order_relaxed);
      return;
    }
}

}  // namespace

ProxyPreface::ProxyPreface(Worker& worker, int fd, const std::string& listener, size_t index)
    : worker_(worker), fd_(fd), listener_(listener), index_(index) {}

void ProxyPreface::start(Worker& worker, int fd, const std::string& listener, size_t index) {
  const auto& rt = worker.runtime();
  const uint64_t max = rt->config.limits.max_connections;
  if (worker.state().connections.load() >= static_cast<int64_t>(max)) {
    // No reply is possible before the header (it may be TLS); the balancer sees a close.
    log_limited(
        "listener %s: connection refused before its PROXY header: max_connections (%llu) "
        "reached",
        listener.c_str(), static_cast<unsigned long long>(max));
    ::close(fd);
    return;
  }
  auto* p = new ProxyPreface(worker, fd, listener, index);
  worker.state().connections.fetch_add(1);
  worker.track_preface(p);
  uv_loop_t* loop = worker.loop();
  p->poll_.data = p;
  p->timer_.data = p;
  uv_timer_init(loop, &p->timer_);
  ++p->open_handles_;
  if (int rc = uv_poll_init_socket(loop, &p->poll_, fd); rc != 0) {
    log_limited("listener %s: cannot poll a client socket: %s", listener.c_str(), uv_strerror(rc));
    p->abort();
    return;
  }
  ++p->open_handles_;
  const uint64_t ms = rt->config.limits.header_timeout_ms;
  uv_timer_start(&p->timer_, &ProxyPreface::on_timeout, ms ? ms : kDefaultPrefaceMs, 0);
  uv_poll_start(&p->poll_, UV_READABLE, &ProxyPreface::on_readable);
  p->read_some();  // the header often arrives with the connection
}

// The worker is stopping (or the socket could not be polled): the header never came.
void ProxyPreface::abort() {
  if (!finished_) count_result(worker_, listener_, &ListenerShard::proxy_closed);
  finish(false, nullptr);
}

void ProxyPreface::on_readable(uv_poll_t* h, int status, int) {
  auto* p = static_cast<ProxyPreface*>(h->data);
  if (status != 0) {
    if (p->finished_) return;
    count_result(p->worker_, p->listener_, &ListenerShard::proxy_closed);
    p->finish(false, "socket error before the PROXY header");
    return;
  }
  p->read_some();
}

void ProxyPreface::on_timeout(uv_timer_t* t) {
  auto* p = static_cast<ProxyPreface*>(t->data);
  if (p->finished_) return;
  count_result(p->worker_, p->listener_, &ListenerShard::proxy_timeout);
  p->finish(false, "no complete PROXY header in time");
}

// Peeks at what has arrived after the header bytes already taken. need_more promises
// that none of it is past the header, so it is all taken (and a level-triggered poll does
// not wake again for the same bytes); ok takes exactly the rest of the header.
void ProxyPreface::read_some() {
  if (finished_) return;
  ssize_t n = ::recv(fd_, buf_ + have_, sizeof buf_ - have_, MSG_PEEK);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    count_result(worker_, listener_, &ListenerShard::proxy_closed);
    finish(false, "socket error before the PROXY header");
    return;
  }
  if (n == 0) {
    count_result(worker_, listener_, &ListenerShard::proxy_closed);
    finish(false, have_ ? "closed within the PROXY header" : "closed before the PROXY header");
    return;
  }
  const ProxyParse r = parse_proxy_header(buf_, have_ + static_cast<size_t>(n));
  if (r.status == ProxyStatus::bad) {
    count_result(worker_, listener_, &ListenerShard::proxy_bad);
    finish(false, r.error);
    return;
  }
  const size_t take = r.status == ProxyStatus::ok ? r.consumed - have_ : static_cast<size_t>(n);
  if (::recv(fd_, buf_ + have_, take, 0) != static_cast<ssize_t>(take)) {
    count_result(worker_, listener_, &ListenerShard::proxy_closed);
    finish(false, "socket error within the PROXY header");
    return;
  }
  have_ += take;
  if (r.status == ProxyStatus::need_more) return;
  if (!r.local) {
    std::memcpy(ip_, r.src, r.src_len);
    ip_len_ = r.src_len;
  }
  count_result(worker_, listener_, &ListenerShard::proxy_ok);
  finish(true, nullptr);
}

void ProxyPreface::finish(bool ok, const char* why) {
  if (finished_) return;
  finished_ = true;
  ok_ = ok;
  if (why) {
    char peer[INET6_ADDRSTRLEN];
    socket_peer_text(fd_, peer, sizeof peer);
    log_limited("listener %s: connection from %s closed: %s (proxy_protocol is on)",
                listener_.c_str(), peer, why);
  }
  uv_timer_stop(&timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &ProxyPreface::on_handle_closed);
  if (open_handles_ == 2) {
    uv_poll_stop(&poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_), &ProxyPreface::on_handle_closed);
  }
}

// libuv allows one handle per descriptor: the stream is made only once the poll is gone.
void ProxyPreface::on_handle_closed(uv_handle_t* h) {
  auto* p = static_cast<ProxyPreface*>(h->data);
  if (--p->open_handles_ == 0) p->done();
}

void ProxyPreface::done() {
  Worker& w = worker_;
  w.state().connections.fetch_sub(1);
  const bool adopt = ok_ && !w.stopping();
  const int fd = fd_;
  uint8_t ip[16];
  std::memcpy(ip, ip_, sizeof ip);
  const size_t ip_len = ip_len_;
  const std::string listener = listener_;
  const size_t index = index_;
  w.untrack_preface(this);
  delete this;
  if (adopt)
    w.adopt_client(fd, listener, index, ip_len ? ip : nullptr, ip_len);
  else
    ::close(fd);
}

}  // namespace lb::net
