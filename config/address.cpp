#include "config/address.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace config {
namespace {

bool fail(std::string* error, const char* why) {
  if (error) *error = why;
  return false;
}

// Four decimal octets 0..255, no leading '+', at most three digits each.
bool is_ipv4(std::string_view s) {
  int parts = 0;
  size_t i = 0;
  while (true) {
    size_t start = i;
    unsigned value = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      value = value * 10 + static_cast<unsigned>(s[i] - '0');
      if (i - start >= 3 || value > 255) return false;
      ++i;
    }
    if (i == start) return false;
    ++parts;
    if (i == s.size()) return parts == 4;
    if (s[i] != '.' || parts == 4) return false;
    ++i;
  }
}

bool is_ipv6(std::string_view s) {
  if (s.empty() || s.size() >= INET6_ADDRSTRLEN) return false;
  std::string copy(s);
  in6_addr out;
  return inet_pton(AF_INET6, copy.c_str(), &out) == 1;
}

bool is_hostname(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

bool is_wildcard(const Address& a) { return a.host == "0.0.0.0" || a.host == "::"; }

bool parse(std::string_view text, Address& out, std::string* error, bool listen) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return fail(error, "missing ']' after IPv6 address");
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (rest.empty() || rest.front() != ':') return fail(error, "expected host:port");
    port = rest.substr(1);
    if (host.empty()) return fail(error, "empty host");
    if (!is_ipv6(host)) return fail(error, "invalid IPv6 address in brackets");
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return fail(error, "expected host:port");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.empty()) return fail(error, "empty host");
    if (host.find(':') != std::string_view::npos)
      return fail(error, "an IPv6 address must be bracketed, e.g. [::1]:8080");
    bool dotted_decimal = std::all_of(host.begin(), host.end(), [](char c) {
      return c == '.' || std::isdigit(static_cast<unsigned char>(c));
    });
    if (dotted_decimal ? !is_ipv4(host) : !is_hostname(host))
      return fail(error, dotted_decimal ? "invalid IPv4 address" : "invalid host name");
  }
  if (port.empty()) return fail(error, "missing port");
  if (port.size() > 5) return fail(error, "port must be 1..65535");
  unsigned value = 0;
  for (char c : port) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return fail(error, "port is not a number");
    value = value * 10 + static_cast<unsigned>(c - '0');
    if (value > 65535) return fail(error, "port must be 1..65535");
  }
  if (value == 0 && !listen) return fail(error, "port must be 1..65535");
  out.host = std::string(host);
  out.port = static_cast<uint16_t>(value);
  out.text = std::string(text);
  return true;
}

}  // namespace

std::optional<Address> parse_address(std::string_view text, std::string* error, bool listen) {
  Address a;
  if (!parse(text, a, error, listen)) return std::nullopt;
  return a;
}

bool listen_addresses_conflict(const Address& a, const Address& b) {
  if (a.port != b.port || a.port == 0) return false;
  auto lower = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  if (lower(a.host) == lower(b.host)) return true;
  if (a.host == "::" || b.host == "::") return true;
  auto v6 = [](const Address& x) { return x.host.find(':') != std::string::npos; };
  if (is_wildcard(a) && !v6(b)) return true;
  if (is_wildcard(b) && !v6(a)) return true;
  return false;
}

}  // namespace config
