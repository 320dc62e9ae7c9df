#include "lb/http/ws_frame.h"

#include <cstring>

namespace lb::http {

WsParse parse_ws_header(std::string_view data, WsFrameHeader& out) {
  if (data.size() < 2) return WsParse::need_more;
  auto b = reinterpret_cast<const uint8_t*>(data.data());
  out.fin = (b[0] & 0x80) != 0;
  out.rsv = static_cast<uint8_t>((b[0] >> 4) & 0x7);
  out.opcode = b[0] & 0x0F;
  out.masked = (b[1] & 0x80) != 0;
  uint64_t len = b[1] & 0x7F;
  size_t pos = 2;
  if (len == 126) {
    if (data.size() < 4) return WsParse::need_more;
    len = (uint64_t{b[2]} << 8) | b[3];
    if (len < 126) return WsParse::error;
    pos = 4;
  } else if (len == 127) {
    if (data.size() < 10) return WsParse::need_more;
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | b[2 + i];
    if (len >> 63) return WsParse::error;
    if (len <= 0xFFFF) return WsParse::error;
    pos = 10;
  }
  bool control = (out.opcode & 0x8) != 0;
  if (control && (!out.fin || len > 125)) return WsParse::error;
  if (out.masked) {
    if (data.size() < pos + 4) return WsParse::need_more;
    std::memcpy(out.mask, b + pos, 4);
    pos += 4;
  }
  out.payload_len = len;
  out.header_len = pos;
  return WsParse::ok;
}

size_t write_ws_header(uint8_t* out, bool fin, uint8_t opcode, uint64_t len, const uint8_t* mask) {
  out[0] = static_cast<uint8_t>((fin ? 0x80 : 0) | (opcode & 0x0F));
  uint8_t m = mask ? 0x80 : 0;
  size_t pos;
  if (len < 126) {
    out[1] = static_cast<uint8_t>(m | len);
    pos = 2;
  } else if (len <= 0xFFFF) {
    out[1] = m | 126;
    out[2] = static_cast<uint8_t>(len >> 8);
    out[3] = static_cast<uint8_t>(len);
    pos = 4;
  } else {
    out[1] = m | 127;
    for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<uint8_t>(len >> (56 - 8 * i));
    pos = 10;
  }
  if (mask) {
    std::memcpy(out + pos, mask, 4);
    pos += 4;
  }
  return pos;
}

size_t write_ws_close(uint8_t* out, uint16_t code, std::string_view reason) {
  if (reason.size() > 123) reason = reason.substr(0, 123);
  size_t pos = write_ws_header(out, true, ws_close, 2 + reason.size());
  out[pos++] = static_cast<uint8_t>(code >> 8);
  out[pos++] = static_cast<uint8_t>(code);
  if (!reason.empty()) std::memcpy(out + pos, reason.data(), reason.size());  // data() may be null
  return pos + reason.size();
}

void ws_apply_mask(char* data, size_t n, const uint8_t mask[4], uint64_t offset) {
  for (size_t i = 0; i < n; ++i) data[i] = static_cast<char>(data[i] ^ mask[(offset + i) & 3]);
}

size_t WsFrameTracker::feed(std::string_view data, bool stop_at_boundary) {
  size_t pos = 0;
  while (pos < data.size()) {
    if (failed_) return data.size();
    if (stop_at_boundary && at_boundary()) return pos;
    if (remaining_ > 0) {
      uint64_t take = data.size() - pos;
      if (take > remaining_) take = remaining_;
      remaining_ -= take;
      pos += static_cast<size_t>(take);
      continue;
    }
    // Header bytes, one at a time into the small array: a header may straddle reads.
    hdr_[hdr_len_++] = static_cast<uint8_t>(data[pos++]);
    WsFrameHeader h;
    WsParse r = parse_ws_header({reinterpret_cast<const char*>(hdr_), hdr_len_}, h);
    if (r == WsParse::need_more) continue;
    hdr_len_ = 0;
    if (r == WsParse::error) {
      failed_ = true;
      continue;
    }
    ++frames_;
    if (h.opcode == ws_close) saw_close_ = true;
    remaining_ = h.payload_len;
  }
  return pos;
}

}  // namespace lb::http
