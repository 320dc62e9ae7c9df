#pragma once
// The access log (README "Logs"): with log.access: true, one line per finished request
// and per closed WebSocket tunnel, to stderr or to log.access_file (reopened on SIGUSR1,
// for logrotate). A worker formats its line and pushes it on a bounded queue (a short
// mutex around a move, never a wait: lb/net/line_queue); one writer thread does the file
// I/O. A full queue drops the line and counts it (corral_access_log_dropped_total).
// A line names no client address, token, cookie, header value, secret or query string:
// the user appears only as the session key hashed with a key drawn at process start.
#include <cstdint>
#include <string>
#include <string_view>

#include "lb/core/session_key.h"
#include "lb/net/log_line.h"

namespace lb::net {

// One finished request (or tunnel). The views only need to live through the call.
struct AccessRecord {
  std::string_view msg = "request";  // "request", or "tunnel" for a closed WebSocket
  int64_t unix_us = 0;               // when the request's head was read
  std::string_view listener, route, pool, backend, method;
  std::string_view remap;  // move reason when the user was moved (lb/core/balancer)
  int status = 0;          // 0: no answer was sent (the client left, or was cut off)
  uint64_t duration_us = 0;
  uint64_t bytes_in = 0, bytes_out = 0;
  bool has_session = false;
  // The user's key in the pool's session table (pool-salted; the bare user key when corral
  // answered before choosing a pool); only its keyed hash is written, the value an
  // operator passes to the admin listener's GET /sessions/<hash>.
  SessionKey session;
  uint64_t slot = 0;  // the user's newest checkpoint slot after this request (0 = unknown)
  // What the shared store did for the placement (hit, claimed, adopted, moved, timeout,
  // down, "-"); empty without sticky.store, and then the field is left out. A literal.
  std::string_view store;
  // The response cache (issue 16): "hit" (answered from the pool's cache, backend "-") or
  // "miss" (cacheable, went upstream); empty for a request the cache does not cover, and
  // then the field is left out. A literal.
  std::string_view cache;
};

// A record that owns its text: a tunnel's, kept from the handshake until it closes.
struct OwnedAccessRecord {
  explicit OwnedAccessRecord(const AccessRecord& r);
  // The record with views into this object, the duration counted up to now (monotonic µs
  // `now_us`), and `extra_in` / `extra_out` bytes added.
  AccessRecord record(uint64_t now_us, uint64_t extra_in, uint64_t extra_out) const;
  std::string listener, route, pool, backend, method, remap;
  AccessRecord base;
  uint64_t taken_us = 0;  // monotonic µs when it was taken
};

// Appends the record's line; `seed` keys the session hash. Pure.
void append_access_line(std::string& out, LogFormat format, const AccessRecord& r, uint64_t seed);

// The session key as 16 hex digits of XXH3-64 keyed with `seed`.
std::string session_hash_hex(const SessionKey& key, uint64_t seed);
// The key of the access log's session hashes: random, drawn once per process, so a hash
// means nothing outside it and cannot be turned back into a key by trying candidates.
uint64_t access_log_session_seed();

struct AccessLogSettings {
  bool enabled = false;
  std::string file;  // empty: stderr
  LogFormat format = LogFormat::logfmt;
};

// Control thread, at start and on each reload: starts the writer on first use; a new
// file (or stderr) is opened before the next line is written.
void access_log_configure(const AccessLogSettings& s);
// SIGUSR1: reopen the file by name (after logrotate renamed it).
void access_log_reopen();
// At exit, after the workers stopped: writes what is queued (giving up on a reader that
// takes nothing) and joins the writer.
void access_log_shutdown();

// Workers: true when lines are wanted (one relaxed load).
bool access_log_enabled();
void access_log_write(const AccessRecord& r);

uint64_t access_log_dropped();
size_t access_log_depth();

}  // namespace lb::net
