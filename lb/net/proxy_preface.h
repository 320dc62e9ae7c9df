#pragma once
// The PROXY protocol preface of a connection on a `proxy_protocol: true` listener: the
// header an L4 balancer sends before the client's first byte. It is read on the bare
// descriptor, before any TcpStream or TlsStream exists, taking exactly the header's bytes
// from the socket (a TLS ClientHello that follows in the same segment stays there). Then
// the worker adopts the connection with the header's source address as the client's. A
// bad or missing header (or none within limits.header_timeout) closes the connection
// without a reply: the protocol has none, and the peer may not even speak HTTP.
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "lb/core/proxy_header.h"

namespace lb::net {

class Worker;

class ProxyPreface {
 public:
  // Starts reading the header of `fd` (accepted, non-blocking; owned from now on) for the
  // listener `listener` (index `index` in the worker's runtime). Counts the connection in
  // state.connections while the header is awaited.
  static void start(Worker& worker, int fd, const std::string& listener, size_t index);
  // Closes the connection now (the worker is stopping).
  void abort();

  size_t track_index = 0;  // in Worker's list

 private:
  ProxyPreface(Worker& worker, int fd, const std::string& listener, size_t index);
  ProxyPreface(const ProxyPreface&) = delete;
  ProxyPreface& operator=(const ProxyPreface&) = delete;
  static void on_readable(uv_poll_t* p, int status, int events);
  static void on_timeout(uv_timer_t* t);
  static void on_handle_closed(uv_handle_t* h);
  void read_some();
  // Ends the preface: the connection goes to the worker (ok) or is closed, logged with why.
  void finish(bool ok, const char* why);
  void done();

  Worker& worker_;
  int fd_;
  std::string listener_;
  size_t index_;
  uv_poll_t poll_{};
  uv_timer_t timer_{};
  int open_handles_ = 0;
  bool finished_ = false;
  bool ok_ = false;
  uint8_t ip_[16]{};
  size_t ip_len_ = 0;  // 0: the socket's own peer (LOCAL, UNKNOWN)
  size_t have_ = 0;    // header bytes taken from the socket so far
  uint8_t buf_[kProxyHeaderMax];
};

}  // namespace lb::net
