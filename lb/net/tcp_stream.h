#pragma once
// A Stream over a libuv TCP handle. Reads land in a pooled buffer taken when the kernel
// has bytes (libuv asks for it only then), writes go out with uv_try_write first and only
// what the kernel did not take is copied into pooled buffers, flushed with one uv_write
// at a time. A quiet connection holds the handle and a few words, nothing else.
#include <uv.h>

#include "lb/net/stream.h"

namespace lb::net {

class TcpStream final : public Stream {
 public:
  TcpStream(uv_loop_t* loop, BufferPool& pool);
  ~TcpStream() override;

  uv_tcp_t* tcp() { return &tcp_; }
  int connect(const sockaddr* addr) override;
  uint64_t sent() const override;

  void read_start() override;
  void read_stop() override;
  bool reading() const override { return reading_; }
  using Stream::write;
  bool write(const std::string_view* parts, size_t n) override;
  size_t pending() const override { return pending_; }
  void shutdown() override;
  void close() override;
  bool closing() const { return closing_; }

 private:
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_shutdown(uv_shutdown_t* req, int status);
  static void on_close(uv_handle_t* h);
  static void on_connect(uv_connect_t* req, int status);
  void append(const char* p, size_t n);
  void flush();
  void fail(int error);
  void drop_output();

  uv_tcp_t tcp_{};
  Buffer* out_head_ = nullptr;  // queued bytes, oldest first
  Buffer* out_tail_ = nullptr;
  Buffer* inflight_last_ = nullptr;  // last buffer of the uv_write in flight
  size_t inflight_bytes_ = 0;        // bytes of that write
  size_t pending_ = 0;
  bool reading_ = false;
  bool writing_ = false;
  bool failed_ = false;
  bool closing_ = false;
  bool shutdown_wanted_ = false;
};

}  // namespace lb::net
