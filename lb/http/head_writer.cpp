#include "lb/http/head_writer.h"

#include <array>
#include <charconv>

#include "lb/core/flat_json.h"
#include "lb/http/reason_phrase.h"

namespace lb::http {
namespace {

// The field names a Connection header lists (RFC 9110 §7.6.1), a bounded few.
struct ConnectionTokens {
  std::array<std::string_view, 8> names{};
  size_t n = 0;
  bool contains(std::string_view name) const {
    for (size_t i = 0; i < n; ++i)
      if (iequals(names[i], name)) return true;
    return false;
  }
};

ConnectionTokens connection_tokens(std::span<const HeaderView> headers) {
  ConnectionTokens t;
  for (const HeaderView& h : headers) {
    if (!iequals(h.name, "connection")) continue;
    std::string_view v = h.value;
    while (!v.empty() && t.n < t.names.size()) {
      size_t comma = v.find(',');
      std::string_view tok = v.substr(0, comma);
      while (!tok.empty() && (tok.front() == ' ' || tok.front() == '\t')) tok.remove_prefix(1);
      while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\t')) tok.remove_suffix(1);
      if (!tok.empty()) t.names[t.n++] = tok;
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  return t;
}

bool hop_by_hop(std::string_view name, const ConnectionTokens& tokens, bool upgrade) {
  if (iequals(name, "connection") || iequals(name, "keep-alive") ||
      iequals(name, "proxy-connection") || iequals(name, "te"))
    return true;
  if (iequals(name, "upgrade")) return !upgrade;
  // Never drop framing fields even if a peer lists them in Connection.
  if (iequals(name, "content-length") || iequals(name, "transfer-encoding")) return false;
  return !upgrade && tokens.contains(name);
}

bool listed(std::span<const std::string> names, std::string_view name) {
  for (const std::string& n : names)
    if (iequals(n, name)) return true;
  return false;
}

void put_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

}  // namespace

void write_request_head(std::string& out, const RequestHead& head) {
  out.clear();
  out.append(head.method).push_back(' ');
  if (head.path_needs_slash) out.push_back('/');
  out.append(head.path).append(head.http10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  ConnectionTokens tokens = connection_tokens(head.headers);
  std::string_view xff;
  for (const HeaderView& h : head.headers) {
    if (hop_by_hop(h.name, tokens, head.upgrade)) continue;
    if (head.chunked && iequals(h.name, "transfer-encoding")) continue;
    if (iequals(h.name, "x-forwarded-for")) {
      xff = h.value;  // merged below; several fields fold into the first
      continue;
    }
    bool injected = false;
    for (const InjectedHeader& i : head.inject) injected = injected || iequals(i.name, h.name);
    if (injected) continue;  // the client's own copy of a secret header never passes
    if (listed(head.remove, h.name)) continue;
    put_header(out, h.name, h.value);
  }
  for (const InjectedHeader& i : head.inject) put_header(out, i.name, i.value);
  if (head.chunked) out.append("Transfer-Encoding: chunked\r\n");
  if (!head.client_ip.empty()) {
    out.append("X-Forwarded-For: ");
    if (!xff.empty()) out.append(xff).append(", ");
    out.append(head.client_ip).append("\r\n");
  }
  if (head.upgrade) out.append("Connection: upgrade\r\n");
  out.append("\r\n");
}

void write_response_head(std::string& out, const ResponseHead& head) {
  out.clear();
  // Callers pass 100-599 (response_framing refuses the rest); write only the digits made.
  char code[12];
  auto [end, ec] = std::to_chars(code, code + sizeof code, head.status);
  out.append("HTTP/1.1 ").append(code, ec == std::errc() ? end - code : 0).push_back(' ');
  out.append(head.reason.empty() ? reason_phrase(head.status) : head.reason).append("\r\n");
  ConnectionTokens tokens = connection_tokens(head.headers);
  for (const HeaderView& h : head.headers)
    if (!hop_by_hop(h.name, tokens, head.upgrade) && !listed(head.remove, h.name))
      put_header(out, h.name, h.value);
  if (head.upgrade)
    out.append("Connection: upgrade\r\n");
  else if (head.connection == ClientConnection::close)
    out.append("Connection: close\r\n");
  else if (head.connection == ClientConnection::keep_alive)
    out.append("Connection: keep-alive\r\n");
  out.append("\r\n");
}

void write_error_response(std::string& out, int status, std::string_view reason, bool close,
                          std::string_view extra_headers) {
  // Body: {"error":"<reason>","status":<code>} with the reason JSON-escaped.
  std::string body =
      "{\"error\":\"" + json_escape(reason) + "\",\"status\":" + std::to_string(status) + "}\n";
  out.clear();
  out.append("HTTP/1.1 ").append(std::to_string(status)).push_back(' ');
  out.append(reason_phrase(status)).append("\r\n");
  out.append("Content-Type: application/json\r\nContent-Length: ")
      .append(std::to_string(body.size()))
      .append("\r\n");
  out.append(extra_headers);
  if (close) out.append("Connection: close\r\n");
  out.append("\r\n").append(body);
}

// Kept for head_writer.h's callers; the table itself lives in reason_phrase.cpp.
std::string_view status_reason(int status) { return reason_phrase(status); }

}  // namespace lb::http
