#pragma once
// Decodes a complete chunked body (RFC 9112 §7.1) into `out`; false if malformed. For
// small documents read whole (health answers); the proxy path never decodes bodies.
#include <string>
#include <string_view>

namespace lb::http {

bool dechunk(std::string_view raw, std::string& out);

}  // namespace lb::http
