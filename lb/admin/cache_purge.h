#pragma once
// POST /cache/purge[?pool=NAME][&prefix=/path/] (issue 16): drops cached answers at once,
// for an operator who learned that something cached was wrong (a wrong
// immutable_after_slots for the network, a backend that served bad data). Behind the
// admin token like every endpoint but the dashboard. Internal to lb/admin.
#include <string>
#include <string_view>

#include "lb/net/runtime.h"

namespace lb::admin {

struct PurgeAnswer {
  int status = 200;
  std::string body;         // JSON, ending "\n"
  bool allow_post = false;  // 405: the answer carries "Allow: POST"
};

// Answers one request to /cache/purge: `method` and `query` (the bytes after "?", empty
// without one) as received. 200 {"purged": N, "bytes": B, "pools": [names]} after purging
// the entries whose canonical string (the forwarded path first) starts with `prefix`
// (every entry without one) in `pool`'s cache, or in every cached pool without `pool`;
// 404 for an unknown pool or one without a cache; 400 for a prefix not starting with '/',
// an unknown, repeated or empty parameter or a malformed percent-escape; 405 (Allow: POST)
// for any other method. Logs one info line per purge (pool, prefix, count) and a
// rate-limited line per refusal.
PurgeAnswer cache_purge(const net::Runtime& rt, std::string_view method, std::string_view query);

}  // namespace lb::admin
