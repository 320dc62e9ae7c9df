#pragma once
// GET /sessions/<hash> on the admin listener (issue 13): one user's pin, found by the
// `session` value of their access-log lines, so an operator can go from a log line to what
// corral holds for that user: pool, backend, the newest checkpoint slot they have seen,
// when they were last seen and why they were last moved.
//
// The hash is XXH3-64 of the session table's 128-bit key (the user's key salted by the
// pool), keyed with the access log's per-process random seed (access_log_session_seed()).
// The table stores no raw keys and no reverse index, so the lookup hashes every entry,
// one shard lock at a time: O(sessions), some milliseconds per million sessions, on the
// control loop. Acceptable for a rare, admin-only request; nothing on the request path
// pays for it. A hash never reveals the key: the seed is never shown and changes with
// every process, so hashes from before a restart are unknown (404).
#include <cstdint>
#include <string>
#include <string_view>

#include "lb/core/session_table.h"
#include "lb/net/runtime.h"

namespace lb::admin {

struct SessionsAnswer {
  int status = 200;  // 200, 400 (malformed hash) or 404 (no such session)
  std::string body;  // JSON, newline-terminated
};

// Answers GET /sessions/<hash>: `hash` is what follows the prefix (16 hex digits, either
// case). `now_ms` is the table's clock (the workers' uv_now), `wall_ms` the Unix time at
// the same moment, to show last_seen as a date.
SessionsAnswer session_lookup(std::string_view hash, const SessionTable& table,
                              const net::Registry& registry, uint64_t seed, uint64_t now_ms,
                              uint64_t wall_ms);

}  // namespace lb::admin
