#include "lb/core/proxy_header.h"

#include <cstring>
#include <string_view>

namespace lb {
namespace {

constexpr uint8_t kV2Sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::string_view kV1Prefix = "PROXY ";

ProxyParse fail(const char* why) {
  ProxyParse p;
  p.status = ProxyStatus::bad;
  p.error = why;
  return p;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A decimal number of at most max_digits digits, no sign, no leading zero (but "0").
bool parse_decimal(std::string_view s, size_t max_digits, uint32_t limit, uint32_t& out) {
  if (s.empty() || s.size() > max_digits || (s.size() > 1 && s[0] == '0')) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (!is_digit(c)) return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > limit) return false;
  out = v;
  return true;
}

// A dotted quad as inet_pton(AF_INET) reads it: four parts 0..255, no leading zeros.
bool parse_ipv4(std::string_view s, uint8_t out[4]) {
  for (int i = 0; i < 4; ++i) {
    size_t dot = i < 3 ? s.find('.') : s.size();
    if (dot == std::string_view::npos) return false;
    uint32_t v = 0;
    if (!parse_decimal(s.substr(0, dot), 3, 255, v)) return false;
    out[i] = static_cast<uint8_t>(v);
    s.remove_prefix(i < 3 ? dot + 1 : dot);
  }
  return s.empty();
}

// An IPv6 literal as inet_pton(AF_INET6) reads it: up to eight groups of 1-4 hex digits,
// one "::" standing for at least one zero group, an optional dotted-quad tail.
bool parse_ipv6(std::string_view s, uint8_t out[16]) {
  uint16_t words[8] = {};
  int n = 0, gap = -1;
  size_t i = 0;
  if (s.size() >= 2 && s[0] == ':' && s[1] == ':') {
    gap = 0;
    i = 2;
    if (i == s.size()) {
      std::memset(out, 0, 16);
      return true;
    }
  }
  while (true) {
    if (n == 8) return false;
    size_t start = i;
    uint32_t v = 0;
    while (i < s.size() && i - start < 5 && hex_value(s[i]) >= 0) v = v * 16 + hex_value(s[i++]);
    if (i < s.size() && s[i] == '.') {  // the IPv4 tail: the rest of the string
      uint8_t v4[4];
      if (n > 6 || !parse_ipv4(s.substr(start), v4)) return false;
      words[n++] = static_cast<uint16_t>(v4[0] << 8 | v4[1]);
      words[n++] = static_cast<uint16_t>(v4[2] << 8 | v4[3]);
      break;
    }
    if (i == start || i - start > 4) return false;
    words[n++] = static_cast<uint16_t>(v);
    if (i == s.size()) break;
    if (s[i] != ':') return false;
    ++i;
    if (i < s.size() && s[i] == ':') {
      if (gap >= 0) return false;
      gap = n;
      ++i;
      if (i == s.size()) break;
    } else if (i == s.size()) {
      return false;  // a trailing single colon
    }
  }
  if (gap < 0 ? n != 8 : n > 7) return false;
  uint16_t full[8] = {};
  if (gap < 0) {
    std::memcpy(full, words, sizeof full);
  } else {
    int tail = n - gap;
    for (int k = 0; k < gap; ++k) full[k] = words[k];
    for (int k = 0; k < tail; ++k) full[8 - tail + k] = words[gap + k];
  }
  for (int k = 0; k < 8; ++k) {
    out[2 * k] = static_cast<uint8_t>(full[k] >> 8);
    out[2 * k + 1] = static_cast<uint8_t>(full[k]);
  }
  return true;
}

// Splits off the text up to the next single space (or the end); false on an empty field.
bool next_field(std::string_view& rest, std::string_view& field, bool last) {
  size_t sp = rest.find(' ');
  if (last) {
    if (sp != std::string_view::npos) return false;
    field = rest;
    rest = {};
  } else {
    if (sp == std::string_view::npos) return false;
    field = rest.substr(0, sp);
    rest.remove_prefix(sp + 1);
  }
  return !field.empty();
}

// "PROXY TCP4|TCP6 src dst sport dport" or "PROXY UNKNOWN[ anything]", without the CRLF.
ProxyParse parse_v1_line(std::string_view line, size_t consumed) {
  ProxyParse p;
  p.version = 1;
  std::string_view rest = line.substr(kV1Prefix.size());
  if (rest.substr(0, 7) == "UNKNOWN" && (rest.size() == 7 || rest[7] == ' ')) {
    p.status = ProxyStatus::ok;
    p.consumed = consumed;
    p.local = true;
    return p;
  }
  std::string_view proto, src, dst, sport, dport;
  if (!next_field(rest, proto, false) || !next_field(rest, src, false) ||
      !next_field(rest, dst, false) || !next_field(rest, sport, false) ||
      !next_field(rest, dport, true))
    return fail("v1: expected 'PROXY TCP4|TCP6 SRC DST SPORT DPORT'");
  uint8_t dst_bytes[16];
  if (proto == "TCP4") {
    if (!parse_ipv4(src, p.src) || !parse_ipv4(dst, dst_bytes)) return fail("v1: bad IPv4 address");
    p.src_len = 4;
  } else if (proto == "TCP6") {
    if (!parse_ipv6(src, p.src) || !parse_ipv6(dst, dst_bytes)) return fail("v1: bad IPv6 address");
    p.src_len = 16;
  } else {
    return fail("v1: protocol is not TCP4, TCP6 or UNKNOWN");
  }
  uint32_t sp = 0, dp = 0;
  if (!parse_decimal(sport, 5, 65535, sp) || !parse_decimal(dport, 5, 65535, dp))
    return fail("v1: bad port");
  p.src_port = static_cast<uint16_t>(sp);
  p.status = ProxyStatus::ok;
  p.consumed = consumed;
  return p;
}

ProxyParse parse_v1(const uint8_t* data, size_t len) {
  const size_t lim = len < kProxyV1Max ? len : kProxyV1Max;
  for (size_t i = 0; i < lim; ++i) {
    const char c = static_cast<char>(data[i]);
    if (i < kV1Prefix.size()) {
      if (c != kV1Prefix[i]) return fail("not a PROXY protocol header");
      continue;
    }
    if (c == '\r') {
      if (i + 1 == kProxyV1Max) return fail("v1: no CRLF within 107 bytes");
      if (i + 1 == len) return ProxyParse{};  // the LF may follow
      if (data[i + 1] != '\n') return fail("v1: CR not followed by LF");
      return parse_v1_line(std::string_view(reinterpret_cast<const char*>(data), i), i + 2);
    }
    if (c < 0x20 || c > 0x7e) return fail("v1: a byte that is not printable ASCII");
  }
  if (len >= kProxyV1Max) return fail("v1: no CRLF within 107 bytes");
  return ProxyParse{};
}

ProxyParse parse_v2(const uint8_t* data, size_t len) {
  if (len < 16) return ProxyParse{};
  ProxyParse p;
  p.version = 2;
  const uint8_t ver_cmd = data[12], fam = data[13];
  const size_t body = static_cast<size_t>(data[14]) << 8 | data[15];
  if ((ver_cmd & 0xF0) != 0x20) return fail("v2: version is not 2");
  const uint8_t cmd = ver_cmd & 0x0F;
  if (cmd > 1) return fail("v2: command is neither LOCAL nor PROXY");
  if (body > kProxyV2MaxPayload) return fail("v2: header longer than 1040 bytes");
  if (len < 16 + body) return ProxyParse{};
  p.consumed = 16 + body;
  p.status = ProxyStatus::ok;
  if (cmd == 0) {  // LOCAL: the balancer's own connection (health checks); family ignored
    p.local = true;
    return p;
  }
  const uint8_t* a = data + 16;
  switch (fam) {
    case 0x11:  // TCP over IPv4: src, dst, sport, dport (12 bytes), then TLVs
      if (body < 12) return fail("v2: TCP4 addresses truncated");
      std::memcpy(p.src, a, 4);
      p.src_len = 4;
      p.src_port = static_cast<uint16_t>(a[8] << 8 | a[9]);
      return p;
    case 0x21:  // TCP over IPv6 (36 bytes)
      if (body < 36) return fail("v2: TCP6 addresses truncated");
      std::memcpy(p.src, a, 16);
      p.src_len = 16;
      p.src_port = static_cast<uint16_t>(a[32] << 8 | a[33]);
      return p;
    case 0x00:  // UNSPEC
    case 0x12:  // UDP4
    case 0x22:  // UDP6
    case 0x31:  // UNIX stream
    case 0x32:  // UNIX datagram
      p.local = true;
      return p;
    default:
      return fail("v2: unknown address family");
  }
}

}  // namespace

ProxyParse parse_proxy_header(const uint8_t* data, size_t len) {
  if (len == 0) return ProxyParse{};
  if (data[0] == kV2Sig[0]) {
    const size_t n = len < sizeof kV2Sig ? len : sizeof kV2Sig;
    if (std::memcmp(data, kV2Sig, n) != 0) return fail("not a PROXY protocol header");
    return parse_v2(data, len);
  }
  return parse_v1(data, len);
}

}  // namespace lb
