#include "lb/core/flight_key.h"

namespace lb {

FlightKey fill_flight_key(CacheKey key) { return {key, kPoolScope}; }

FlightKey stream_flight_key(CacheKey key, BackendRef backend) { return {key, backend}; }

Collapse collapsible(std::string_view method, const ReqFacts& req, const CacheVerdict& verdict,
                     bool websocket_route, bool stream_pool) {
  auto no = [](const char* why) { return Collapse{false, why}; };
  // HEAD is served from a hit or sent solo: it has no body to fan out or fill with.
  if (method != "GET") return no("method");
  if (websocket_route) return no("websocket");
  if (req.has_body || req.upgrade || req.expect) return no("body");
  if (req.range) return no("range");
  if (req.if_match || req.if_range || req.if_modified_since) return no("conditional");
  if (verdict.cacheable()) return {true, ""};
  if (!stream_pool) return no("pool kind");
  if (req.if_none_match) return no("conditional");
  if (req.authorization || req.cookie) return no("credentials");
  return {true, ""};
}

}  // namespace lb
