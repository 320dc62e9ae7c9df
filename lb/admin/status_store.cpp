// GET /status: the shared pin store's object (status_store.h).
#include "lb/admin/status_store.h"

#include <string>

#include "lb/net/redis_link.h"

namespace lb::admin {

uint64_t pinned_fleet(const net::ProxyState& st, BackendRef ref) {
  return st.sessions.pinned(ref) + st.store.fleet.others(ref);
}

void store_status_json(JsonWriter& j, const net::Runtime& rt, const net::ProxyState& st) {
  j.begin_object();
  const std::optional<config::StickyStore>& cfg = rt.config.sticky.store;
  j.key("configured").value(cfg.has_value());
  if (!cfg) {
    j.end_object();
    return;
  }
  const net::StoreShared& s = st.store;
  const auto state = static_cast<net::LinkState>(s.state.load(std::memory_order_relaxed));
  j.key("state").value(net::link_state_name(state));
  j.key("subscriber")
      .value(net::link_state_name(
          static_cast<net::LinkState>(s.sub_state.load(std::memory_order_relaxed))));
  j.key("worker_links").value(load(s.worker_links));
  j.key("worker_links_up").value(load(s.worker_links_up));
  j.key("redis").value(cfg->redis);
  j.key("address");
  if (rt.store && !rt.store->ip.empty())
    j.value(rt.store->ip.find(':') != std::string::npos
                ? "[" + rt.store->ip + "]:" + std::to_string(rt.store->port)
                : rt.store->ip + ":" + std::to_string(rt.store->port));
  else
    j.null();
  j.key("prefix").value(cfg->prefix);
  j.key("since_unix_ms");
  if (const uint64_t since = load(s.since_unix_ms))
    j.value(since);
  else
    j.null();
  j.key("last_error");
  if (const std::string err = s.last_error(); !err.empty())
    j.value(err);
  else
    j.null();
  j.key("instance").value(s.instance);
  j.key("instances_live").value(s.fleet.live_instances());
  j.key("pending").value(static_cast<uint64_t>(s.pending.size()));
  j.key("pending_max").value(static_cast<uint64_t>(s.pending.max_pending()));
  j.key("pending_dropped").value(s.pending.dropped());
  const net::StoreCounters& c = s.counters;
  j.key("errors").value(load(c.errors));
  j.key("timeouts").value(load(c.timeouts));
  j.key("claims_won").value(load(c.claims_won));
  j.key("claims_adopted").value(load(c.claims_adopted));
  j.key("cas_won").value(load(c.cas_won));
  j.key("cas_lost").value(load(c.cas_lost));
  j.key("local_fallbacks").value(load(c.local_fallbacks));
  j.key("invalidations_in").value(load(c.invalidations_in));
  j.key("invalidations_out").value(load(c.invalidations_out));
  j.key("refreshes").value(load(c.refreshes));
  j.key("refresh_adopted").value(load(c.refresh_adopted));
  j.key("refresh_reseeded").value(load(c.refresh_reseeded));
  j.key("flushed").value(load(c.flushed));
  j.key("flush_adopted").value(load(c.flush_adopted));
  j.key("quota_takes").value(load(c.quota_takes));
  j.key("syncs").value(load(c.syncs));
  j.end_object();
}

}  // namespace lb::admin
