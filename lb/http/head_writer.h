#pragma once
// Rewrites message heads as they cross the proxy (RFC 9110 §7.6.1): hop-by-hop fields
// (Connection, Keep-Alive, Proxy-Connection, TE, Upgrade and every field the Connection
// header names) stay on their hop; X-Forwarded-For gains the client; injected headers
// replace the client's copy; a pool's remove_headers are dropped each way. Output goes into a
// caller-owned buffer reused across requests, so the hot path does not allocate once the buffer has
// grown.
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "lb/core/header_view.h"

namespace lb::http {

struct InjectedHeader {
  std::string name;
  std::string value;
};

struct RequestHead {
  std::string_view method;
  bool path_needs_slash = false;  // write "/" before `path`
  std::string_view path;          // path[?query] as forwarded
  bool http10 = false;            // the client spoke HTTP/1.0: so do we, and close after
  std::span<const HeaderView> headers;
  std::string_view client_ip;  // appended to X-Forwarded-For
  std::span<const InjectedHeader> inject;
  // Fields dropped (case-insensitively) from the client's head: the pool's
  // remove_headers.request.
  std::span<const std::string> remove;
  bool upgrade = false;  // keep Upgrade and "Connection: upgrade" (WebSocket)
  // The body is re-framed by us: the client's Transfer-Encoding is replaced by exactly
  // "Transfer-Encoding: chunked".
  bool chunked = false;
};

void write_request_head(std::string& out, const RequestHead& head);

enum class ClientConnection : uint8_t {
  implicit,    // HTTP/1.1 keep-alive: no Connection field
  keep_alive,  // HTTP/1.0 client that asked for keep-alive
  close,       // we close after this response
};

struct ResponseHead {
  int status = 200;
  std::string_view reason;
  std::span<const HeaderView> headers;
  ClientConnection connection = ClientConnection::implicit;
  bool upgrade = false;  // 101: keep Upgrade and Connection
  // Fields dropped (case-insensitively) from the backend's head: the pool's
  // remove_headers.response.
  std::span<const std::string> remove;
};

void write_response_head(std::string& out, const ResponseHead& head);

// A response corral makes itself: JSON body {"error": reason, "status": code}.
// extra_headers is a pre-formatted block of "Name: value\r\n" lines (may be empty).
void write_error_response(std::string& out, int status, std::string_view reason, bool close,
                          std::string_view extra_headers = {});

std::string_view status_reason(int status);

}  // namespace lb::http
