#pragma once
// The server side of WebSocket framing (RFC 6455 §5) for the simulated Ogmios: a reader
// that unmasks client frames, reassembles fragmented messages and reports control frames,
// and writers for the (unmasked) frames a server sends. Frame headers come from
// lb/http/ws_frame. Pure.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

struct WsEvent {
  enum class Kind : uint8_t { text, binary, ping, pong, close, error };
  Kind kind = Kind::text;
  // A message's payload (fragments joined), a ping's or pong's payload, a close's reason,
  // or for an error what was wrong.
  std::string payload;
  // close: the peer's code (1005 when its close frame had none); error: the code to close
  // the connection with (1002 protocol error, 1009 message too big).
  uint16_t code = 0;
  size_t fragments = 0;  // text/binary: how many frames the message came in
};

// Reads what a client sends. Holds bytes only while a frame or a fragmented message is
// incomplete: an idle connection's reader owns no heap memory.
class WsReader {
 public:
  explicit WsReader(size_t max_message = 16u << 20) : max_message_(max_message) {}

  // Consumes `data`, appending every event completed by it to `out`. After an error event
  // (unmasked frame, reserved bits or opcodes, a bad continuation, a bad close payload, a
  // message over max_message) the reader stops and ignores further bytes.
  void feed(std::string_view data, std::vector<WsEvent>& out);
  bool failed() const { return failed_; }
  // Heap bytes held (partial frame plus partial message).
  size_t held_bytes() const { return heap_of(pending_) + heap_of(message_); }

 private:
  // A string's heap allocation: none while it fits its inline (small string) buffer.
  static size_t heap_of(const std::string& s) {
    return s.capacity() > std::string().capacity() ? s.capacity() : 0;
  }
  // Handles one whole frame; false after an error event.
  bool on_frame(uint8_t opcode, bool fin, std::string payload, std::vector<WsEvent>& out);
  void fail(uint16_t code, std::string why, std::vector<WsEvent>& out);

  size_t max_message_;
  std::string pending_;         // bytes of a frame not yet whole
  std::string message_;         // fragments of a message so far
  uint8_t message_opcode_ = 0;  // text or binary while a fragmented message is open, else 0
  size_t fragments_ = 0;
  bool failed_ = false;
};

// True for a close code a peer may send on the wire (RFC 6455 §7.4: 1000-1003, 1007-1014,
// 3000-4999).
bool ws_close_code_valid(uint16_t code);

// One unmasked frame from the server: header and payload.
std::string ws_server_frame(uint8_t opcode, std::string_view payload, bool fin = true);

// `message` as `pieces` frames (a first text/binary frame, then continuations), each a
// nearly equal share; pieces is clamped to 1..max(1, size).
std::string ws_server_fragments(uint8_t opcode, std::string_view message, size_t pieces);

// A close frame: the code and a reason cut to fit 125 bytes; code 0 sends an empty close.
std::string ws_server_close(uint16_t code, std::string_view reason = {});

}  // namespace bench
