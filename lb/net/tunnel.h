#pragma once
// A WebSocket tunnel: after a backend's 101, the client's stream and the backend's stream
// joined, bytes copied each way with backpressure (a side stops reading while the other
// side's queue is full), half-closes passed on, and no buffer held while nothing moves.
// Frames are not parsed, except that the backend-to-client direction is followed header
// by header (lb/http/ws_frame's tracker) so that corral can put a close frame of its own
// between two frames: 1012 when the backend goes down, is removed, or drops the
// connection without closing the WebSocket; 1001 on shutdown or after
// limits.tunnel_idle_timeout without a byte either way. Never 1000: clients such as
// cardano-js-sdk end for good on 1000, and reconnect on anything else.
// Three more deadlines keep a stuck tunnel from holding sockets and buffers: a side that
// takes none of its queued bytes for limits.send_timeout, a half-closed tunnel whose other
// side does not finish within kHalfCloseMs, and the close handshake (kCloseLingerMs).
#include <cstdint>
#include <memory>

#include "lb/core/backend_ref.h"
#include "lb/core/session_key.h"
#include "lb/http/ws_frame.h"
#include "lb/net/access_log.h"
#include "lb/net/backend_stats.h"
#include "lb/net/deadlines.h"
#include "lb/net/stream.h"

namespace lb::net {

class Worker;
struct Runtime;

struct TunnelSetup {
  BackendRef backend = 0;
  std::shared_ptr<BackendStats> stats;      // the backend's counters
  std::shared_ptr<ListenerStats> listener;  // the client connection's listener
  SessionKey pin_key;
  bool pinned = false;  // the user has a key: a 1012 records the slot it last saw
  uint64_t idle_ms = 0;
  uint64_t send_ms = 0;  // limits.send_timeout
  // The access log's line (log.access), written when the tunnel closes; null when off.
  std::unique_ptr<OwnedAccessRecord> access;
};

class Tunnel {
 public:
  // Joins the streams (bytes already read on either side go through first) and takes
  // over the client connection's place in the connection counts.
  static Tunnel* open(Worker& worker, std::unique_ptr<Stream> client,
                      std::unique_ptr<Stream> backend, TunnelSetup setup);

  // Ends the tunnel with a close frame to the client at the next frame boundary (at once
  // if between frames); the backend side is closed. Once per tunnel; a tunnel already
  // closing (the backend sent its close frame, or a side hung up) just ends, since a
  // second close frame is not allowed. fast: the stop deadline passed, so the frame wait
  // and the linger are short.
  void close_with(uint16_t code, const char* reason, bool fast = false);
  // Why the tunnel's backend is gone (down, or not in `rt` any more after a reload), or
  // nullptr while it is there.
  const char* backend_gone(const Runtime& rt) const;
  BackendRef backend() const { return setup_.backend; }

  size_t track_index = 0;  // position in the worker's tunnel list

 private:
  // One end of the tunnel; the handler of its stream.
  struct Side final : StreamHandler {
    Tunnel* t = nullptr;
    std::unique_ptr<Stream> s;
    bool eof = false;
    bool closed = false;
    // send_timeout: the stream's sent() count when its queued bytes were last seen
    // moving, and when they must have moved again (0: nothing queued).
    uint64_t send_mark = 0;
    uint64_t send_due_ms = 0;
    void on_readable(Stream&) override { t->readable(*this); }
    void on_eof(Stream&) override { t->eof(*this); }
    void on_stream_error(Stream&, int) override { t->failed(*this); }
    void on_drained(Stream&) override { t->drained(*this); }
    void on_closed(Stream&) override { t->side_closed(*this); }
  };

  Tunnel(Worker& worker, std::unique_ptr<Stream> client, std::unique_ptr<Stream> backend,
         TunnelSetup setup);
  ~Tunnel();
  Side& other(Side& s) { return &s == &client_ ? backend_ : client_; }
  void readable(Side& from);
  void pump(Side& from);
  void eof(Side& from);
  void failed(Side& from);
  void drained(Side& to);
  void side_closed(Side& s);
  void update_reading(Side& s);
  bool forward(Side& to, std::string_view bytes);
  void send_close();
  void finish_if_done();
  void half_closed();
  void close_all();
  void schedule();
  bool stalled(Side& s, uint64_t now);
  static void on_deadline(void* self);

  Worker& worker_;
  TunnelSetup setup_;
  Side client_, backend_;
  http::WsFrameTracker to_client_;  // frames the backend sends
  Deadlines::Entry deadline_;
  uint64_t last_active_ms_ = 0;
  uint64_t close_due_ms_ = 0;  // a close or a half-close under way: when it gives up
  uint64_t close_mark_ = 0;    // client's sent() when close_due_ms_ was set
  uint64_t frame_wait_ms_ = 0;
  uint64_t linger_ms_ = 0;
  uint16_t close_code_ = 0;  // a close frame wanted (0: none)
  const char* close_reason_ = "";
  uint64_t bytes_to_client_ = 0, bytes_to_backend_ = 0;  // for the access log
  bool close_sent_ = false;
  bool closing_ = false;
};

}  // namespace lb::net
