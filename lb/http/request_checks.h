#pragma once
// Checks on a parsed request head that llhttp does not make, in one place (RFC 9112
// §3.2, §6.1; RFC 3986 §3.2.2). Pure; the client side answers what they return.
//  - Host: exactly one on HTTP/1.1 (none, or two, is 400); at most one on HTTP/1.0; its
//    value is uri-host [":" port] with uri-host an IP-literal ("[...]"), an IPv4 address
//    or a reg-name, and port 1-5 digits up to 65535. An empty Host is refused too:
//    every target corral serves has an authority.
//  - Transfer-Encoding: one field, exactly "chunked", and only on HTTP/1.1 (request
//    smuggling, RFC 9112 §6.1): anything else a backend might frame differently.
#include <span>
#include <string_view>

#include "lb/core/header_view.h"

namespace lb::http {

struct RequestCheck {
  int status = 0;  // 0: fine
  const char* reason = nullptr;
};

// True if `v` (trimmed of OWS) is a valid Host field value.
bool host_valid(std::string_view v);

// The Host and Transfer-Encoding rules above, for a request of version 1.minor.
// `chunked`: the parser frames the body as chunked. A Transfer-Encoding it did not read as
// chunked (e.g. "chunked" followed by a tab, which llhttp does not take for the token) is
// refused: corral would see no body where the backend, trimming the tab, sees a chunked
// one (request smuggling).
RequestCheck check_request_fields(std::span<const HeaderView> headers, bool http10, bool chunked);

}  // namespace lb::http
