#include "lb/http/request_checks.h"

namespace lb::http {
namespace {

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_unreserved(char c) {
  return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
bool is_sub_delim(char c) {
  switch (c) {
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
      return true;
    default:
      return false;
  }
}

// reg-name = *( unreserved / pct-encoded / sub-delims ); an IPv4 address is one too.
bool reg_name_valid(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size() || !is_hex(s[i + 1]) || !is_hex(s[i + 2])) return false;
      i += 2;
      continue;
    }
    if (!is_unreserved(c) && !is_sub_delim(c)) return false;
  }
  return true;
}

// IP-literal = "[" ( IPv6address / IPvFuture ) "]": the bracketed part holds hex digits,
// ':' and '.' (IPv6, IPv4-embedded), or "v" HEX "." followed by unreserved / sub-delims
// / ':' (IPvFuture). The inner grammar of IPv6 is not re-checked beyond its alphabet.
bool ip_literal_valid(std::string_view s) {
  if (s.size() < 3 || s.front() != '[' || s.back() != ']') return false;
  std::string_view in = s.substr(1, s.size() - 2);
  if (in[0] == 'v' || in[0] == 'V') {
    size_t i = 1;
    while (i < in.size() && is_hex(in[i])) ++i;
    if (i == 1 || i >= in.size() || in[i] != '.' || i + 1 == in.size()) return false;
    for (++i; i < in.size(); ++i)
      if (!is_unreserved(in[i]) && !is_sub_delim(in[i]) && in[i] != ':') return false;
    return true;
  }
  bool colon = false;
  for (char c : in) {
    if (c == ':') colon = true;
    if (!is_hex(c) && c != ':' && c != '.') return false;
  }
  return colon;
}

bool port_valid(std::string_view p) {
  if (p.empty() || p.size() > 5) return false;
  unsigned v = 0;
  for (char c : p) {
    if (!is_digit(c)) return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v <= 65535;
}

}  // namespace

bool host_valid(std::string_view v) {
  v = trim_ows(v);
  if (v.empty()) return false;
  std::string_view host = v;
  if (v.front() == '[') {
    size_t close = v.find(']');
    if (close == std::string_view::npos) return false;
    host = v.substr(0, close + 1);
    std::string_view rest = v.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !port_valid(rest.substr(1)))) return false;
    return ip_literal_valid(host);
  }
  size_t colon = v.rfind(':');
  if (colon != std::string_view::npos) {
    if (!port_valid(v.substr(colon + 1))) return false;
    host = v.substr(0, colon);
  }
  return !host.empty() && reg_name_valid(host);
}

RequestCheck check_request_fields(std::span<const HeaderView> headers, bool http10, bool chunked) {
  int hosts = 0;
  int te = 0;
  std::string_view host;
  for (const HeaderView& h : headers) {
    if (iequals(h.name, "host")) {
      if (++hosts > 1) return {400, "more than one Host header"};
      host = h.value;
      continue;
    }
    if (!iequals(h.name, "transfer-encoding")) continue;
    if (++te > 1 || !iequals(trim_ows(h.value), "chunked") || !chunked)
      return {400, "unsupported Transfer-Encoding"};
  }
  if (te > 0 && http10) return {400, "Transfer-Encoding on an HTTP/1.0 request"};
  if (hosts == 0) {
    if (!http10) return {400, "missing Host header"};
    return {};
  }
  if (!host_valid(host)) return {400, "invalid Host header"};
  return {};
}

}  // namespace lb::http
