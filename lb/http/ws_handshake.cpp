#include "lb/http/ws_handshake.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

namespace lb::http {
namespace {

constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bool base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// 16 bytes in base64: 22 characters and "==" (the last one carrying 2 bits: A, Q, g, w).
bool valid_key(std::string_view k) {
  if (k.size() != 24 || k[22] != '=' || k[23] != '=') return false;
  for (size_t i = 0; i < 22; ++i)
    if (!base64_char(k[i])) return false;
  char last = k[21];
  return last == 'A' || last == 'Q' || last == 'g' || last == 'w';
}

}  // namespace

bool header_has_token(std::span<const HeaderView> headers, std::string_view name,
                      std::string_view token) {
  for (const HeaderView& h : headers) {
    if (!iequals(h.name, name)) continue;
    std::string_view v = h.value;
    while (true) {
      size_t comma = v.find(',');
      if (iequals(trim_ows(v.substr(0, comma)), token)) return true;
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  return false;
}

bool wants_upgrade(std::span<const HeaderView> headers) {
  return find_header(headers, "upgrade").found;
}

WsRequestCheck check_ws_request(std::string_view method, int version_major, int version_minor,
                                std::span<const HeaderView> headers, bool has_body) {
  if (method != "GET") return {400, "WebSocket handshake must be a GET"};
  if (version_major != 1 || version_minor < 1) return {400, "WebSocket handshake needs HTTP/1.1"};
  if (has_body) return {400, "WebSocket handshake with a body"};
  if (!header_has_token(headers, "upgrade", "websocket"))
    return {400, "Upgrade other than websocket"};
  if (!header_has_token(headers, "connection", "upgrade"))
    return {400, "WebSocket handshake without Connection: upgrade"};
  int keys = 0;
  std::string_view key;
  for (const HeaderView& h : headers)
    if (iequals(h.name, "sec-websocket-key")) ++keys, key = trim_ows(h.value);
  if (keys != 1 || !valid_key(key)) return {400, "missing or invalid Sec-WebSocket-Key"};
  HeaderLookup v = find_header(headers, "sec-websocket-version");
  if (!v.found || trim_ows(v.value) != "13")
    return {426, "unsupported Sec-WebSocket-Version (13 is supported)", true};
  return {};
}

std::string ws_accept_key(std::string_view client_key) {
  std::string in(client_key);
  in.append(kGuid);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(in.data()), in.size(), digest);
  unsigned char out[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  int n = EVP_EncodeBlock(out, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
}

const char* check_ws_response(std::span<const HeaderView> headers, std::string_view client_key) {
  if (!header_has_token(headers, "upgrade", "websocket")) return "101 without Upgrade: websocket";
  HeaderLookup a = find_header(headers, "sec-websocket-accept");
  if (!a.found || trim_ows(a.value) != ws_accept_key(client_key))
    return "101 with a wrong Sec-WebSocket-Accept";
  return nullptr;
}

}  // namespace lb::http
