#pragma once
// Comparing a secret (the admin bearer token) without leaking, through timing, how many
// of its leading bytes a guess got right (issue 9 item 14).
#include <string_view>

namespace lb::admin {

// True when `given` equals `secret`. Equal-length inputs are compared in constant time
// (OpenSSL's CRYPTO_memcmp); a length mismatch returns false at once, which reveals only
// the length, as every HTTP bearer check does.
bool token_equals(std::string_view given, std::string_view secret);

}  // namespace lb::admin
