// ClientConn: the checks a request head passes before it is placed (client_rate_limit,
// request smuggling and CONNECT, WebSocket handshakes). Split from client_request.cpp.
#include <cstring>

#include "lb/http/request_checks.h"
#include "lb/http/ws_handshake.h"
#include "lb/net/client_conn.h"
#include "lb/net/log.h"
#include "lb/net/worker.h"

namespace lb::net {

// client_rate_limit (lb/core/client_limiter): the user's bucket, keyed by the session key
// or else the client IP, and with per_ip_rps the IP's own. Over either: 429 with
// Retry-After, before any backend is chosen, so no upstream quota is spent.
bool ClientConn::admit_client(const RouteSpec& route, size_t route_index, const SessionKey* key,
                              bool has_body) {
  std::string_view ip{reinterpret_cast<const char*>(ip_), ip_len_};
  SessionKey ip_key = make_session_key(KeySource::client_ip, ip);
  LimitVerdict v = worker_.state().client_limiter.admit(route.limit_id, key ? *key : ip_key, ip_key,
                                                        route.client_limit, uv_now(worker_.loop()));
  if (v.allowed) return true;
  const RuntimeListener& listener = rt_->listeners[listener_];
  if (route_index < listener.limited.size())
    listener.limited[route_index]->fetch_add(1, std::memory_order_relaxed);
  const char* why = v.by_ip ? "rate limited: too many requests from this address"
                            : "rate limited: too many requests from this client";
  log_limited("client %s: %s (429) on %s %s, retry after %us", ip_text(), why,
              listener.name.c_str(), route.prefix.c_str(), v.retry_after_s);
  char retry[40];
  snprintf(retry, sizeof retry, "Retry-After: %u\r\n", v.retry_after_s);
  reply_local(429, why, has_body, retry);
  return false;
}

ClientConn::HeadCheck ClientConn::check_head(std::string_view method) const {
  // Host and Transfer-Encoding (request smuggling, RFC 9112 §3.2, §6.1) are checked in
  // lb/http/request_checks; protocol switches are not proxied yet.
  const http::MessageParser& parser = rs_->parser;
  http::RequestCheck fields =
      http::check_request_fields(parser.headers(), http10_, parser.chunked());
  if (fields.status != 0) return {fields.status, fields.reason};
  if (method == "CONNECT") return {501, "CONNECT is not supported"};
  return {};
}

bool ClientConn::accept_upgrade(const RouteSpec& route, std::span<const HeaderView> headers,
                                bool has_body) {
  const http::MessageParser& parser = rs_->parser;
  http::WsRequestCheck ws;
  if (!route.websocket)
    ws = {400, "protocol upgrade on a route without websocket: true"};
  else
    ws = http::check_ws_request(parser.method(), parser.version_major(), parser.version_minor(),
                                headers, has_body);
  if (ws.status != 0) {
    log_limited("client %s: bad WebSocket handshake (%d): %s", ip_text(), ws.status, ws.reason);
    reply_local(ws.status, ws.reason, true,
                ws.version_mismatch ? "Sec-WebSocket-Version: 13\r\n" : "");
    return false;
  }
  std::string_view key = trim_ows(find_header(headers, "sec-websocket-key").value);
  std::memcpy(rs_->ws_key, key.data(), key.size());  // 24 bytes: check_ws_request said so
  rs_->ws_key_len = static_cast<uint8_t>(key.size());
  keep_alive_ = false;  // an answer other than 101 ends the connection
  return true;
}

}  // namespace lb::net
