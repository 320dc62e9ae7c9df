#include "bench/load_ws_frames.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstring>

#include "lb/http/ws_frame.h"

namespace bench {

std::string ws_key_from_bytes(const uint8_t bytes[16]) {
  unsigned char out[25];
  const int n = EVP_EncodeBlock(out, bytes, 16);
  return std::string(reinterpret_cast<char*>(out), size_t(n));
}

std::string ws_handshake_request(std::string_view path, std::string_view host, std::string_view key,
                                 const std::vector<std::string>& extra) {
  std::string r;
  r.reserve(256);
  r.append("GET ").append(path).append(" HTTP/1.1\r\nHost: ").append(host);
  r.append("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ").append(key);
  r.append("\r\nSec-WebSocket-Version: 13\r\n");
  for (const std::string& h : extra) r.append(h).append("\r\n");
  r.append("\r\n");
  return r;
}

size_t format_rpc_request(char* out, size_t cap, std::string_view method, std::string_view params,
                          uint64_t id) {
  int n;
  if (params.empty())
    n = std::snprintf(out, cap, "{\"jsonrpc\":\"2.0\",\"method\":\"%.*s\",\"id\":%llu}",
                      int(method.size()), method.data(), (unsigned long long)id);
  else
    n = std::snprintf(out, cap,
                      "{\"jsonrpc\":\"2.0\",\"method\":\"%.*s\",\"params\":%.*s,\"id\":%llu}",
                      int(method.size()), method.data(), int(params.size()), params.data(),
                      (unsigned long long)id);
  return n < 0 || size_t(n) >= cap ? 0 : size_t(n);
}

size_t write_client_frame(char* out, uint8_t opcode, std::string_view payload,
                          const uint8_t mask[4]) {
  const size_t h = lb::http::write_ws_header(reinterpret_cast<uint8_t*>(out), true, opcode,
                                             payload.size(), mask);
  if (!payload.empty()) std::memcpy(out + h, payload.data(), payload.size());
  lb::http::ws_apply_mask(out + h, payload.size(), mask);
  return h + payload.size();
}

namespace {

bool json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

std::optional<uint64_t> rpc_response_id(std::string_view s) {
  // A scanner, not a parser: strings are skipped whole (escapes included) so braces and
  // "id" inside them do not count; depth 1 is the top-level object's members.
  int depth = 0;
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const char c = s[i];
    if (c == '"') {
      const size_t start = ++i;
      while (i < n && s[i] != '"') i += s[i] == '\\' ? 2 : 1;
      if (i >= n) return std::nullopt;
      const std::string_view str = s.substr(start, i - start);
      ++i;
      if (depth != 1 || str != "id") continue;
      size_t j = i;
      while (j < n && json_space(s[j])) ++j;
      if (j >= n || s[j] != ':') continue;  // a value "id", not a key
      ++j;
      while (j < n && json_space(s[j])) ++j;
      if (j >= n || s[j] < '0' || s[j] > '9') return std::nullopt;
      uint64_t v = 0;
      size_t digits = 0;
      while (j < n && s[j] >= '0' && s[j] <= '9' && digits < 19) {
        v = v * 10 + uint64_t(s[j] - '0');
        ++j;
        ++digits;
      }
      if (j < n && (s[j] == '.' || s[j] == 'e' || s[j] == 'E' || (s[j] >= '0' && s[j] <= '9')))
        return std::nullopt;  // not an id we sent
      return v;
    }
    if (c == '{' || c == '[')
      ++depth;
    else if (c == '}' || c == ']')
      --depth;
    ++i;
  }
  return std::nullopt;
}

uint16_t ws_close_code(std::string_view payload) {
  if (payload.size() < 2) return 1005;
  return uint16_t((uint16_t(uint8_t(payload[0])) << 8) | uint8_t(payload[1]));
}

bool json_plain(std::string_view s) {
  for (char c : s)
    if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') return false;
  return true;
}

}  // namespace bench
