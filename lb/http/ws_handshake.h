#pragma once
// The WebSocket opening handshake (RFC 6455 §4): which requests ask for an upgrade, the
// checks a client's request must pass before corral forwards it, and the accept key that
// ties a backend's 101 to that request. Pure (SHA-1 from OpenSSL's libcrypto).
#include <span>
#include <string>
#include <string_view>

#include "lb/core/header_view.h"

namespace lb::http {

// True if the comma-separated list in any field named `name` holds `token`
// (case-insensitive), e.g. Connection: keep-alive, Upgrade.
bool header_has_token(std::span<const HeaderView> headers, std::string_view name,
                      std::string_view token);

// The request asks to switch protocols: it has an Upgrade field (with or without
// Connection: upgrade; a lone Upgrade field is refused, never ignored).
bool wants_upgrade(std::span<const HeaderView> headers);

struct WsRequestCheck {
  int status = 0;  // 0: a valid WebSocket handshake
  const char* reason = nullptr;
  // 426 carries "Sec-WebSocket-Version: 13" (RFC 6455 §4.4).
  bool version_mismatch = false;
};

// A client's opening handshake (§4.2.1): GET, HTTP/1.1, no body, Upgrade: websocket,
// Connection: upgrade, a Sec-WebSocket-Key of 16 bytes in base64, and version 13.
WsRequestCheck check_ws_request(std::string_view method, int version_major, int version_minor,
                                std::span<const HeaderView> headers, bool has_body);

// Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + the RFC's GUID)).
std::string ws_accept_key(std::string_view client_key);

// A backend's 101 answers the request whose key is `client_key`: Upgrade: websocket and
// the matching Sec-WebSocket-Accept. Returns nullptr or what is wrong.
const char* check_ws_response(std::span<const HeaderView> headers, std::string_view client_key);

}  // namespace lb::http
