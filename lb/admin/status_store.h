#pragma once
// The shared pin store (issue 15, sticky.store) in the admin documents: /status's `store`
// object (status_store.cpp) and the corral_store_* families of /metrics (metrics_store.cpp).
// Internal to lb/admin.
#include <cstdint>

#include "lb/admin/exposition.h"
#include "lb/admin/json_writer.h"
#include "lb/net/proxy_state.h"

namespace lb::admin {

// /status "store": {"configured": false} without sticky.store; otherwise configured, state
// (up|connecting|down), redis (HOST:PORT as configured, never the password), address (the
// numeric address resolved at start or reload, null if the host did not resolve), prefix,
// since_unix_ms (null before the first change), last_error (null if none), instance,
// instances_live, pending, pending_max, pending_dropped and every StoreCounters count.
void store_status_json(JsonWriter& j, const net::Runtime& rt, const net::ProxyState& st);

// A backend's pins across the fleet: this instance's plus the others' (last fleet_sync).
uint64_t pinned_fleet(const net::ProxyState& st, BackendRef ref);

// The corral_store_* families and corral_sessions_fleet, only with sticky.store configured
// (an instance without a store exports none, so CorralStoreDown cannot fire for it).
void store_metrics(Exposition& e, const net::Runtime& rt, const net::ProxyState& st);

}  // namespace lb::admin
