#include "bench/sim/ws_codec.h"

#include <algorithm>

#include "lb/http/ws_frame.h"

namespace bench {

using namespace lb::http;

bool ws_close_code_valid(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

void WsReader::fail(uint16_t code, std::string why, std::vector<WsEvent>& out) {
  failed_ = true;
  std::string().swap(pending_);
  std::string().swap(message_);
  WsEvent e;
  e.kind = WsEvent::Kind::error;
  e.code = code;
  e.payload = std::move(why);
  out.push_back(std::move(e));
}

void WsReader::feed(std::string_view data, std::vector<WsEvent>& out) {
  if (failed_) return;
  // Whole frames are read straight from `data`; only an incomplete tail is copied.
  std::string joined;
  if (!pending_.empty()) {
    pending_.append(data);
    joined.swap(pending_);
    data = joined;
  }
  size_t pos = 0;
  while (pos < data.size()) {
    WsFrameHeader h;
    const std::string_view rest = data.substr(pos);
    const WsParse p = parse_ws_header(rest, h);
    if (p == WsParse::error) return fail(1002, "malformed frame header", out);
    if (p == WsParse::need_more) break;
    if (!h.masked) return fail(1002, "client frames must be masked", out);
    if (h.rsv != 0) return fail(1002, "reserved bits set without an extension", out);
    if (h.payload_len > max_message_ ||
        (h.opcode == ws_continuation && message_.size() + h.payload_len > max_message_))
      return fail(1009, "message too big", out);
    if (rest.size() - h.header_len < h.payload_len) break;
    std::string payload(rest.substr(h.header_len, static_cast<size_t>(h.payload_len)));
    ws_apply_mask(payload.data(), payload.size(), h.mask);
    pos += h.header_len + static_cast<size_t>(h.payload_len);
    if (!on_frame(h.opcode, h.fin, std::move(payload), out)) return;
  }
  if (pos == 0 && !joined.empty()) {
    pending_.swap(joined);  // nothing consumed: no copy (a big frame arrives in many reads)
  } else if (pos < data.size()) {
    pending_.assign(data.substr(pos));
  } else {
    std::string().swap(pending_);
  }
}

bool WsReader::on_frame(uint8_t opcode, bool fin, std::string payload, std::vector<WsEvent>& out) {
  WsEvent e;
  switch (opcode) {
    case ws_text:
    case ws_binary:
      if (message_opcode_ != 0) {
        fail(1002, "new message before the last one ended", out);
        return false;
      }
      if (!fin) {
        message_opcode_ = opcode;
        message_ = std::move(payload);
        fragments_ = 1;
        return true;
      }
      e.kind = opcode == ws_text ? WsEvent::Kind::text : WsEvent::Kind::binary;
      e.payload = std::move(payload);
      e.fragments = 1;
      out.push_back(std::move(e));
      return true;
    case ws_continuation:
      if (message_opcode_ == 0) {
        fail(1002, "continuation without a message", out);
        return false;
      }
      message_ += payload;
      ++fragments_;
      if (!fin) return true;
      e.kind = message_opcode_ == ws_text ? WsEvent::Kind::text : WsEvent::Kind::binary;
      e.payload.swap(message_);
      std::string().swap(message_);
      e.fragments = fragments_;
      message_opcode_ = 0;
      fragments_ = 0;
      out.push_back(std::move(e));
      return true;
    case ws_ping:
    case ws_pong:
      e.kind = opcode == ws_ping ? WsEvent::Kind::ping : WsEvent::Kind::pong;
      e.payload = std::move(payload);
      out.push_back(std::move(e));
      return true;
    case ws_close:
      e.kind = WsEvent::Kind::close;
      if (payload.empty()) {
        e.code = 1005;  // "no status received" (never sent on the wire, RFC 6455 §7.4.1)
      } else if (payload.size() == 1) {
        fail(1002, "close payload of one byte", out);
        return false;
      } else {
        e.code = static_cast<uint16_t>((static_cast<uint8_t>(payload[0]) << 8) |
                                       static_cast<uint8_t>(payload[1]));
        if (!ws_close_code_valid(e.code)) {
          fail(1002, "invalid close code", out);
          return false;
        }
        e.payload = payload.substr(2);
      }
      out.push_back(std::move(e));
      return true;
    default:
      fail(1002, "reserved opcode", out);
      return false;
  }
}

std::string ws_server_frame(uint8_t opcode, std::string_view payload, bool fin) {
  uint8_t head[kWsMaxHeader];
  const size_t n = write_ws_header(head, fin, opcode, payload.size());
  std::string out;
  out.reserve(n + payload.size());
  out.append(reinterpret_cast<const char*>(head), n);
  out.append(payload);
  return out;
}

std::string ws_server_fragments(uint8_t opcode, std::string_view message, size_t pieces) {
  pieces = std::clamp<size_t>(pieces, 1, std::max<size_t>(1, message.size()));
  std::string out;
  out.reserve(message.size() + pieces * 10);
  size_t pos = 0;
  for (size_t i = 0; i < pieces; ++i) {
    // Shares differ by at most one byte; the first pieces take the remainder.
    const size_t len = message.size() / pieces + (i < message.size() % pieces ? 1 : 0);
    out += ws_server_frame(i == 0 ? opcode : ws_continuation, message.substr(pos, len),
                           i + 1 == pieces);
    pos += len;
  }
  return out;
}

std::string ws_server_close(uint16_t code, std::string_view reason) {
  if (code == 0) return ws_server_frame(ws_close, {});
  uint8_t buf[2 + 125];
  const size_t n = write_ws_close(buf, code, reason);
  return std::string(reinterpret_cast<const char*>(buf), n);
}

}  // namespace bench
