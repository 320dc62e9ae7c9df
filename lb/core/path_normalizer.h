#pragma once
// The request target as corral routes, guards and forwards it (issue 9): one normal form
// shared by the router, the key extractors and the Kupo write guard, so that what corral
// checks is byte for byte what the backend receives. Backends decode paths themselves
// (Kupo routes on WAI's pathInfo: the path split on '/', each segment percent-decoded),
// so a check on the literal text is bypassed by `%70atterns`, `//patterns` or
// `/x/../patterns`; on the normal form those are plain `/patterns`.
//
// Pure, no allocation: the normal form is never longer than its input, so it is written
// over the input in place (the target lies in the connection's read buffer, held while
// the head is processed).
#include <cstddef>
#include <string_view>

namespace lb {

struct NormalizedTarget {
  // nullptr when the target is acceptable; else why not (for a 400 and the log).
  const char* error = nullptr;
  // The origin-form target to route and forward: "/" path ["?" query], pointing into the
  // caller's buffer.
  std::string_view origin;
  // Absolute-form only ("http://host:port/p"): the authority, which replaces the Host
  // header (RFC 9112 §3.2.2). Empty for origin-form. Points into the caller's buffer.
  std::string_view authority;
};

// Normalises the path of an origin-form target ("/" ...) in place: buf[0, len) becomes
// buf[0, returned size). Percent-escapes of unreserved characters (ALPHA DIGIT - . _ ~,
// RFC 3986 §2.3) are decoded, other escapes kept with uppercase hex (§6.2.2.1/2);
// repeated slashes merge into one; "." and ".." segments (decoded ones too) are resolved
// as remove_dot_segments does (§5.2.4). The query (from the first '?') is kept as is.
// Refused, with `error` set: an escape of '/', '\' or a control byte (%2F, %5C, %00..%1F,
// %7F), a malformed escape ("%", "%4", "%zz"), a raw '\' in the path, a '#' anywhere, and
// ".." above the root.
struct NormalizedPath {
  const char* error = nullptr;
  size_t size = 0;
};
NormalizedPath normalize_path(char* buf, size_t len);

// Accepts the request target forms a proxy in front of origin servers takes (RFC 9112
// §3.2): origin-form, and absolute-form with scheme http or https (the authority is
// returned and the path, "/" when empty, normalised as above). Asterisk-form ("*") and
// authority-form (CONNECT's "host:port") are refused with `error` set, as are an empty or
// userinfo-carrying authority. Works in place in buf[0, len).
NormalizedTarget normalize_target(char* buf, size_t len);

}  // namespace lb
