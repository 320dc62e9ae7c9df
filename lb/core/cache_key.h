#pragma once
// The identity of a cacheable request (plan-16 §2): a canonical string made of what can
// change the answer's bytes, and its XXH3-128 under the pool's salt. The cache keeps the
// canonical string in the entry and compares it in full on lookup, so a hash collision
// can never serve another request's body.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace lb {

struct CacheKey {
  uint64_t lo = 0;
  uint64_t hi = 0;
  friend bool operator==(const CacheKey&, const CacheKey&) = default;
};

// For unordered containers: the low half is already a well-mixed hash.
struct CacheKeyHash {
  size_t operator()(const CacheKey& k) const { return static_cast<size_t>(k.lo ^ (k.hi >> 1)); }
};

// Writes the canonical string into `out` (cleared first; its capacity is reused, so a
// warm string does not allocate): `path` ["?" `query`] "\n" accept "\n" accept-encoding.
// `path` is the forwarded path and `query` the bytes after "?" (byte-exact; no "?" is
// written when empty). Accept and Accept-Encoding are OWS-trimmed and lower-cased, as
// their tokens are case-insensitive; their inner spacing is kept.
void canonical_request(std::string& out, std::string_view path, std::string_view query,
                       std::string_view accept, std::string_view accept_encoding);

// XXH3-128 of `canonical` seeded with the pool's salt (name_hash of the pool), so two
// pools never share keys.
CacheKey cache_key(uint64_t pool_salt, std::string_view canonical);

}  // namespace lb
