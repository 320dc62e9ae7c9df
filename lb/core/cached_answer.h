#pragma once
// One immutable answer held by the response cache (issue 16, plan-16.md §2). Built once by
// a fill, then shared read-only through std::shared_ptr<const CachedAnswer>: a hit keeps its
// pointer while the body is written, so eviction never frees bytes a client is still reading.
#include <cstdint>
#include <string>

namespace lb {

struct CachedAnswer {
  // The canonical request string (cache_key.h: "path?query\naccept\naccept-encoding"). It is
  // compared in full on every lookup, so a 128-bit hash collision can never serve the wrong
  // body; a purge by prefix matches its leading path.
  std::string key;
  std::string fields;       // pre-rendered header lines allowed into the cache, each ending "\r\n"
  std::string body;         // decoded body (never chunk-framed)
  char etag[40] = {};       // NUL-terminated, e.g. "c1-<32 hex>" with its quotes (etag.h)
  uint64_t expires_ms = 0;  // monotonic deadline for max_age entries; 0 = never expires
  uint32_t charge = 0;      // bytes accounted: answer_charge() below
};

// Fixed bytes charged per entry on top of its strings: the CachedAnswer, the shared_ptr control
// block, the cache's map node and list links, rounded up, so the byte bound tracks real memory.
inline constexpr uint64_t kCachedAnswerOverhead = 160;

// The bytes an entry costs the cache: key + fields + body + kCachedAnswerOverhead.
inline uint64_t answer_charge(const CachedAnswer& a) {
  return a.key.size() + a.fields.size() + a.body.size() + kCachedAnswerOverhead;
}

}  // namespace lb
