#include "lb/net/worker.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "lb/net/client_conn.h"
#include "lb/net/log.h"
#include "lb/net/socket_address.h"
#include "lb/net/tcp_stream.h"

namespace lb::net {

struct Worker::Listener {
  uv_tcp_t tcp{};
  Worker* worker = nullptr;
  std::string name;
  size_t index = 0;  // in the runtime's listeners
};

bool bind_reuseport(const std::string& host, uint16_t port, int backlog, size_t count,
                    std::vector<int>& fds, uint16_t& bound_port, std::string& error) {
  sockaddr_storage addr;
  if (!ip_sockaddr(host, port, addr)) {
    error = "listen address must be an IP literal: " + host;
    return false;
  }
  bound_port = port;
  for (size_t i = 0; i < count; ++i) {
    int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0) {
      error = std::string("socket: ") + strerror(errno);
      return false;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (addr.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    // Every worker's socket binds the port the first one got (port 0 = ephemeral).
    set_port(addr, bound_port);
    socklen_t len = sockaddr_len(addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, backlog) != 0) {
      error = "bind " + host + ":" + std::to_string(bound_port) + ": " + strerror(errno);
      ::close(fd);
      return false;
    }
    if (i == 0) {
      sockaddr_storage got{};
      socklen_t glen = sizeof got;
      getsockname(fd, reinterpret_cast<sockaddr*>(&got), &glen);
      bound_port = port_of(got);
    }
    fds.push_back(fd);
  }
  return true;
}

Worker::Worker(ProxyState& state, unsigned index)
    : state_(state),
      index_(index),
      buffers_(state.buffers, state.runtime.load()->config.limits.buffer_bytes),
      deadlines_((uv_loop_init(&loop_), &loop_)) {
  uv_async_init(&loop_, &async_, &Worker::on_async);
  uv_timer_init(&loop_, &deadline_);
  async_.data = this;
  deadline_.data = this;
  runtime_ = state_.runtime.load();
  state_.buffers.limit = runtime_->config.limits.max_buffer_memory;
}

Worker::~Worker() {
  join();
  uv_loop_close(&loop_);
}

void Worker::open_listener(BoundSocket s) {
  auto l = std::make_unique<Listener>();
  l->worker = this;
  l->name = s.listener;
  for (size_t i = 0; i < runtime_->listeners.size(); ++i)
    if (runtime_->listeners[i].name == s.listener) l->index = i;
  uv_tcp_init(&loop_, &l->tcp);
  l->tcp.data = l.get();
  uv_tcp_open(&l->tcp, s.fd);
  uv_listen(reinterpret_cast<uv_stream_t*>(&l->tcp), 1024, &Worker::on_connection);
  listeners_.push_back(std::move(l));
}

void Worker::close_listener(const std::string& name) {
  for (auto it = listeners_.begin(); it != listeners_.end(); ++it) {
    if ((*it)->name != name) continue;
    // The handle's memory goes in its close callback.
    Listener* l = it->release();
    listeners_.erase(it);
    uv_close(reinterpret_cast<uv_handle_t*>(&l->tcp),
             [](uv_handle_t* h) { delete static_cast<Listener*>(h->data); });
    return;
  }
}

void Worker::start(std::vector<BoundSocket> sockets) {
  for (BoundSocket& s : sockets) open_listener(std::move(s));
  thread_ = std::thread([this] {
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
  if (w->stop_requested_ && !w->stopping_) w->begin_stop();
}

void Worker::on_connection(uv_stream_t* server, int status) {
  auto* l = static_cast<Listener*>(server->data);
  if (status != 0) {
    logf(LogLevel::warn, "listener %s: accept: %s", l->name.c_str(), uv_strerror(status));
    return;
  }
  Worker* w = l->worker;
  // The listener's index can move when a reload reorders listeners.
  const auto& ls = w->runtime_->listeners;
  if (l->index >= ls.size() || ls[l->index].name != l->name)
    for (size_t i = 0; i < ls.size(); ++i)
      if (ls[i].name == l->name) l->index = i;
  ClientConn::accept(*w, server, l->index);
}

std::unique_ptr<Stream> Worker::make_stream() {
  if (stream_factory_) return stream_factory_();
  return std::make_unique<TcpStream>(&loop_, buffers_);
}

void Worker::track(ClientConn* c) {
  c->track_index = conns_.size();
  conns_.push_back(c);
}

void Worker::untrack(ClientConn* c) {
  size_t i = c->track_index;
  if (i < conns_.size() && conns_[i] == c) {
    conns_[i] = conns_.back();
    conns_[i]->track_index = i;
    conns_.pop_back();
  }
  if (stopping_) maybe_finish_stop();
}

void Worker::begin_stop() {
  stopping_ = true;
  while (!listeners_.empty()) close_listener(listeners_.front()->name);
  upstreams_.close_all();
  std::vector<ClientConn*> conns = conns_;
  for (ClientConn* c : conns) c->stop_gracefully();
  uv_timer_start(&deadline_, &Worker::on_deadline, stop_deadline_ms_.load(), 0);
  maybe_finish_stop();
}

void Worker::maybe_finish_stop() {
  if (!conns_.empty() || async_closed_) return;
  async_closed_ = true;
  upstreams_.close_all();
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&deadline_), nullptr);
  deadlines_.close();
}

void Worker::on_deadline(uv_timer_t* t) {
  auto* w = static_cast<Worker*>(t->data);
  if (!w->conns_.empty())
    logf(LogLevel::warn, "worker %u: stop deadline passed, closing %zu connections", w->index_,
         w->conns_.size());
  std::vector<ClientConn*> conns = w->conns_;
  for (ClientConn* c : conns) c->close();
}

}  // namespace lb::net
