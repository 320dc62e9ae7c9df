#pragma once
// Per-client request limits on a route (issue 11, "Per-client limits"): token buckets
// (Turner, "New directions in communications", 1986; RFC 2697's single-rate bucket) keyed
// by the request's session key, or the client IP when there is none, so one user cannot
// spend everybody's upstream quota. `per_ip_rps` adds a second bucket per client IP that
// every key from that IP also draws from: rotating path tokens buys a new key, not a new
// burst.
//
// Memory is bounded: at most `max_entries` buckets (default 65,536, about 48 bytes each,
// so ~3 MiB at the cap), in shards with one lock each and an LRU order per shard. A full
// shard drops its least recently seen bucket; a bucket idle that long has refilled, so
// forgetting it costs at most one fresh burst to a client silent for the longest time.
//
// One table is shared by all workers (like the session table), rather than one per worker
// with the rate split: a client's connections land on any worker (SO_REUSEPORT), and a
// split rate would let a client with N connections get up to N x burst or throttle one
// with a single connection to rps / N. Time is a parameter (monotonic milliseconds).
#include <cstddef>
#include <cstdint>
#include <memory>

#include "lb/core/session_key.h"

namespace lb {

// A route's limits. rps == 0: no limit. burst: the bucket's capacity (>= 1). per_ip_rps
// == 0: no per-IP cap; else each client IP's bucket refills at per_ip_rps and holds
// max(burst, per_ip_rps) tokens.
struct ClientLimit {
  double rps = 0;
  double burst = 0;
  double per_ip_rps = 0;
  bool enabled() const { return rps > 0; }
  bool operator==(const ClientLimit&) const = default;
};

struct LimitVerdict {
  bool allowed = true;
  bool by_ip = false;          // refused by the per-IP bucket (else by the key's own)
  uint32_t retry_after_s = 0;  // when refused: seconds until a token is back (>= 1)
};

class ClientLimiter {
 public:
  static constexpr size_t kDefaultMaxEntries = 65'536;

  explicit ClientLimiter(size_t max_entries = kDefaultMaxEntries, size_t shards = 16);
  ~ClientLimiter();
  ClientLimiter(const ClientLimiter&) = delete;
  ClientLimiter& operator=(const ClientLimiter&) = delete;

  // One request of `client` from `ip` on the route identified by `route` (a hash of its
  // listener and prefix, so two routes never share a bucket): takes a token from the
  // client's bucket and, with per_ip_rps, from the IP's, both or neither. A bucket seen
  // for the first time starts full. `client` may equal the IP's key (no session key).
  LimitVerdict admit(uint64_t route, SessionKey client, SessionKey ip, const ClientLimit& limit,
                     uint64_t now_ms);

  size_t size() const;       // buckets held now
  uint64_t evicted() const;  // buckets dropped by the bound
  size_t max_entries() const { return max_entries_; }

 private:
  struct Shard;
  Shard& shard_for(const SessionKey& k) const;
  std::unique_ptr<Shard[]> shards_;
  size_t nshards_;
  size_t max_entries_;
};

}  // namespace lb
