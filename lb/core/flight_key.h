#pragma once
// Request collapsing (plan-16 §0.2): which GETs may share one upstream request, and the
// key they meet under. A fill flight (cacheable verdict) spans the pool; a stream flight
// (uncacheable GET) is scoped to the backend every waiter was placed on.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "lb/core/backend_ref.h"
#include "lb/core/cache_key.h"
#include "lb/core/cache_rules.h"

namespace lb {

// The scope of a fill flight: any backend of the pool may produce the answer.
inline constexpr uint32_t kPoolScope = UINT32_MAX;

struct FlightKey {
  CacheKey key;
  uint32_t scope = kPoolScope;  // a BackendRef for stream flights
  friend bool operator==(const FlightKey&, const FlightKey&) = default;
};

struct FlightKeyHash {
  size_t operator()(const FlightKey& k) const {
    return static_cast<size_t>(k.key.lo ^ (k.key.hi >> 1) ^
                               (uint64_t{k.scope} * 0x9E3779B97F4A7C15ULL));
  }
};

// The key of a fill flight (verdict cacheable) or of a stream flight on `backend`.
FlightKey fill_flight_key(CacheKey key);
FlightKey stream_flight_key(CacheKey key, BackendRef backend);

struct Collapse {
  bool ok = false;
  const char* reason = "";  // not ok: why, a static string
};

// Whether a request may lead or join a flight. Only GET without a body, never on a
// websocket route, and never with Range, If-Match, If-Range, If-Modified-Since, Upgrade or
// Expect. For a cacheable verdict (a fill flight, whose followers are served like hits)
// If-None-Match is allowed (answered 304 from the stored entry) and credentials are
// judged as classify judged them; for an uncacheable one (a stream flight: the backend's
// own bytes are shared) If-None-Match, Authorization and Cookie rule it out, since the
// answer may depend on them, and it needs `stream_pool`: a pool whose backends read none of
// the headers that differ per user (Kupo pools). Elsewhere (http, blockfrost) X-Api-Key,
// project_id or Origin may shape the answer and a Set-Cookie would be fanned out, so only
// cacheable requests collapse there, as fill flights.
Collapse collapsible(std::string_view method, const ReqFacts& req, const CacheVerdict& verdict,
                     bool websocket_route, bool stream_pool);

}  // namespace lb
