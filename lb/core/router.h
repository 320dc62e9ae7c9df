#pragma once
// Route matching and request admission (DESIGN.md "Security"): the first route whose
// prefix matches wins; its method allowlist applies; Kupo's write endpoints are refused
// unless the route allows them explicitly. Everything here works on the normalised
// target (lb/core/path_normalizer), the same bytes that are forwarded, so a check cannot
// be bypassed by an encoding the backend decodes. Pure; no allocation.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lb/core/client_limiter.h"

namespace lb {

struct RouteSpec {
  std::string prefix;
  uint32_t pool = 0;  // index into the runtime's pools
  bool strip_prefix = false;
  std::vector<std::string> methods;  // empty = all
  bool websocket = false;
  bool allow_writes = false;
  bool kupo = false;         // the pool is a Kupo pool: guard its write endpoints
  ClientLimit client_limit;  // per-client buckets (off unless rps > 0)
  uint64_t limit_id = 0;     // the buckets' route identity: hash of listener and prefix

  // The header naming the answering backend (expose_backend); empty = off.
  std::string expose_backend;
};

enum class Admission : uint8_t { ok, no_route, method_not_allowed, write_blocked };

struct RouteMatch {
  Admission admission = Admission::no_route;
  const RouteSpec* route = nullptr;
  // The path to forward: the part after the prefix when strip_prefix (needs_slash: a
  // "/" must be written before it), else the whole target.
  std::string_view forward;
  bool needs_slash = false;
};

// True if `prefix` matches the start of `path` on a segment boundary: "/ogmios" matches
// "/ogmios", "/ogmios/x" and "/ogmios?x" but not "/ogmiosx"; a prefix ending in '/'
// matches anything below it.
bool prefix_matches(std::string_view prefix, std::string_view path);

// True for Kupo's write endpoints on a normalised path (no query): Kupo routes on the
// decoded path segments, dropping any number of leading "v1" ones, and compares the first
// exactly (case-sensitive). "patterns" with PUT or DELETE and "matches" with DELETE are its
// writes; POST and PATCH on "patterns" count too (Kupo has no use for them).
bool is_kupo_write(std::string_view method, std::string_view path);

// The first route whose prefix matches `target`, which must be normalised
// (normalize_target's origin form), and whether the request is admitted on it.
RouteMatch match_route(std::span<const RouteSpec> routes, std::string_view method,
                       std::string_view target);

}  // namespace lb
