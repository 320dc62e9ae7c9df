#pragma once
// WebSocket framing (RFC 6455 §5.2), only as much as corral needs: frame headers read to
// follow frame boundaries in a tunnel (payloads are never copied or unmasked here), and
// frame headers written (a close frame injected by corral; the simulated Ogmios and the
// load tool). Pure.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace lb::http {

enum WsOpcode : uint8_t {
  ws_continuation = 0x0,
  ws_text = 0x1,
  ws_binary = 0x2,
  ws_close = 0x8,
  ws_ping = 0x9,
  ws_pong = 0xA,
};

// Close codes corral sends (RFC 6455 §7.4.1, IANA registry).
inline constexpr uint16_t kWsGoingAway = 1001;       // corral shuts down, or the tunnel idled out
inline constexpr uint16_t kWsServiceRestart = 1012;  // the tunnel's backend went away

inline constexpr size_t kWsMaxHeader = 14;  // 2 + 8 (length) + 4 (mask)

struct WsFrameHeader {
  bool fin = false;
  uint8_t rsv = 0;  // the three reserved bits (extensions such as permessage-deflate)
  uint8_t opcode = 0;
  bool masked = false;
  uint8_t mask[4]{};
  uint64_t payload_len = 0;
  size_t header_len = 0;  // bytes of the header itself
};

enum class WsParse : uint8_t { ok, need_more, error };

// Reads the frame header at the start of `data`. error: a length with its most
// significant bit set, a length not in its shortest form, or a control frame that is
// fragmented or longer than 125 bytes (RFC 6455 §5.2, §5.5).
WsParse parse_ws_header(std::string_view data, WsFrameHeader& out);

// Writes a frame header for a payload of `len` bytes (masked when `mask` is given) into
// `out` (at least kWsMaxHeader bytes); returns its length.
size_t write_ws_header(uint8_t* out, bool fin, uint8_t opcode, uint64_t len,
                       const uint8_t* mask = nullptr);

// A whole unmasked close frame (server to client): code and a reason cut to 123 bytes.
// `out` holds at least 2 + 125 bytes; returns the frame's length.
size_t write_ws_close(uint8_t* out, uint16_t code, std::string_view reason);

// XORs `n` bytes with the mask, `offset` bytes into the payload.
void ws_apply_mask(char* data, size_t n, const uint8_t mask[4], uint64_t offset = 0);

// Follows frame boundaries in one direction of a tunnel, headers only: payload bytes are
// counted, never looked at. Between two frames (at_boundary) a frame of our own may be
// written without cutting one in half; control frames may go between the fragments of a
// message (RFC 6455 §5.4), so a frame boundary is enough.
class WsFrameTracker {
 public:
  // Walks the next bytes of the stream; with stop_at_boundary, stops at the first frame
  // boundary reached (at once if at one already). Returns the bytes walked: the rest are
  // after that boundary. After an error it walks everything and never reports a boundary.
  size_t feed(std::string_view data, bool stop_at_boundary = false);
  bool at_boundary() const { return !failed_ && hdr_len_ == 0 && remaining_ == 0; }
  // The stream is not WebSocket framing we can follow: no frame of ours may be added.
  bool failed() const { return failed_; }
  // A close frame has started in this direction (the peer is closing).
  bool saw_close() const { return saw_close_; }
  uint64_t frames() const { return frames_; }

 private:
  uint8_t hdr_[kWsMaxHeader]{};
  uint8_t hdr_len_ = 0;
  bool failed_ = false;
  bool saw_close_ = false;
  uint64_t remaining_ = 0;  // payload bytes left of the current frame
  uint64_t frames_ = 0;
};

}  // namespace lb::http
