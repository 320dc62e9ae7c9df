#include "lb/net/http_server.h"

#include <utility>

#include "lb/net/http_server_conn.h"
#include "lb/net/socket_address.h"

namespace lb::net {

// ---- HttpServerCore ----

void HttpServerCore::close(std::function<void()> cb) {
  if (cb) done.push_back(std::move(cb));
  closing = true;
  if (listener_open && !listener_closing) {
    listener_closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&listener), &HttpServerCore::on_listener_closed);
  }
  for (auto& [raw, conn] : conns) conn->close_now(false);
  maybe_done();
}

void HttpServerCore::maybe_done() {
  if (!closing || listener_open || !conns.empty() || done.empty()) return;
  std::vector<std::function<void()>> callbacks;
  callbacks.swap(done);
  for (auto& cb : callbacks) cb();
}

void HttpServerCore::on_connection(uv_stream_t* server, int status) {
  auto* core = static_cast<HttpServerCore*>(server->data);
  if (status < 0 || core->closing) return;
  auto conn = std::make_shared<ServerConnection>(core->shared_from_this());
  // Counted before this one joins: connections still closing count too, since they hold
  // their descriptors until their close callbacks run.
  const bool over =
      core->options.max_connections != 0 && core->conns.size() >= core->options.max_connections;
  core->conns.emplace(conn.get(), conn);
  conn->start(server);
  if (over) conn->refuse(503, "too many connections");
}

void HttpServerCore::on_listener_closed(uv_handle_t* h) {
  auto* core = static_cast<HttpServerCore*>(h->data);
  std::shared_ptr<HttpServerCore> keep = std::move(core->self);
  core->listener_open = false;
  core->maybe_done();
}

// ---- HttpServer ----

struct HttpServer::Impl {
  std::shared_ptr<HttpServerCore> core;
};

HttpServer::HttpServer(uv_loop_t* loop, Handler handler, ServerOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->core = std::make_shared<HttpServerCore>();
  impl_->core->loop = loop;
  impl_->core->handler = std::move(handler);
  impl_->core->options = options;
}

HttpServer::~HttpServer() {
  if (impl_ && impl_->core) impl_->core->close({});
}

int HttpServer::listen(const std::string& host, uint16_t port) {
  HttpServerCore& c = *impl_->core;
  if (c.listener_open || c.closing) return UV_EINVAL;
  sockaddr_storage ss;
  int r = ip_sockaddr(host, port, ss) ? 0 : UV_EINVAL;
  if (r != 0) return r;
  r = uv_tcp_init(c.loop, &c.listener);
  if (r != 0) return r;
  c.listener.data = &c;
  c.listener_open = true;
  c.self = c.shared_from_this();
  r = uv_tcp_bind(&c.listener, reinterpret_cast<const sockaddr*>(&ss), 0);
  if (r == 0)
    r = uv_listen(reinterpret_cast<uv_stream_t*>(&c.listener), SOMAXCONN,
                  &HttpServerCore::on_connection);
  if (r != 0) {
    c.listener_closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&c.listener), &HttpServerCore::on_listener_closed);
  }
  return r;
}

uint16_t HttpServer::port() const {
  const HttpServerCore& c = *impl_->core;
  if (!c.listener_open || c.listener_closing) return 0;
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getsockname(&c.listener, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  return port_of(ss);
}

void HttpServer::set_upgrade_handler(Handler h) { impl_->core->upgrade_handler = std::move(h); }

void HttpServer::close(std::function<void()> done) { impl_->core->close(std::move(done)); }

}  // namespace lb::net
