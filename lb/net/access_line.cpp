// The pure half of lb/net/access_log.h: one access line from a record.
#include <xxhash.h>

#include <cstdio>

#include "lb/net/access_log.h"

namespace lb::net {

OwnedAccessRecord::OwnedAccessRecord(const AccessRecord& r)
    : listener(r.listener),
      route(r.route),
      pool(r.pool),
      backend(r.backend),
      method(r.method),
      remap(r.remap),
      base(r) {}

AccessRecord OwnedAccessRecord::record(uint64_t now_us, uint64_t extra_in,
                                       uint64_t extra_out) const {
  AccessRecord r = base;
  r.listener = listener;
  r.route = route;
  r.pool = pool;
  r.backend = backend;
  r.method = method;
  r.remap = remap;
  r.duration_us += now_us > taken_us ? now_us - taken_us : 0;
  r.bytes_in += extra_in;
  r.bytes_out += extra_out;
  return r;
}

std::string session_hash_hex(const SessionKey& key, uint64_t seed) {
  uint64_t words[2] = {key.lo, key.hi};
  char hex[17];
  snprintf(hex, sizeof hex, "%016llx",
           static_cast<unsigned long long>(XXH3_64bits_withSeed(words, sizeof words, seed)));
  return hex;
}

void append_access_line(std::string& out, LogFormat format, const AccessRecord& r, uint64_t seed) {
  char status[8], duration[32], in[24], out_bytes[24];
  snprintf(status, sizeof status, "%d", r.status);
  snprintf(duration, sizeof duration, "%llu.%03llu",
           static_cast<unsigned long long>(r.duration_us / 1000),
           static_cast<unsigned long long>(r.duration_us % 1000));
  snprintf(in, sizeof in, "%llu", static_cast<unsigned long long>(r.bytes_in));
  snprintf(out_bytes, sizeof out_bytes, "%llu", static_cast<unsigned long long>(r.bytes_out));
  std::string session = r.has_session ? session_hash_hex(r.session, seed) : std::string();
  char slot[24] = "";
  if (r.slot != 0) snprintf(slot, sizeof slot, "%llu", static_cast<unsigned long long>(r.slot));
  // Keys always present, so every line parses into the same columns; empty values mean
  // "none" (a local answer has no pool or backend, a keyless request no session).
  LogField fields[15] = {
      {"listener", r.listener},
      {"route", r.route},
      {"pool", r.pool},
      {"backend", r.backend},
      {"method", r.method},
      {"status", status, true},
      {"duration_ms", duration, true},
      {"bytes_in", in, true},
      {"bytes_out", out_bytes, true},
      {"remap", r.remap},
      {"session", session},
      {"slot", slot, true},
  };
  size_t n = 12;
  // `store` only where sticky.store is configured and `cache` only for requests a pool's
  // cache covers: without them the line stays as it was.
  if (!r.store.empty()) fields[n++] = {"store", r.store};
  if (!r.cache.empty()) fields[n++] = {"cache", r.cache};
  std::span<const LogField> shown(fields, n);
  append_log_line(out, format, r.unix_us, "info", r.msg, shown);
}

}  // namespace lb::net
