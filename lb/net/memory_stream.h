#pragma once
// The in-memory implementation of the Stream seam, for tests: the test plays the peer
// (pushes bytes, a FIN or an error, answers a connect) and reads what the connection
// wrote, without sockets. Input goes through the same pooled buffers as TcpStream, and a
// close is finished only by settle(), as libuv finishes closes in a later loop turn.
#include <memory>
#include <string>
#include <vector>

#include "lb/net/stream.h"

namespace lb::net {

class MemoryStream;

// What the test keeps: it outlives the stream, so a closed connection can be inspected.
struct MemoryPeer {
  MemoryStream* stream = nullptr;  // null once the stream is gone
  std::string written;             // every byte the connection wrote
  bool connect_started = false;
  sockaddr_storage connected_to{};
  bool shut = false;    // the connection sent FIN
  bool closed = false;  // the connection closed its side
  // A slow reader: while set, writes wait in `held` (the stream's pending()) until
  // release() takes them and tells the connection its output drained.
  bool stalled = false;
  std::string held;

  // The peer sends bytes / a FIN / a failure; delivered while the connection reads.
  void send(std::string_view bytes);
  void send_eof();
  void fail(int error);
  // Answers the connection's connect(): 0 connected, or a libuv error (UV_ECONNREFUSED).
  void answer_connect(int status = 0);
  // Takes what the connection wrote so far.
  std::string take();
  // Un-stalls: what was held counts as written, and the connection hears on_drained.
  void release();
  // A reader at its own pace: takes `n` held bytes and stays stalled; the connection hears
  // on_drained only when nothing is left held (as a real stream: only when empty).
  void read_some(size_t n);
};

class MemoryStream final : public Stream {
 public:
  MemoryStream(BufferPool& pool, std::shared_ptr<MemoryPeer> peer);
  ~MemoryStream() override;

  int connect(const sockaddr* addr) override;
  void read_start() override;
  void read_stop() override { reading_ = false; }
  bool reading() const override { return reading_; }
  using Stream::write;
  bool write(const std::string_view* parts, size_t n) override;
  // The peer takes everything at once, unless it is stalled.
  size_t pending() const override { return peer_->held.size(); }
  void shutdown() override;
  void close() override;

  // Finishes every close() so far (handlers hear on_closed, which may free them).
  static void settle();

 private:
  friend struct MemoryPeer;
  void deliver();

  std::shared_ptr<MemoryPeer> peer_;
  std::string queued_;  // sent by the peer, not yet read
  bool eof_queued_ = false;
  bool reading_ = false;
  bool delivering_ = false;
  bool closing_ = false;
  bool failed_ = false;
};

}  // namespace lb::net
