#pragma once
// Writes to a libuv stream without a heap allocation per write: try_write first (the
// common case on loopback and LAN drains at once), copy only the part the kernel did not
// take into a staging buffer, and keep one uv_write in flight from a second buffer.
// Both buffers keep their capacity, so a steady stream allocates nothing. pending() is
// what the other side's reader looks at for backpressure.
#include <uv.h>

#include <cstddef>
#include <functional>
#include <string_view>
#include <vector>

namespace lb::net {

class WriteQueue {
 public:
  // on_drained: called when pending() drops to zero after having been non-zero.
  // on_error: a write failed (peer gone); the owner closes the stream.
  WriteQueue(uv_stream_t* stream, void* owner, void (*on_drained)(void*),
             void (*on_error)(void*, int));
  WriteQueue(const WriteQueue&) = delete;
  WriteQueue& operator=(const WriteQueue&) = delete;

  // Queues the buffers in order. Returns false if the stream already failed.
  bool write(const uv_buf_t* bufs, unsigned nbufs);
  bool write(std::string_view a, std::string_view b = {});
  size_t pending() const { return staging_.size() + inflight_.size(); }
  bool idle() const { return pending() == 0; }
  // Drops everything queued (before closing the stream).
  void discard();

 private:
  static void on_write(uv_write_t* req, int status);
  void flush();

  uv_stream_t* stream_;
  void* owner_;
  void (*on_drained_)(void*);
  void (*on_error_)(void*, int);
  std::vector<char> staging_;
  std::vector<char> inflight_;
  uv_write_t req_{};
  bool writing_ = false;
  bool failed_ = false;
};

}  // namespace lb::net
