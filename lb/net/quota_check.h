#pragma once
// The data path's side of the Blockfrost quota guard (lb/core/quota_guard.h): one call
// before a request goes to a pool with rate_limit, one when its answer's status is known,
// and the text of corral's own refusal. The clocks are read here (uv_now for the
// monotonic one, wall_ms for the UTC day) so that callers stay one line.
#include <uv.h>

#include <cstdint>
#include <string_view>

#include "lb/core/quota_guard.h"
#include "lb/net/runtime.h"

namespace lb::net {

class StoreClient;

// Whether one more request may go to `pool` now (always, without a guard); an admitted
// request is counted. Logs the 80%-of-the-day warning once a day. In the guard's shared
// mode (sticky.store up) an admission that asks for a lease sends quota_take through
// `store`; with no store (or its link down) the take fails at once (lease_failed), and
// until a lease comes the guard admits from its divided local bucket, never refusing for
// want of the store.
QuotaAdmission admit_quota(const RuntimePool& pool, uv_loop_t* loop, StoreClient* store = nullptr);

// Tells the pool's guard (if any) of a final upstream status; logs a cool-down it trips,
// and shares it through `store` (quota_cool) so every instance holds off.
void note_upstream_status(const RuntimePool& pool, int status, uv_loop_t* loop,
                          StoreClient* store = nullptr);

// The refusal a client gets: its reason (a JSON error body) and its Retry-After field,
// written into `buf`.
struct QuotaReply {
  const char* reason = "";
  std::string_view headers;
  char buf[48];
};
void quota_reply(const QuotaAdmission& a, QuotaReply& out);

}  // namespace lb::net
