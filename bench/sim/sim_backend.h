#pragma once
// A simulated Kupo or Ogmios instance for corral-bench and corral --demo (the Ogmios side,
// JSON-RPC over WebSocket and HTTP, is described in ogmios_sim.h). Kupo: its HTTP API with
// deterministic fake data, a moving chain tip, Kupo's health semantics, latency added by a
// timer (never by sleeping) and a capacity above which it answers 503 as an overloaded Kupo
// does. Tests and the lab steer it at runtime over HTTP:
//   POST /_sim/control  {"latency_ms":200,"capacity":5,"health":"synced|behind|disconnected",
//                        "tip_lag_slots":1000,"dead":true,"freeze_tip":true,"reject_delay_ms":175,
//                        "flap":true,"overload":true,"fork_at":SLOT|null,
//                        "read_only_stale":true,"rollback":N,"latency_jitter_ms":15,
//                        "null_percent":5,"match_count":20000}
//                       (flap: every other /health answer is 503; overload: every data
//                        request gets Kupo's 503; fork_at: header hashes from SLOT on leave
//                        the honest chain, the same for every instance forked at SLOT, null
//                        heals; read_only_stale: a --read-only Kupo whose writer stalled,
//                        checkpoint frozen and reported as the node tip so /health stays 200,
//                        where freeze_tip stalls the node and lets health turn 202;
//                        rollback: tip and checkpoints go back N slots now, then move on,
//                        until "health":"synced" puts the instance back at the network tip;
//                        latency_jitter_ms: each data request waits latency_ms +
//                        splitmix(seq) % (jitter + 1); null_percent: /datums and /scripts
//                        answer 200 `null` (Kupo's "not found yet") for the hashes
//                        kupo_api::is_null_hash picks; match_count: GET /matches answers
//                        exactly N objects of ~500 B, chunked, the same bytes for the same
//                        pattern until the day of slots turns, 0 = two to four per pattern)
//   GET  /_sim/stats    {"name":..,"requests":N,"in_flight":N,"rejected_503":N,
//                        "by_route":{"datums":N,"scripts":N,"metadata":N,"checkpoints":N,
//                                    "matches":N,"health":N,"other":N,"null":N}}
//                       (by_route: kupo only; null: the /datums and /scripts requests among
//                        datums and scripts answered `null` because the hash is in the null
//                        set, so a bench can split cacheable lookups from null lookups)
//                       (kind ogmios adds the ws_ counters of ogmios_sim.h)
//   ANY  /_sim/echo[?status=N]  the request as received (method, target, headers, body)
//   GET  /_sim/stream?chunks=N&size=S[&reset_after=K]  a chunked stream, optionally reset
// dead aborts every connection without answering (the /_sim/ endpoints keep working so that
// it can be revived); for Ogmios it also drops every open WebSocket without a close frame.
// latency_ms, health, tip_lag_slots, freeze_tip, fork_at, read_only_stale (for Ogmios just
// a frozen tip) and rollback apply to both kinds; capacity, reject_delay_ms, flap, overload,
// latency_jitter_ms, null_percent and match_count to Kupo only. Every response carries X-Backend:
// <name>.
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench/sim/sim_chain.h"
#include "lb/net/http_server.h"

namespace bench {

struct SimOptions {
  std::string name = "kupo";
  std::string kind = "kupo";       // "kupo" or "ogmios"
  uint64_t latency_ms = 0;         // added before answering each data request
  uint64_t latency_jitter_ms = 0;  // plus splitmix(seq) % (jitter + 1) ms, per data request
  uint64_t null_percent =
      0;  // share of datum/script hashes answered `null` (kupo_api::is_null_hash)
  uint64_t match_count = 0;  // GET /matches answers exactly this many; 0: two to four
  uint64_t capacity = 50;    // data requests in flight before 503 (Kupo's default); 0 = no limit
  uint64_t reject_delay_ms = 0;  // Kupo retries ~25+50+100 ms before its 503; 0 answers at once
  uint64_t tip_slot = 0;         // 0: the mainnet slot of the system clock
  bool freeze_tip = false;
  uint64_t tip_lag_slots = 0;
  SimHealth health = SimHealth::synced;
  uint64_t block_interval_slots = 20;
  lb::net::ServerOptions server;
};

// Kupo requests by the first path segment (a leading /v1 dropped), so tests can count data
// requests without the /health probes.
struct SimRouteCounts {
  uint64_t datums = 0;
  uint64_t scripts = 0;
  uint64_t metadata = 0;
  uint64_t checkpoints = 0;
  uint64_t matches = 0;
  uint64_t health = 0;
  uint64_t other = 0;  // patterns, unknown paths, OPTIONS on any path
  // Of datums + scripts: answered 200 `null` for a hash in the null set (not the 503s, not
  // the malformed hashes), counted when answered.
  uint64_t nulls = 0;
};

struct SimStats {
  uint64_t requests = 0;  // everything but /_sim/
  uint64_t writes = 0;    // of which not GET, HEAD or OPTIONS (probes never write)
  uint64_t in_flight = 0;
  uint64_t rejected_503 = 0;
  SimRouteCounts by_route;  // kind kupo only
};

// The largest match_count accepted (about 50 MB of answer, all queued at once).
inline constexpr uint64_t kMaxMatchCount = 100'000;

// Today's mainnet slot from the system clock (Shelley started at slot 4492800, 1 slot/s).
uint64_t mainnet_slot_now();

class SimBackend {
 public:
  SimBackend(uv_loop_t* loop, SimOptions options);
  ~SimBackend();
  SimBackend(const SimBackend&) = delete;
  SimBackend& operator=(const SimBackend&) = delete;

  // Binds and listens (port 0 = ephemeral). Returns 0 or a libuv error code.
  int listen(const std::string& host, uint16_t port);
  uint16_t port() const;
  // Stops listening, drops pending answers and connections; `done` runs once closed.
  void close(std::function<void()> done = {});

  const std::string& name() const;
  SimStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Starts `n` simulated instances of `kind` named <kind>-1..<kind>-n on ephemeral ports of
// `host`. Instances that fail to listen are reported on stderr and left out.
std::vector<std::unique_ptr<SimBackend>> start_sim_fleet(uv_loop_t* loop, int n, std::string host,
                                                         std::string kind = "kupo");

}  // namespace bench
