// ClientConn, access log part: what a request's access line says (lb/net/access_log),
// gathered in RequestState::Access while the request runs.
#include <algorithm>
#include <cstring>
#include <ctime>
#include <optional>

#include "lb/net/client_conn.h"
#include "lb/net/worker.h"

namespace lb::net {

// ---- the access log -------------------------------------------------------------------

void ClientConn::begin_access() {
  RequestState::Access& a = rs_->access;
  a = {};
  if (!access_log_enabled()) return;
  a.active = true;
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  a.unix_us = static_cast<int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
  a.start_us = uv_hrtime() / 1000;
  std::string_view m = rs_->parser.method();
  a.method_len = static_cast<uint8_t>(std::min(m.size(), sizeof a.method));
  std::memcpy(a.method, m.data(), a.method_len);
  a.bytes_in = head_bytes_;
}

AccessRecord ClientConn::access_record() const {
  const RequestState::Access& a = rs_->access;
  AccessRecord r;
  r.unix_us = a.unix_us;
  r.duration_us = uv_hrtime() / 1000 - a.start_us;
  r.listener = rt_->listeners[listener_].name;
  r.route = a.route;
  r.pool = a.pool;
  r.backend = a.backend;
  r.method = {a.method, a.method_len};
  MoveReason why = rs_->exchange.move_reason();
  if (why != MoveReason::none) r.remap = move_reason_name(why);
  r.status = a.status;
  r.bytes_in = a.bytes_in;
  r.bytes_out = a.bytes_out;
  if (rt_->store) r.store = store_mark_name(rs_->exchange.store_mark());
  r.cache = a.cache;
  r.has_session = a.has_session;
  r.session = a.session;
  // The user's newest checkpoint after this answer (a shard lock, only with the log on).
  if (a.pinned)
    if (std::optional<Pin> pin = worker_.state().sessions.peek(a.session)) r.slot = pin->last_slot;
  return r;
}

void ClientConn::write_access() {
  rs_->access.active = false;
  access_log_write(access_record());
}

}  // namespace lb::net
