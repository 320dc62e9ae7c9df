// GET /metrics: the shared pin store's families (status_store.h), only with sticky.store.
#include <string>

#include "lb/admin/status_store.h"
#include "lb/net/redis_link.h"

namespace lb::admin {

void store_metrics(Exposition& e, const net::Runtime& rt, const net::ProxyState& st) {
  if (!rt.config.sticky.store) return;
  const net::StoreShared& s = st.store;
  const net::StoreCounters& c = s.counters;
  const auto state = static_cast<net::LinkState>(s.state.load(std::memory_order_relaxed));
  e.help("corral_store_up", "gauge",
         "1 while the shared pin store (sticky.store, Redis) is connected, else 0 (pins are "
         "placed locally and queued).");
  e.line("corral_store_up", "", uint64_t{state == net::LinkState::up ? 1u : 0u});
  e.help("corral_store_errors_total", "counter",
         "Store commands answered with an error or lost with the connection.");
  e.line("corral_store_errors_total", "", load(c.errors));
  e.help("corral_store_timeouts_total", "counter",
         "Store commands with no answer within sticky.store.timeout.");
  e.line("corral_store_timeouts_total", "", load(c.timeouts));
  e.help("corral_store_pending", "gauge",
         "Pin writes made while the store was unusable, waiting to be written.");
  e.line("corral_store_pending", "", static_cast<uint64_t>(s.pending.size()));
  e.help("corral_store_pending_dropped_total", "counter",
         "Queued pin writes dropped (oldest first) at sticky.store.max_pending.");
  e.line("corral_store_pending_dropped_total", "", s.pending.dropped());
  e.help("corral_store_ops_total", "counter",
         "Store operations by result: claim won|adopted (a new user's pin stored, or another "
         "instance's found), cas won|lost (a move stored, or another instance moved first), "
         "refresh sent (every TTL refresh) and of those adopted|reseeded, flush written "
         "(queued writes) and of those adopted, quota take (leases asked for).");
  e.by_label("corral_store_ops_total", "op=\"claim\"", "result",
             {{"won", load(c.claims_won)}, {"adopted", load(c.claims_adopted)}});
  e.by_label("corral_store_ops_total", "op=\"cas\"", "result",
             {{"won", load(c.cas_won)}, {"lost", load(c.cas_lost)}});
  e.by_label("corral_store_ops_total", "op=\"refresh\"", "result",
             {{"sent", load(c.refreshes)},
              {"adopted", load(c.refresh_adopted)},
              {"reseeded", load(c.refresh_reseeded)}});
  e.by_label("corral_store_ops_total", "op=\"flush\"", "result",
             {{"written", load(c.flushed)}, {"adopted", load(c.flush_adopted)}});
  e.by_label("corral_store_ops_total", "op=\"quota\"", "result", {{"take", load(c.quota_takes)}});
  e.help("corral_store_local_fallbacks_total", "counter",
         "Placements made locally because the store was down, slow or failing.");
  e.line("corral_store_local_fallbacks_total", "", load(c.local_fallbacks));
  e.help("corral_store_invalidations_total", "counter",
         "Re-pin messages: in (other instances' moves applied here), out (ours published).");
  e.by_label("corral_store_invalidations_total", "", "direction",
             {{"in", load(c.invalidations_in)}, {"out", load(c.invalidations_out)}});

  e.help("corral_store_roundtrip_seconds", "histogram",
         "Claim and CAS round trips to the store as requests waited for them.");
  uint64_t cum = 0;
  for (size_t i = 0; i < c.roundtrip.buckets.size(); ++i) {
    cum += c.roundtrip.buckets[i].load(std::memory_order_relaxed);
    const std::string le = i < net::kLatencyBucketsUs.size()
                               ? seconds_text(net::kLatencyBucketsUs[i])
                               : std::string("+Inf");
    e.line("corral_store_roundtrip_seconds_bucket", "le=\"" + le + "\"", cum);
  }
  e.line("corral_store_roundtrip_seconds_sum", "",
         seconds_text(c.roundtrip.sum_us.load(std::memory_order_relaxed)));
  e.line("corral_store_roundtrip_seconds_count", "", cum);

  e.help("corral_store_instances", "gauge",
         "corral instances sharing the store, this one included (live at the last fleet sync; 1 "
         "before the first; the last known count while the store is down).");
  e.line("corral_store_instances", "", s.fleet.live_instances());
  e.help("corral_sessions_fleet", "gauge",
         "Sessions pinned to the backend by every instance sharing the store (this one's "
         "plus the others' at the last fleet sync; a user cached by several counts in each).");
  for (const auto& p : rt.pools)
    for (const auto& b : p.backends)
      e.line("corral_sessions_fleet",
             "pool=\"" + label(p.name) + "\",backend=\"" + label(b.name) + "\"",
             pinned_fleet(st, b.ref));
}

}  // namespace lb::admin
