#include "lb/core/path_normalizer.h"

#include <cstring>

namespace lb {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// RFC 3986 §2.3: the characters whose escapes are equivalent to themselves.
bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

bool starts_with_nocase(const char* buf, size_t len, std::string_view lower) {
  if (len < lower.size()) return false;
  for (size_t i = 0; i < lower.size(); ++i) {
    char c = buf[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

// RFC 3986 §3.2: reg-name, IP-literal and port characters (pct-encoded included).
bool authority_char(unsigned char c) {
  if (unreserved(c)) return true;
  return std::strchr("!$&'()*+,;=:[]%", c) != nullptr && c != 0;
}

}  // namespace

NormalizedPath normalize_path(char* buf, size_t len) {
  if (len == 0 || buf[0] != '/') return {"request target must start with '/'", 0};
  if (std::memchr(buf, '#', len)) return {"fragment ('#') in request target", 0};
  const char* qmark = static_cast<const char*>(std::memchr(buf, '?', len));
  const size_t path_end = qmark ? static_cast<size_t>(qmark - buf) : len;

  // One pass, segment by segment; the write position w never passes the read position r,
  // since decoding and merging only shorten, so the output overwrites consumed input.
  static constexpr char kHex[] = "0123456789ABCDEF";
  size_t w = 1;  // buf[0] is the root slash, kept
  size_t r = 1;
  while (r < path_end) {
    if (buf[r] == '/') {  // an empty segment: "//" merges into "/"
      ++r;
      continue;
    }
    const size_t seg = w;
    while (r < path_end && buf[r] != '/') {
      char c = buf[r];
      if (c == '\\') return {"backslash in path", 0};
      if (c != '%') {
        buf[w++] = c;
        ++r;
        continue;
      }
      int hi = r + 2 < path_end ? hex_value(buf[r + 1]) : -1;
      int lo = hi >= 0 ? hex_value(buf[r + 2]) : -1;
      if (hi < 0 || lo < 0) return {"malformed percent-escape in path", 0};
      auto b = static_cast<unsigned char>(hi * 16 + lo);
      if (b == '/') return {"encoded slash (%2F) in path", 0};
      if (b == '\\') return {"encoded backslash (%5C) in path", 0};
      if (b < 0x20 || b == 0x7F) return {"encoded control character (e.g. %00) in path", 0};
      if (unreserved(b)) {
        buf[w++] = static_cast<char>(b);
      } else {
        buf[w++] = '%';
        buf[w++] = kHex[b >> 4];
        buf[w++] = kHex[b & 15];
      }
      r += 3;
    }
    const size_t n = w - seg;
    if (n == 1 && buf[seg] == '.') {
      w = seg;  // "/a/./b" -> "/a/b"; a final "." leaves "/a/"
    } else if (n == 2 && buf[seg] == '.' && buf[seg + 1] == '.') {
      if (seg == 1) return {"path goes above the root ('..')", 0};
      w = seg - 1;  // the slash before this segment; back to the previous segment's start
      while (buf[w - 1] != '/') --w;
    } else if (r < path_end) {
      buf[w++] = '/';  // the segment's own separator; further slashes merge
      ++r;
    }
  }
  // The query keeps its bytes; it moves down over what the path gave up.
  if (path_end < len) std::memmove(buf + w, buf + path_end, len - path_end);
  return {nullptr, w + (len - path_end)};
}

NormalizedTarget normalize_target(char* buf, size_t len) {
  NormalizedTarget t;
  size_t start = 0;
  if (len > 0 && buf[0] == '/') {
    // origin-form, the usual case
  } else if (len == 1 && buf[0] == '*') {
    t.error = "asterisk-form request target ('*') is not supported";
    return t;
  } else if (starts_with_nocase(buf, len, "http://") || starts_with_nocase(buf, len, "https://")) {
    size_t a = buf[4] == ':' ? 7 : 8;
    size_t e = a;
    while (e < len && buf[e] != '/' && buf[e] != '?' && buf[e] != '#') {
      auto c = static_cast<unsigned char>(buf[e]);
      if (c == '@') {
        t.error = "userinfo in request target";
        return t;
      }
      if (!authority_char(c)) {
        t.error = "invalid character in request target authority";
        return t;
      }
      ++e;
    }
    if (e == a) {
      t.error = "empty authority in request target";
      return t;
    }
    if (e == len || buf[e] != '/') {
      // No path ("http://h" or "http://h?q"): the origin-form path is "/". The scheme's
      // bytes are spare, so the authority moves one byte down to make room for it.
      std::memmove(buf + a - 1, buf + a, e - a);
      --a;
      buf[--e] = '/';
      t.authority = {buf + a, e - a};
    } else {
      t.authority = {buf + a, e - a};
    }
    start = e;
  } else {
    t.error = "request target must be origin-form (/path) or absolute-form (http://host/path)";
    return t;
  }
  NormalizedPath p = normalize_path(buf + start, len - start);
  if (p.error) {
    t.error = p.error;
    t.authority = {};
    return t;
  }
  t.origin = {buf + start, p.size};
  return t;
}

}  // namespace lb
