// The store client's fire-and-forget side (plan-15 §2): batched TTL refreshes (pin_touch,
// pipelined; a mismatch adopts the stored pin) and the shared Blockfrost quota
// (quota_take leases, quota_cool cool-downs).
#include <algorithm>
#include <cstdio>
#include <string>

#include "lb/core/pin_codec.h"
#include "lb/core/quota_guard.h"
#include "lb/core/refresh_epoch.h"
#include "lb/core/store_messages.h"
#include "lb/net/proxy_state.h"
#include "lb/net/store_client_impl.h"
#include "lb/net/wall_clock.h"

namespace lb::net {

namespace {

// A number as Lua's tonumber() reads it (rps and burst may have fractions).
std::string number_text(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// "pool" and "backend" of `ref` in the running configuration (names unique across pools),
// read from its pools rather than Registry::name_of, a scan of every ref ever made under
// the process-wide Registry mutex. Null when no pool has it now (removed by a reload):
// nothing to refresh for it.
const RuntimeBackend* find_ref(const Runtime& rt, BackendRef ref, const RuntimePool** pool) {
  for (const RuntimePool& p : rt.pools)
    for (const RuntimeBackend& b : p.backends)
      if (b.ref == ref) {
        *pool = &p;
        return &b;
      }
  return nullptr;
}

}  // namespace

uint64_t StoreClient::Impl::refresh_every_ms() const {
  return std::max<uint64_t>(std::min(sync_interval_ms, refresh_interval_ms(ttl_ms)), 1);
}

void StoreClient::Impl::add_refresh(const RefreshItem& item) {
  if (!link) return;  // no store: nothing to refresh
  if (batch.add(item)) {
    uv_timer_stop(refresh_timer);
    flush_refresh();
  } else if (!uv_is_active(reinterpret_cast<uv_handle_t*>(refresh_timer))) {
    uv_timer_start(refresh_timer, on_refresh_timer, refresh_every_ms(), 0);
  }
}

void StoreClient::Impl::on_refresh_timer(uv_timer_t* t) {
  if (auto* self = static_cast<Impl*>(t->data)) self->flush_refresh();
}

void StoreClient::Impl::flush_refresh() {
  std::vector<RefreshItem> items = batch.take(uv_now(loop));
  // Down: dropped; the keys come due again next epoch.
  if (!up()) return;
  std::shared_ptr<const Runtime> rt = state.runtime.load();  // once per batch
  if (!rt) return;
  for (const RefreshItem& it : items) {
    const RuntimePool* pool = nullptr;
    const RuntimeBackend* b = find_ref(*rt, it.backend, &pool);
    if (b == nullptr) continue;
    std::string key = pin_key_text(prefix, it.key);
    std::string slot = std::to_string(it.last_slot);
    std::string seed = encode_pin(b->name, it.last_slot, MoveReason::none);
    Ticket t = link->evalsha(
        StoreScript::pin_touch, {key}, {b->name, slot, ttl_text, seed},
        [this, it, p = pool->name](LinkResult r, const redisReply* reply) {
          refreshed(it, p, r, reply);
        },
        timeout_ms);
    if (t != 0) state.store.counters.refreshes.fetch_add(1, std::memory_order_relaxed);
  }
}

void StoreClient::Impl::refreshed(const RefreshItem& item, const std::string& pool, LinkResult r,
                                  const redisReply* reply) {
  long long code = -1;
  if (r != LinkResult::reply || !reply_int(reply, 0, &code)) return count_failure(r);
  StoreCounters& c = state.store.counters;
  if (code == 2) {
    c.refresh_reseeded.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::string_view stored;
  if (code != 0 || !reply_str(reply, 1, &stored)) return;
  // Another instance moved the user and we missed its invalidation: follow it, if the
  // backend it names is one we have in the same pool now. Not when this process has moved
  // the user since the refresh left (the local pin no longer names the refreshed backend)
  // or still has a write for it queued from an outage: the stored pin is then the one the
  // user left, and adopting it would send the user back (users move forward only); the
  // control loop's flush writes our move over it.
  std::optional<StoredPin> pin = decode_pin(stored);
  std::shared_ptr<const Runtime> rt = state.runtime.load();
  if (!pin || !rt) return;
  std::optional<BackendRef> ref = resolve_stored(*rt, pool, pin->backend);
  if (!ref) return;
  std::optional<Pin> local = state.sessions.peek(item.key);
  if (local && local->backend != item.backend) return;
  if (state.store.pending.contains(pin_key_text(prefix, item.key))) return;
  state.sessions.adopt(item.key, *ref, pin->last_slot, static_cast<uint8_t>(pin->reason),
                       uv_now(loop));
  c.refresh_adopted.fetch_add(1, std::memory_order_relaxed);
}

bool StoreClient::Impl::take_quota(const std::string& pool, QuotaGuard& guard) {
  // Until the take answers (or when it cannot be sent) the guard admits from its local
  // fallback: this instance's share of the fleet, as of the last fleet sync.
  guard.set_fallback_divisor(state.store.fleet.live_instances());
  if (!up()) return false;
  QuotaLimits l = guard.limits();
  std::string want = std::to_string(guard.lease_size());
  std::string rps = number_text(l.rps), burst = number_text(l.burst);
  std::string daily = std::to_string(l.daily);
  std::string bucket = prefix + "quota:" + pool;
  std::string cool = bucket + ":cool";
  uint64_t id = ++seq;
  Ticket t = link->evalsha(
      StoreScript::quota_take, {bucket, cool}, {want, rps, burst, daily},
      [this, id](LinkResult r, const redisReply* reply) { quota_answer(id, r, reply); },
      timeout_ms);
  if (t == 0) return false;
  takes[id] = Take{t, &guard};
  state.store.counters.quota_takes.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void StoreClient::Impl::quota_answer(uint64_t id, LinkResult r, const redisReply* reply) {
  auto it = takes.find(id);
  if (it == takes.end()) return;
  QuotaGuard& guard = *it->second.guard;
  takes.erase(it);
  long long granted = -1;
  std::string_view refusal;
  if (r != LinkResult::reply || !reply_int(reply, 0, &granted) || !reply_str(reply, 1, &refusal)) {
    count_failure(r);
    return guard.lease_failed();
  }
  uint64_t now = uv_now(loop), unix_ms = wall_ms();
  if (refusal == "cool") {
    // {0, 'cool', status, pttl}: another instance tripped an upstream cool-down (we missed
    // its message). The guard holds it for what is left of it, as a remote one: not counted,
    // no back-off of ours doubled. The store sent no daily count: the fleet's stays.
    std::string_view status;
    long long pttl = -1;
    reply_str(reply, 2, &status);
    reply_int(reply, 3, &pttl);
    const int code = status == "402" ? 402 : status == "418" ? 418 : 429;
    const uint64_t left = pttl > 0 ? static_cast<uint64_t>(pttl) : 1000;
    guard.apply_remote_cooldown(code, unix_ms + left, now, unix_ms);
    return guard.lease_failed(false);  // no lease: the cool-down refuses until it ends
  }
  long long retry = 0, used = 0;
  if (!reply_int(reply, 2, &retry) || !reply_int(reply, 3, &used) || granted < 0 || used < 0) {
    count_failure(r);
    return guard.lease_failed();
  }
  QuotaRefusal why = refusal == "rate"    ? QuotaRefusal::rate
                     : refusal == "daily" ? QuotaRefusal::daily
                                          : QuotaRefusal::none;
  guard.grant(static_cast<uint64_t>(granted), static_cast<uint64_t>(used), why,
              static_cast<uint64_t>(std::max<long long>(retry, 0)), now, unix_ms);
}

void StoreClient::Impl::cool_quota(const std::string& pool, int status, uint64_t until_unix_ms) {
  if (!up()) return;  // the other instances trip their own on their next 402/429
  uint64_t wall = wall_ms();
  std::string key = prefix + "quota:" + pool + ":cool";
  std::string st = std::to_string(status);
  std::string ttl = std::to_string(until_unix_ms > wall ? until_unix_ms - wall : 1);
  std::string channel = prefix + "quota";
  std::string msg =
      encode_quota_cooled(QuotaCooled{pool, status, until_unix_ms, state.store.instance});
  link->evalsha(
      StoreScript::quota_cool, {key}, {st, ttl, channel, msg},
      [this](LinkResult r, const redisReply* reply) {
        if (r != LinkResult::reply || reply == nullptr || reply->type == REDIS_REPLY_ERROR)
          count_failure(r);
      },
      timeout_ms);
}

}  // namespace lb::net
