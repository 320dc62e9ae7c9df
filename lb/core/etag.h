#pragma once
// Entity tags for cached answers (plan-16 §3): the tag depends only on the body, so a
// cached answer carries the same ETag whichever backend produced it, and a client's
// If-None-Match is compared with RFC 9110's weak comparison.
#include <cstddef>
#include <string>
#include <string_view>

namespace lb {

// Length of body_etag's result: DQUOTE "c1-" 32 hex DQUOTE.
inline constexpr size_t kBodyEtagLen = 37;

// `"c1-<32 lower-case hex>"`: XXH3-128 (seed 0) of `body`, high 64 bits first, as
// xxh128sum prints it. "c1" versions the scheme so a later change cannot collide.
std::string body_etag(std::string_view body);

// True if the If-None-Match field value `header_value` matches `etag` under RFC 9110
// §13.1.2: "*" matches; otherwise a comma-separated list of entity-tags (empty members
// and OWS allowed) compared weakly, so "W/" is ignored on both sides. A malformed
// member never matches (the others still can): failing to match only costs a 200.
bool if_none_match(std::string_view header_value, std::string_view etag);

}  // namespace lb
