#pragma once
// The stream seam: connection code reads and writes through this one interface, which
// plain TCP (TcpStream), TLS (TlsStream, over a plain one) and an in-memory double for tests
// (MemoryStream) implement; a tunnel joins two of them. Input arrives into a buffer taken on demand
// from the worker's BufferPool and given back as soon as it is consumed, so a quiet
// stream holds no buffer (unread bytes wait in the kernel).
#include <sys/socket.h>

#include <cstddef>
#include <string_view>

#include "lb/net/buffer_pool.h"

namespace lb::net {

class Stream;

class StreamHandler {
 public:
  // New bytes are in stream.input() (or the input is full and reading stopped).
  virtual void on_readable(Stream& s) = 0;
  // The peer will send nothing more (FIN).
  virtual void on_eof(Stream& s) = 0;
  // Reading or writing failed (reset, broken pipe); the stream is unusable.
  virtual void on_stream_error(Stream& s, int error) = 0;
  // Every queued byte has been written.
  virtual void on_drained(Stream& s) = 0;
  // close() finished: the stream's memory may go now.
  virtual void on_closed(Stream& s) = 0;
  // connect() finished: status 0, or a libuv error code.
  virtual void on_connected(Stream& s, int status) { (void)s, (void)status; }

 protected:
  ~StreamHandler() = default;
};

class Stream {
 public:
  explicit Stream(BufferPool& pool) : pool_(&pool) {}
  virtual ~Stream() { drop_input(); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  void set_handler(StreamHandler* h) { handler_ = h; }
  StreamHandler* handler() const { return handler_; }

  // Starts connecting to addr (an upstream); the handler hears on_connected. Returns 0 or
  // a libuv error code (e.g. UV_EMFILE) when it could not even start.
  virtual int connect(const sockaddr* addr) = 0;

  // Reading on or off (backpressure). Off leaves further bytes in the kernel.
  virtual void read_start() = 0;
  virtual void read_stop() = 0;
  virtual bool reading() const = 0;

  // Unconsumed input, contiguous.
  std::string_view input() const {
    return in_ ? std::string_view(in_->begin(), in_->size()) : std::string_view();
  }
  // Drops the first n input bytes; the buffer goes back to the pool once empty, unless
  // held.
  void consume(size_t n);
  // While held, consumed bytes stay where they are (views into a half-parsed head point
  // at them): the buffer is neither moved nor given back.
  void hold_input(bool on);
  // Moves unconsumed input to the buffer's start so a new head can use the whole buffer
  // (not while held).
  void compact_input();
  // No room left for more input (only while held, or a full unconsumed buffer).
  bool input_full() const { return in_ && in_->room() == 0 && (held_ || in_->start == 0); }
  bool has_input() const { return in_ && !in_->empty(); }
  bool holds_buffer() const { return in_ != nullptr; }
  // Gives the input buffer back whatever it holds (closing).
  void drop_input();

  // Queues bytes in order (copied unless written at once). False if the stream failed.
  // Never calls the handler: a failure is reported later, from the loop.
  virtual bool write(const std::string_view* parts, size_t n) = 0;
  bool write(std::string_view a, std::string_view b = {}, std::string_view c = {}) {
    std::string_view parts[3] = {a, b, c};
    return write(parts, c.empty() ? (b.empty() ? 1 : 2) : 3);
  }
  // Bytes queued and not yet written.
  virtual size_t pending() const = 0;
  bool idle() const { return pending() == 0; }
  // Sends FIN after the queued bytes.
  virtual void shutdown() = 0;
  // Closes; the handler hears on_closed when the memory may be freed.
  virtual void close() = 0;

  // The process is at its buffer budget: reading stopped for want of a buffer; the owner
  // calls retry_read() a moment later.
  bool starved() const { return starved_; }
  void retry_read() {
    if (starved_) read_start();
  }

  // Bytes the peer has taken so far, partial writes included: two readings tell a slow
  // reader (send_timeout) from one that stopped.
  virtual uint64_t sent() const { return sent_; }

  // The failure reported was a write's: the peer did not take all the bytes sent to it.
  bool write_failed() const { return write_failed_; }
  // A handshake is under way (TLS): no request can have started, but the connection is not
  // idle either, so it runs under the header deadline.
  virtual bool handshaking() const { return false; }

  BufferPool& pool() const { return *pool_; }
  // Reads of this stream are never refused by the buffer budget (an upstream answering a
  // request already admitted); the budget pauses client intake instead.
  void set_exempt(bool on) { exempt_ = on; }

 protected:
  // Where the next read goes: room at the end of the input buffer, taking one if needed.
  // Empty when the process is at its buffer budget or the buffer is full.
  char* read_space(size_t& len);
  void commit_read(size_t n) { in_->end += n; }

  BufferPool* pool_;
  StreamHandler* handler_ = nullptr;
  Buffer* in_ = nullptr;
  uint64_t sent_ = 0;
  bool held_ = false;
  bool exempt_ = false;
  bool starved_ = false;
  bool write_failed_ = false;
};

}  // namespace lb::net
