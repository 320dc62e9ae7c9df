#pragma once
// How a backend's response is framed, and whether it may be forwarded at all: the one
// place both sides of the proxy ask (the upstream connection, to know where the response
// ends and whether the connection can carry another request; the client side, to know
// whether its own connection can stay open after it). RFC 9112 §6.3, RFC 9110 §15.
//  - A response to HEAD, a 1xx, a 204 and a 304 have no body, whatever their head says:
//    bytes after such a head are never forwarded (response splitting), and when the head
//    announces a body anyway (Content-Length > 0, Transfer-Encoding) the backend may
//    send one, so its connection is not reused.
//  - Transfer-Encoding other than exactly one "chunked" is refused (502; HAProxy does the
//    same): "identity" or a list would make corral and the client disagree on the end.
//  - A 101 to a request that asked for no upgrade is refused (502).
//  - Any HTTP major version other than 1 is refused (502).
#include <cstdint>
#include <span>

#include "lb/core/header_view.h"

namespace lb::http {

enum class BodyFraming : uint8_t {
  none,            // no body: the message ends with its head
  content_length,  // exactly content_length bytes
  chunked,         // chunked coding
  until_close,     // read until the backend closes: the client connection closes too
};

struct ResponseFacts {
  int status = 0;
  uint8_t version_major = 1;
  bool head_request = false;       // the request was HEAD
  bool upgrade_requested = false;  // the request asked for a protocol switch
  bool has_content_length = false;
  uint64_t content_length = 0;
  std::span<const HeaderView> headers;
};

struct ResponseFraming {
  const char* error = nullptr;  // set: refuse the response (502 / cut)
  BodyFraming body = BodyFraming::none;
  bool interim = false;  // 1xx other than 101: the final response follows
  bool reusable = true;  // the backend connection may carry another request afterwards
};

ResponseFraming frame_response(const ResponseFacts& r);

}  // namespace lb::http
